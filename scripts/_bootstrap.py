"""Create ``.venv`` with everything the project needs, using nothing but python3.

Re-installs only when ``pyproject.toml`` changed since the last install (a stamp file keeps
its hash), so repeated runs start in well under a second.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".bybit-mock-installed"


def ensure_venv(extras: str = "test") -> Path:
    if sys.version_info < (3, 11):  # noqa: UP036 - runs under any system python3, before the venv
        sys.exit(f"bybit-mock needs Python >= 3.11; this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        print("bootstrap: creating .venv", file=sys.stderr, flush=True)
        try:
            venv.EnvBuilder(with_pip=True).create(VENV)
        except Exception as exc:  # e.g. Debian's python3 without python3-venv
            sys.exit(f"bootstrap: could not create a virtualenv ({exc}); install python3-venv and retry")
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    have = STAMP.read_text().split() if STAMP.exists() else []
    # A "test" install also satisfies a plain one, so serve after test installs nothing.
    satisfied = len(have) == 2 and have[0] == digest and (not extras or have[1] == extras)
    if not satisfied:
        print(f"bootstrap: installing bybit-mock[{extras}] into .venv", file=sys.stderr, flush=True)
        pip = [str(PYTHON), "-m", "pip", "--disable-pip-version-check", "-q"]
        subprocess.run([*pip, "install", "--upgrade", "pip"], check=False)
        target = f".[{extras}]" if extras else "."
        subprocess.run([*pip, "install", "-e", target], cwd=ROOT, check=True)
        STAMP.write_text(f"{digest} {extras or '-'}\n")
    return PYTHON


def exec_in_venv(args: list[str], extras: str = "test") -> None:
    python = ensure_venv(extras)
    os.chdir(ROOT)
    os.execv(str(python), [str(python), *args])
