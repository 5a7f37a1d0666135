"""Provenance: which plugin, distribution and version supplied each plugin a config chose.

:func:`provenance` lists, for every plugin choice of a config (architecture, loss, metrics,
sampler, normalizer, target, augmentations, post-processors), the contribution's ``name``,
the ``plugin`` (entry-point name) that provided it, its ``distribution`` and ``version``
(None for a plugin registered without a distribution), keyed by the choice's place in the
config with dots (``model``, ``datagen.augmentation.0``, ``postprocess.1``). A run records it
under ``"provenance"`` in ``config.json`` and ``metrics.json`` and in the W&B run config
(``provenance.model.version``, ...); ``dlsuite compare`` flattens it like the config, so a
plugin of another version shows up among the differing keys. No TensorFlow.
"""

from __future__ import annotations

from typing import Any

from .errors import DlsuiteInputError

__all__ = ["provenance", "describe_provenance"]


def _choices(config) -> list[tuple[str, Any]]:
    """``(key, choice)`` of every plugin choice of ``config``, in config order."""
    d = config.datagen
    out = [("model", config.model), ("loss", config.loss)]
    out += [(f"metrics.{i}", m) for i, m in enumerate(config.metrics)]
    out += [("datagen.sampling", d.sampling), ("datagen.normalization", d.normalization),
            ("datagen.target", d.target)]
    out += [(f"datagen.augmentation.{i}", a) for i, a in enumerate(d.augmentation)]
    out += [(f"postprocess.{i}", p) for i, p in enumerate(config.postprocess)]
    return out


def provenance(config, registry) -> dict[str, dict[str, Any]]:
    """``{key: {"name", "plugin", "distribution", "version"}}`` for every plugin choice of
    ``config`` (see the module doc); a name the registry cannot resolve keeps ``name`` only
    (``plugin`` etc. None), so recording never fails."""
    out: dict[str, dict[str, Any]] = {}
    for key, choice in _choices(config):
        try:
            entry = registry.resolve(choice.kind, choice.name)
        except DlsuiteInputError:
            out[key] = {"name": choice.name, "plugin": None, "distribution": None,
                        "version": None}
            continue
        out[key] = {"name": entry.name, "plugin": entry.plugin, "distribution": entry.dist,
                    "version": entry.version}
    return out


def describe_provenance(record: dict[str, dict[str, Any]]) -> str:
    """One line grouping the choices by distribution, e.g. ``dlsuite 0.1.0: model unet,
    loss dice; dlsuite-example 0.1.0: postprocess.2 opening``."""
    groups: dict[str, list[str]] = {}
    for key, item in record.items():
        dist = item.get("distribution")
        origin = (f"{dist} {item.get('version') or ''}".rstrip() if dist
                  else f"plugin {item.get('plugin')!r} (no distribution)")
        groups.setdefault(origin, []).append(f"{key} {item.get('name')}")
    return "; ".join(f"{origin}: {', '.join(items)}" for origin, items in groups.items())
