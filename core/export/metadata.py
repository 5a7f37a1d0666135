"""The bioimage.io metadata of a run's package, checked before any work: the config's
``export`` section (authors, citations, licence, tags, description) against bioimageio.spec's
own rules for those fields, and the run's name made into a package name bioimage.io accepts.

A bad ORCID iD, DOI, e-mail address or licence used to fail the package only when it was
written: after a whole ``dlsuite run`` had trained (exit 1, a pydantic traceback summary).
:func:`metadata_problems` finds them as ``(json_path, message)`` pairs, for ``config
validate``, the start of ``dlsuite run`` and ``dlsuite export --format bioimageio``. It imports
bioimageio.spec (no TensorFlow), so it is called only when that format is asked for.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["metadata_problems", "package_name"]

#: The characters bioimage.io allows in a model's name.
_NAME_CHARACTERS = "A-Za-z0-9_+\\- ()"


def package_name(name: str) -> str:
    """The bioimage.io ``name`` of the run ``name``: ``_`` as a space, accents dropped
    (``rün`` -> ``run``), any other character bioimage.io does not allow as ``-``, at most
    128 characters; ``dlsuite <name>`` when shorter than 5 characters."""
    plain = unicodedata.normalize("NFKD", name.replace("_", " "))
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    plain = re.sub(f"[^{_NAME_CHARACTERS}]", "-", plain).strip()[:128]
    return plain if len(plain) >= 5 else f"dlsuite {plain}".strip()[:128]


def _message(field: str, value, error: dict) -> str:
    if field == "license":  # pydantic lists every SPDX id of every union member
        return (f"{value!r} is not a licence bioimage.io accepts: give an SPDX id such as "
                "CC-BY-4.0, MIT or BSD-3-Clause")
    msg = error["msg"].removeprefix("Value error, ")
    return msg if len(msg) <= 200 else msg[:197] + "..."


def metadata_problems(config) -> list[tuple[str, str]]:
    """``(json_path, message)`` for every value of the config's ``export`` section that a
    bioimage.io package cannot hold (e.g. ``$.export.authors[0].orcid``), by bioimageio.spec's
    rules for those fields; no file is read and nothing is fetched."""
    from bioimageio.spec import ValidationContext
    from bioimageio.spec.model import v0_5
    from pydantic import TypeAdapter, ValidationError

    from .bioimageio import BioimageioInfo

    info = BioimageioInfo.from_config(config)  # what the package would carry
    values = {"authors": list(info.authors), "cite": list(info.cite), "license": info.license,
              "tags": list(info.tags)}
    if config.export.description is not None:
        values["description"] = info.description
    problems = []
    fields = v0_5.ModelDescr.model_fields
    for field, value in values.items():
        try:
            with ValidationContext(perform_io_checks=False):
                TypeAdapter(fields[field].annotation).validate_python(value)
                if field == "description" and len(value) > 1024:
                    problems.append(("$.export.description",
                                     f"at most 1024 characters, got {len(value)}"))
        except ValidationError as exc:
            errors = exc.errors()
            if field == "license":
                errors = errors[:1]
            for error in errors:
                where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                                for p in error["loc"] if field != "license")
                problems.append((f"$.export.{field}{where}", _message(field, value, error)))
    return problems
