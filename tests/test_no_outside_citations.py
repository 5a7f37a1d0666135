"""Docstrings and comments state facts; they do not cite documents outside the repository
(the project's steering SPEC/DESIGN files and the original suite's notes are not shipped)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CITATION = re.compile(r"\bSPEC\b|DESIGN\.md|original_suite|§")


def test_no_source_file_cites_a_document_outside_the_repository():
    hits = []
    for folder in ("core", "plugins", "tests", "benchmarks", "examples", "docs"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix not in {".py", ".md"} or path.name == Path(__file__).name:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if CITATION.search(line):
                    hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not hits, "\n".join(hits)
