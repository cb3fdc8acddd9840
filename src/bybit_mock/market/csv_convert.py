"""Convert a CSV of trades into a replay recording of ``publicTrade.{S}`` messages (JSONL).

``python -m bybit_mock.market.csv_convert in.csv out.jsonl --symbol BTCUSDT [--category linear]``

Accepted inputs (by header; ``.gz`` files are read compressed, as public.bybit.com serves them):

* Bybit's public trade history (https://public.bybit.com/trading/): ``timestamp,symbol,side,
  size,price,tickDirection,trdMatchID,grossValue,homeNotional,foreignNotional``, ``timestamp``
  in seconds with a fractional part. Rows of other symbols are skipped.
* Bybit's spot history (https://public.bybit.com/spot/): ``id,timestamp,price,volume,side``,
  ``timestamp`` in ms.
* A plain ``timestamp_ms,side,price,size``.

Rows are sorted by time (the history files are not all in ascending order: a file whose first
row is newer than its last is read newest first, so rows of one millisecond keep their order in
time). Consecutive rows with the same millisecond become one message, as the fills of one
taker order do on Bybit (at most 1024 trades a message). What Bybit sends but a CSV lacks is
made up deterministically: ``seq`` counts from 1, a missing trade id is a UUID derived from the
symbol, time and row, a missing tick direction follows the price moves, and the message ``ts``
is the time of its trades. Prices and sizes are written as in the CSV unless
``--price-scale`` / ``--size-scale`` pad them to the instrument's decimals, as Bybit prints them.

A recording of trades only replays fine: the replay model's book stays empty, its last price,
recent trades and candles follow the trades.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import sys
import uuid
from collections.abc import Iterator, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from ..instruments import TRADED

#: Bybit's limit of trades per publicTrade message.
MAX_TRADES_PER_MESSAGE = 1024
#: The categories whose trade messages this writes (an option trade carries greeks a CSV lacks).
CATEGORIES = TRADED
_NAMESPACE = uuid.UUID("6f0e1c1e-5b7a-4c59-9a55-2a3f0f6d2b11")  # fixed: the same CSV gives the same ids

BYBIT_COLUMNS = ("timestamp", "symbol", "side", "size", "price", "tickDirection", "trdMatchID")
SPOT_COLUMNS = ("id", "timestamp", "price", "volume", "side")
SIMPLE_COLUMNS = ("timestamp_ms", "side", "price", "size")


class CsvError(ValueError):
    """Bad input: the message names the file and line."""


class Row(NamedTuple):
    t_ms: int
    line: int
    side: str
    price: str
    size: str
    trade_id: str
    direction: str


def _open_text(path: Path) -> io.TextIOBase:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the file is called
        raw = gzip.decompress(raw)
    return io.StringIO(raw.decode("utf-8-sig"), newline="")


def _decimal_text(value: str, what: str, where: str) -> str:
    text = value.strip()
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise CsvError(f"{where}: {what} is not a number: {value!r}") from None
    if not d.is_finite() or d <= 0:
        raise CsvError(f"{where}: {what} must be a positive number, got {value!r}")
    if "e" in text.lower():  # Bybit prints plain decimals; so does the recording
        text = format(d, "f")
    return text


def _side(value: str, where: str) -> str:
    side = value.strip().capitalize()
    if side not in ("Buy", "Sell"):
        raise CsvError(f"{where}: side must be Buy or Sell, got {value!r}")
    return side


def _ms_from_seconds(value: str, where: str) -> int:
    try:
        seconds = Decimal(value.strip())
    except InvalidOperation:
        raise CsvError(f"{where}: timestamp is not a number: {value!r}") from None
    if not seconds.is_finite() or seconds < 0:
        raise CsvError(f"{where}: bad timestamp {value!r}")
    return int(seconds * 1000)  # Decimal, so 1717200000.123 is 1717200000123 exactly


def _ms(value: str, where: str) -> int:
    text = value.strip()
    if not text.isascii() or not text.isdigit():
        # Some exports write ms as a float ("1717200000123.0").
        try:
            d = Decimal(text)
        except InvalidOperation:
            raise CsvError(f"{where}: timestamp is not a number: {value!r}") from None
        if not d.is_finite() or d < 0 or d != d.to_integral_value():
            raise CsvError(f"{where}: bad millisecond timestamp {value!r}")
        return int(d)
    return int(text)


def read_rows(path: Path, symbol: str) -> list[Row]:
    """Every trade of ``symbol`` in the CSV, validated, in time order."""
    name = str(path)
    try:
        reader = csv.reader(_open_text(path))
        header = next(reader, None)
    except (OSError, UnicodeDecodeError, gzip.BadGzipFile, EOFError) as exc:
        raise CsvError(f"{name}: cannot read: {exc}") from None
    if header is None:
        raise CsvError(f"{name}: empty file")
    cols = [h.strip() for h in header]
    if all(c in cols for c in BYBIT_COLUMNS[:5]):
        fmt = "bybit"
    elif all(c in cols for c in SPOT_COLUMNS):
        fmt = "spot"
    elif all(c in cols for c in SIMPLE_COLUMNS):
        fmt = "simple"
    else:
        raise CsvError(
            f"{name}:1: unknown header {','.join(cols)!r}; expected Bybit's "
            f"'{','.join(BYBIT_COLUMNS)},...', Bybit spot's '{','.join(SPOT_COLUMNS)}' "
            f"or '{','.join(SIMPLE_COLUMNS)}'"
        )
    at = {c: i for i, c in enumerate(cols)}
    rows: list[Row] = []
    try:
        for record in reader:
            line = reader.line_num
            if not record or not any(f.strip() for f in record):
                continue
            where = f"{name}:{line}"
            if len(record) < len(cols):
                raise CsvError(f"{where}: {len(record)} fields, the header has {len(cols)}")

            def get(col: str, record: list[str] = record) -> str:
                return record[at[col]] if col in at else ""

            if fmt == "bybit":
                if get("symbol").strip() != symbol:
                    continue
                t_ms = _ms_from_seconds(get("timestamp"), where)
                size, trade_id, direction = get("size"), get("trdMatchID"), get("tickDirection")
            elif fmt == "spot":
                t_ms = _ms(get("timestamp"), where)
                size, trade_id, direction = get("volume"), get("id"), ""
            else:
                t_ms = _ms(get("timestamp_ms"), where)
                size, trade_id, direction = get("size"), get("id"), get("tickDirection")
            rows.append(
                Row(
                    t_ms,
                    line,
                    _side(get("side"), where),
                    _decimal_text(get("price"), "price", where),
                    _decimal_text(size, "size", where),
                    trade_id.strip(),
                    direction.strip(),
                )
            )
    except csv.Error as exc:
        raise CsvError(f"{name}:{reader.line_num}: {exc}") from None
    if not rows:
        raise CsvError(f"{name}: no trade of {symbol}")
    # Bybit's daily files have been written newest first; make any order ascending and keep
    # the file order of rows within one millisecond (they are one order's fills).
    if rows[0].t_ms > rows[-1].t_ms:
        rows.reverse()
    rows.sort(key=lambda r: r.t_ms)
    return rows


def _pad(text: str, scale: int | None) -> str:
    if scale is None:
        return text
    return str(Decimal(text).quantize(Decimal(1).scaleb(-scale)))


def messages(
    rows: Sequence[Row], symbol: str, category: str, price_scale: int | None = None, size_scale: int | None = None
) -> Iterator[dict[str, Any]]:
    """``publicTrade.{symbol}`` messages in Bybit's shape (futures and spot differ, reference 4.5)."""
    topic = f"publicTrade.{symbol}"
    futures = category != "spot"
    last_price: Decimal | None = None
    last_direction = "ZeroPlusTick"
    seq = 0
    i = 0
    while i < len(rows):
        j = i + 1
        while j < len(rows) and rows[j].t_ms == rows[i].t_ms and j - i < MAX_TRADES_PER_MESSAGE:
            j += 1
        data = []
        for r in rows[i:j]:
            seq += 1
            price = Decimal(r.price)
            direction = r.direction
            if not direction:
                if last_price is None or price == last_price:
                    direction = "ZeroPlusTick" if last_direction in ("PlusTick", "ZeroPlusTick") else "ZeroMinusTick"
                else:
                    direction = "PlusTick" if price > last_price else "MinusTick"
            last_price, last_direction = price, direction
            trade_id = r.trade_id or str(uuid.uuid5(_NAMESPACE, f"{symbol}/{r.t_ms}/{r.line}"))
            p, v = _pad(r.price, price_scale), _pad(r.size, size_scale)
            if futures:
                data.append({"T": r.t_ms, "s": symbol, "S": r.side, "v": v, "p": p, "L": direction,
                             "i": trade_id, "BT": False, "RPI": False, "seq": seq})  # fmt: skip
            else:
                data.append({"i": trade_id, "T": r.t_ms, "p": p, "v": v, "S": r.side, "s": symbol,
                             "BT": False, "RPI": False, "seq": seq})  # fmt: skip
        yield {"topic": topic, "type": "snapshot", "ts": rows[j - 1].t_ms, "data": data}
        i = j


