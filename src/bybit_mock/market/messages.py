"""Bybit's public stream messages, byte for byte in key order (section 4 of the reference).

Key order is not cosmetic: Bybit puts ``ts`` before ``type`` on spot (every depth) and on
futures level 1, and after it on futures deeper books, and some hand-written clients parse
by position. orjson keeps dict insertion order, so each builder writes keys in Bybit's order.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from .candles import Candle, interval_end
from .fixed import Fixed, fmt_product
from .model import Trade

dumps = orjson.dumps


def book_dict(
    topic: str,
    kind: str,
    symbol: str,
    bids: Iterable[tuple[int, int]],
    asks: Iterable[tuple[int, int]],
    u: int,
    seq: int,
    ts: int,
    cts: int,
    prices: Fixed,
    sizes: Fixed,
    ts_first: bool,
    tesser: bool = False,
) -> dict[str, Any]:
    """An ``orderbook`` message, not yet encoded (a canned market hands the publisher dicts)."""
    pf = prices.fmt

    def sf(lots: int) -> str:
        return sizes.fmt(lots) if lots else "0"  # Bybit deletes a level with a bare "0"

    data = {
        "s": symbol,
        "b": [[pf(t), sf(q)] for t, q in bids],
        "a": [[pf(t), sf(q)] for t, q in asks],
        "u": u,
        "seq": seq,
    }
    msg: dict[str, Any] = {"topic": topic}
    if tesser:
        msg["_topic"] = topic
    if ts_first:
        msg["ts"] = ts
        msg["type"] = kind
    else:
        msg["type"] = kind
        msg["ts"] = ts
    msg["data"] = data
    msg["cts"] = cts
    return msg


def trade_message(
    topic: str, symbol: str, trades: list[Trade], ts: int, prices: Fixed, sizes: Fixed, futures: bool, tesser: bool
) -> bytes:
    pf, sf = prices.fmt, sizes.fmt
    if futures:
        data = [
            {"T": t.t_ms, "s": symbol, "S": t.side, "v": sf(t.lots), "p": pf(t.tick), "L": t.direction,
             "i": t.trade_id, "BT": False, "RPI": False, "seq": t.seq}
            for t in trades
        ]  # fmt: skip
    else:
        data = [
            {"i": t.trade_id, "T": t.t_ms, "p": pf(t.tick), "v": sf(t.lots), "S": t.side, "s": symbol,
             "BT": False, "RPI": False, "seq": t.seq}
            for t in trades
        ]  # fmt: skip
    msg: dict[str, Any] = {"topic": topic}
    if tesser:
        msg["_topic"] = topic
    msg["type"] = "snapshot"
    msg["ts"] = ts
    msg["data"] = data
    return dumps(msg)


def kline_entry(
    interval: str, candle: Candle, confirm: bool, ts: int, prices: Fixed, sizes: Fixed, tesser: bool
) -> dict[str, Any]:
    end = interval_end(interval, candle.start) - 1
    entry: dict[str, Any] = {}
    if tesser:
        entry["_start"] = candle.start
        entry["_end"] = end
    entry.update(
        start=candle.start,
        end=end,
        interval=interval,
        open=prices.fmt(candle.open),
        close=prices.fmt(candle.close),
        high=prices.fmt(candle.high),
        low=prices.fmt(candle.low),
        volume=sizes.fmt(candle.volume),
        turnover=fmt_product(candle.turnover, prices, 1, sizes),
        confirm=confirm,
        timestamp=ts,
    )
    return entry


def kline_message(topic: str, entries: list[dict[str, Any]], ts: int, tesser: bool) -> bytes:
    return dumps(kline_dict(topic, entries, ts, tesser))


def kline_dict(topic: str, entries: list[dict[str, Any]], ts: int, tesser: bool = False) -> dict[str, Any]:
    """:func:`kline_message` before encoding."""
    msg: dict[str, Any] = {"topic": topic}
    if tesser:
        msg["_topic"] = topic
    msg.update(data=entries, ts=ts, type="snapshot")
    return msg


def ticker_message(topic: str, kind: str, data: dict[str, str], cs: int, ts: int, spot: bool) -> bytes:
    if spot:  # spot: snapshots only, ts first
        return dumps({"topic": topic, "ts": ts, "type": "snapshot", "cs": cs, "data": data})
    return dumps({"topic": topic, "type": kind, "data": data, "cs": cs, "ts": ts})


def with_tesser_fields(msg: dict[str, Any]) -> dict[str, Any]:
    """A recorded message with Tesser's extra fields added (a copy: the recording is shared)."""
    topic = msg.get("topic", "")
    out: dict[str, Any] = {"topic": topic, "_topic": topic}
    out.update((k, v) for k, v in msg.items() if k != "topic")
    if topic.startswith("kline.") and isinstance(out.get("data"), list):
        out["data"] = [
            {"_start": e.get("start"), "_end": e.get("end"), **e} if isinstance(e, dict) else e for e in out["data"]
        ]
    return out
