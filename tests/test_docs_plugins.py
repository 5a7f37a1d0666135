"""Every code block of docs/plugins.md is exercised: files written, package installed with
pip, commands run."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

DOC = REPO / "docs" / "plugins.md"
BLOCK = re.compile(r"(?:<!-- file: (?P<file>\S+) -->\n)?```(?P<lang>\w+)\n(?P<body>.*?)```", re.S)


def blocks():
    return [(m["file"], m["lang"], m["body"]) for m in BLOCK.finditer(DOC.read_text())]


def test_every_block_is_a_file_or_a_command():
    for file, lang, body in blocks():
        assert file or lang == "bash", f"unexercised {lang} block:\n{body}"


@pytest.mark.slow
def test_following_the_guide_works(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    site = tmp_path / "site"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(site)] + ([os.environ["PYTHONPATH"]] if "PYTHONPATH" in os.environ else []))}
    package = work / "dlsuite-shallow"
    outputs = []
    for file, lang, body in blocks():
        if file:
            path = (package / file).resolve()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body)
            continue
        for line in body.strip().splitlines():
            args = shlex.split(line)
            if args[:2] == ["pip", "install"]:
                cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                       "--no-build-isolation", "--target", str(site), *args[2:]]
            elif args[0] == "dlsuite":
                cmd = [sys.executable, "-m", "dlsuite.cli", *args[1:]]
            elif args[0] == "pytest":
                cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args[1:]]
            else:
                pytest.fail(f"unexpected command in the guide: {line}")
            proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True,
                                  timeout=600)
            assert proc.returncode == 0, f"{line}\n{proc.stdout}\n{proc.stderr}"
            outputs.append((line, proc.stdout))
    text = dict(outputs)
    assert (work / "build-docs" / "dlsuite-shallow" / "pyproject.toml").is_file()
    assert "shallow_net" in text["dlsuite plugins --kind architectures"]
    assert "2 passed" in text["pytest dlsuite-shallow/tests"] or "passed" in text["pytest dlsuite-shallow/tests"]
    assert '"architecture": "shallow_net"' in text["dlsuite model summary config.json --json"]
    # typed chains: the guide's chain is valid; the failure it quotes is what the CLI says
    assert "chain.json: valid" in text["dlsuite config validate chain.json"]
    bad = subprocess.run([sys.executable, "-m", "dlsuite.cli", "config", "validate",
                          "chain.json", "--set", "datagen.target=binary"], cwd=work,
                         env={**env, "COLUMNS": "300"}, capture_output=True, text=True,
                         timeout=600)
    assert bad.returncode == 2, bad.stderr
    flat = " ".join(DOC.read_text().split())
    quoted = re.search(r"`(\$\.postprocess\[1\]: postprocessor 'interiors'[^`]*)`", flat)[1]
    assert quoted in " ".join(bad.stderr.split())