def convert(
    csv_path: str | Path,
    out_path: str | Path,
    symbol: str,
    category: str = "linear",
    price_scale: int | None = None,
    size_scale: int | None = None,
) -> int:
    """Write the recording; return the number of messages. Raises :class:`CsvError` on bad input."""
    if category not in CATEGORIES:
        raise CsvError(f"category must be one of {', '.join(CATEGORIES)}, got {category!r}")
    rows = read_rows(Path(csv_path), symbol)
    count = 0
    out = Path(out_path)
    try:
        with out.open("wb") as f:
            for msg in messages(rows, symbol, category, price_scale, size_scale):
                f.write(orjson.dumps(msg) + b"\n")
                count += 1
    except OSError as exc:
        raise CsvError(f"{out}: cannot write: {exc.strerror or exc}") from None
    return count


DESCRIPTION = (
    "Convert a CSV of trades (Bybit's public history, or timestamp_ms,side,price,size) into a JSONL recording "
    'of publicTrade messages that the mock can replay (source = "replay").'
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The converter's arguments, on any parser (e.g. a ``bybit-mock convert-csv`` subparser)."""
    parser.add_argument("csv", type=Path, help="input CSV (.csv or .csv.gz)")
    parser.add_argument("out", type=Path, help="output JSONL recording")
    parser.add_argument("--symbol", required=True, help="symbol of the trades, e.g. BTCUSDT")
    parser.add_argument("--category", default="linear", choices=CATEGORIES, help="shape of the messages")
    parser.add_argument("--price-scale", type=int, default=None, help="print prices with this many decimals")
    parser.add_argument("--size-scale", type=int, default=None, help="print sizes with this many decimals")


def build_parser(prog: str = "python -m bybit_mock.market.csv_convert") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    add_arguments(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run a parsed command line; the exit status (2: bad input)."""
    try:
        count = convert(args.csv, args.out, args.symbol, args.category, args.price_scale, args.size_scale)
    except CsvError as exc:
        print(f"csv_convert: error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: {count} publicTrade.{args.symbol} messages", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
