#!/usr/bin/env python3
"""Write the bundled sample recording ``src/bybit_mock/data/sample-btcusdt-linear.jsonl``.

It runs the seeded synthetic model of BTCUSDT linear for a fixed stretch of time and writes
the public messages a client subscribed to ``orderbook.50``, ``publicTrade``, ``tickers`` and
``kline.1`` would have received, one JSON message per line, in Bybit's exact shapes and key
order (reference 4.4-4.7), with the builders the WS publisher itself uses:

* ``orderbook.50.BTCUSDT``: a snapshot, then a delta per book change (33/s: Bybit pushes every
  20 ms, but a 30 s sample at 50 deltas/s would not fit the 300 KB budget),
  each the difference of the top 50 against what was last sent (:class:`DepthView`), so a
  delta never deletes a level that was not sent;
* ``publicTrade.BTCUSDT``: one message per taker order;
* ``tickers.BTCUSDT``: a snapshot, then deltas of the changed fields every 100 ms;
* ``kline.1.BTCUSDT``: every second, with the closed candle confirmed first when a minute ends.

The output is a pure function of the constants below (no wall clock, no unseeded randomness):
running the script twice writes the same bytes, and ``--check`` says whether the committed file
is still what the script makes.

Usage: ``.venv/bin/python scripts/make_sample_recording.py [--out PATH] [--seconds N] [--check]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bybit_mock.config import InstrumentConfig, default_instruments
from bybit_mock.market import messages
from bybit_mock.market.candles import interval_start
from bybit_mock.market.config import SymbolMarketConfig
from bybit_mock.market.schedule import Schedule
from bybit_mock.market.synthetic import Event, SyntheticMarket
from bybit_mock.market.ticker import WS_FUTURES_KEYS, ticker_fields, ticker_shape
from bybit_mock.market.views import DepthView

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "src" / "bybit_mock" / "data" / "sample-btcusdt-linear.jsonl"

SYMBOL = "BTCUSDT"
SEED = 20_240_601
#: 2024-06-01T00:00:45Z: the recording crosses a minute boundary 15 s in, so it holds a
#: kline confirm and a new candle, as a real recording of that length would.
EPOCH_MS = 1_717_200_045_000
SECONDS = 30
BOOK_DEPTH = 50
BOOK_RATE = 33.0  # ~30 ms; Bybit pushes orderbook.50 every 20 ms, but 50/s would not fit in 300 KB
TRADE_RATE = 4.0  # taker orders/s; kept low so the sample stays small (well under 300 KB)
TICKER_RATE = 10.0  # 100 ms, as Bybit pushes derivatives tickers
KLINE_RATE = 1.0
#: First ``u`` of the book stream (any realistic value; Bybit's ``u == 1`` means a restart).
U0 = 18_521_288


def instrument() -> InstrumentConfig:
    return next(i for i in default_instruments() if i.category == "linear" and i.symbol == SYMBOL)


def generate(seconds: float = SECONDS) -> list[bytes]:
    """Every message of the sample, in order (one JSON document each, no newline)."""
    inst = instrument()
    cfg = SymbolMarketConfig(
        SYMBOL, "linear", trade_rate=TRADE_RATE, book_rates={BOOK_DEPTH: BOOK_RATE}, levels=200, seed=SEED
    )
    epoch_ns = EPOCH_MS * 1_000_000
    model = SyntheticMarket(inst, cfg, 1, epoch_ns)
    aux = Schedule(epoch_ns, [TICKER_RATE, KLINE_RATE])  # tickers (stream 0) and klines (stream 1)
    prices, sizes = model.prices, model.sizes
    book_topic = f"orderbook.{BOOK_DEPTH}.{SYMBOL}"
    trade_topic = f"publicTrade.{SYMBOL}"
    ticker_topic = f"tickers.{SYMBOL}"
    kline_topic = f"kline.1.{SYMBOL}"
    lines: list[bytes] = []
    u = U0

    def cts_of(ts: int) -> int:
        # The matching engine's time of the book: the last trade's, or a moment before the push.
        return min(ts, model.trades[-1].t_ms) if model.trades else ts - 2

    # What a client gets on subscribing at the start: the book and ticker snapshots, the open candle.
    view = DepthView(BOOK_DEPTH)
    view.reset(model.book, u, model.version, EPOCH_MS, cts_of(EPOCH_MS))
    bids, asks = view.snapshot_levels()
    lines.append(
        messages.dumps(messages.book_dict(book_topic, "snapshot", SYMBOL, bids, asks, u, model.version, EPOCH_MS,
                                          cts_of(EPOCH_MS), prices, sizes, ts_first=False))
    )  # fmt: skip
    ticker_sent = ticker_shape(ticker_fields(model, EPOCH_MS), WS_FUTURES_KEYS)
    lines.append(messages.ticker_message(ticker_topic, "snapshot", ticker_sent, model.version, EPOCH_MS, False))
    kline_start = interval_start("1", EPOCH_MS)
    lines.append(_kline(model, kline_topic, [(kline_start, False)], EPOCH_MS))

    end_ns = epoch_ns + int(seconds * 1e9)
    while True:
        t_model, t_aux = model.schedule.next_time(), aux.next_time()
        assert t_model is not None and t_aux is not None
        if min(t_model, t_aux) > end_ns:
            break
        if t_model <= t_aux:  # ties: the market moves first, then tickers and klines read it
            out: list[Event] = []
            model.advance(t_model, out)
            for event in out:
                ts = event[1] // 1_000_000
                if event[0] == "trade":
                    lines.append(messages.trade_message(trade_topic, SYMBOL, event[2], ts, prices, sizes, True, False))
                    continue
                cts = cts_of(ts)
                bids, asks = view.advance(model.book, u + 1, model.version, ts, cts)
                if not bids and not asks:
                    continue  # nothing changed in the top 50: Bybit sends nothing either
                u += 1
                lines.append(
                    messages.dumps(messages.book_dict(book_topic, "delta", SYMBOL, bids, asks, u, model.version,
                                                      ts, cts, prices, sizes, ts_first=False))
                )  # fmt: skip
            continue
        due = aux.pop_due(t_aux)
        assert due is not None
        ts = due[0] // 1_000_000
        if due[1] == 0:
            data = ticker_shape(ticker_fields(model, ts), WS_FUTURES_KEYS)
            changed = {k: v for k, v in data.items() if ticker_sent.get(k) != v}
            ticker_sent = data
            if changed:
                delta = {"symbol": SYMBOL} | changed
                lines.append(messages.ticker_message(ticker_topic, "delta", delta, model.version, ts, False))
        else:
            start = interval_start("1", ts)
            candles = [(kline_start, True), (start, False)] if start != kline_start else [(start, False)]
            kline_start = start
            lines.append(_kline(model, kline_topic, candles, ts))
    return lines


def _kline(model: SyntheticMarket, topic: str, candles: list[tuple[int, bool]], ts: int) -> bytes:
    entries = []
    for start, confirm in candles:
        candle = model.candles.candle("1", start, ts)
        assert candle is not None
        entries.append(messages.kline_entry("1", candle, confirm, ts, model.prices, model.sizes, False))
    return messages.kline_message(topic, entries, ts, False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where to write (default: {DEFAULT_OUT})")
    parser.add_argument("--seconds", type=float, default=SECONDS, help=f"length of the recording (default: {SECONDS})")
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 if the file differs")
    args = parser.parse_args(argv)
    content = b"".join(line + b"\n" for line in generate(args.seconds))
    if args.check:
        same = args.out.exists() and args.out.read_bytes() == content
        print(f"{args.out}: {'up to date' if same else 'differs from what the script makes'}")
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(content)
    count = content.count(b"\n")
    print(f"{args.out}: {count} messages, {len(content):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
