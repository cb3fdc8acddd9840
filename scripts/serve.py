#!/usr/bin/env python3
"""Set everything up (first run only) and serve the mock: ``python3 scripts/serve.py``.

Arguments go to ``bybit-mock serve`` (``--config``, ``--rest-port``, ``--ws-workers`` ...).
"""

from __future__ import annotations

import sys

from _bootstrap import exec_in_venv

if __name__ == "__main__":
    exec_in_venv(["-m", "bybit_mock.cli", "serve", *sys.argv[1:]], extras="")
