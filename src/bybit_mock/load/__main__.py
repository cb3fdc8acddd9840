"""``python -m bybit_mock.load ...``: the same as ``bybit-mock load ...``."""

from .command import main

if __name__ == "__main__":  # pragma: no branch
    raise SystemExit(main())
