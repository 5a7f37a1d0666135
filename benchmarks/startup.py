"""CLI start-up time: `dlsuite --help`, `dlsuite plugins` and `dlsuite config validate`.

Prints the median wall time of several runs of each command, side by side with a bare
`python -c pass` (the interpreter's own floor), and whether TensorFlow was imported.
Run: python benchmarks/startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROBE = ("import runpy, sys\nsys.argv = ['dlsuite'] + sys.argv[1:]\n"
         "try:\n    runpy.run_module('dlsuite.cli', run_name='__main__')\n"
         "finally:\n    sys.stderr.write('TF=%s' % ('tensorflow' in sys.modules))\n")


def timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed: {proc.stderr}")
    return elapsed, proc.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    probe = tmp / "probe.py"
    probe.write_text(PROBE)
    config = tmp / "config.json"
    config.write_text(json.dumps({"model": {"name": "unet", "n_filters": 8}}))
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "dlsuite --help": [sys.executable, str(probe), "--help"],
        "dlsuite plugins": [sys.executable, str(probe), "plugins"],
        "dlsuite config validate": [sys.executable, str(probe), "config", "validate", str(config)],
    }
    print(f"{'command':28s} {'median s':>9s} {'min s':>7s} {'x python':>9s}  tensorflow imported")
    floor = None
    for label, cmd in commands.items():
        runs = [timed(cmd) for _ in range(args.runs)]
        times = [t for t, _ in runs]
        med = statistics.median(times)
        floor = floor or med
        tf = "-" if label.startswith("python") else ("yes" if "TF=True" in runs[-1][1] else "no")
        print(f"{label:28s} {med:9.3f} {min(times):7.3f} {med / floor:9.1f}  {tf}")


if __name__ == "__main__":
    main()
