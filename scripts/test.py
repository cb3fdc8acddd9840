#!/usr/bin/env python3
"""Set everything up (first run only) and run the whole test suite: ``python3 scripts/test.py``.

Extra arguments go to pytest, e.g. ``python3 scripts/test.py -k auth -x``. Lint (ruff) and
type checks (mypy --strict on src/) run first, so CI fails on either.
"""

from __future__ import annotations

import subprocess
import sys

from _bootstrap import ROOT, ensure_venv


def main() -> int:
    python = str(ensure_venv("test"))
    lint_paths = [p for p in ("src", "tests", "benches", "scripts", "examples") if (ROOT / p).is_dir()]
    checks = [
        [python, "-m", "ruff", "check", *lint_paths],
        [python, "-m", "mypy", "src"],
    ]
    for cmd in checks:
        print("$", " ".join(cmd[2:]), flush=True)
        if subprocess.run(cmd, cwd=ROOT, check=False).returncode != 0:
            return 1
    pytest = [python, "-m", "pytest", *sys.argv[1:]]
    print("$", " ".join(pytest[2:]), flush=True)
    code = subprocess.run(pytest, cwd=ROOT, check=False).returncode
    if code == 5:  # pytest's "no tests collected" must not look like success
        print("no tests were collected", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    raise SystemExit(main())
