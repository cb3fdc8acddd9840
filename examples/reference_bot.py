#!/usr/bin/env python3
"""A reference trading bot that speaks Bybit v5's wire protocol itself (no pybit, no ccxt).

It shows, in one file, what every Bybit client must get right:

* signed REST: the ``X-BAPI-*`` headers, ``retCode`` errors, backing off on 10006;
* two WebSocket streams (public book and trades, private account pushes) that ping every
  20 s, reconnect with backoff after any close or error, and subscribe again;
* order-book continuity: each delta's ``u`` is the previous ``u`` + 1, or the book is rebuilt;
* reconciliation: pushes can be lost or repeated, so after every private reconnect (and on
  demand) the bot reads the account over REST, reports what its pushed view got wrong
  (a :class:`Drift`) and adopts REST's view.

    python examples/reference_bot.py        # starts its own bybit_mock.MockExchange
    python examples/reference_bot.py --rest http://127.0.0.1:PORT --ws ws://127.0.0.1:PORT
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from websockets.asyncio.client import ClientConnection, connect


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))  # compact, as Bybit's own samples send


log = logging.getLogger("reference_bot")
OPEN_STATUSES = {"New", "PartiallyFilled", "Untriggered"}
DEMO_KEY, DEMO_SECRET = "bybit-mock-demo-key", "bybit-mock-demo-secret"


class BybitError(Exception):
    """A REST call refused: ``retCode`` != 0, or an HTTP status other than 200."""

    def __init__(self, code: int, message: str, http_status: int = 200) -> None:
        super().__init__(f"retCode {code} (HTTP {http_status}): {message}")
        self.code, self.message, self.http_status = code, message, http_status


@dataclass(frozen=True)
class Position:
    side: str  # "Buy", "Sell", or "" when flat
    size: Decimal
    entry_price: Decimal

    @classmethod
    def of(cls, row: dict[str, Any] | None) -> Position:
        """From a ``position`` push (``entryPrice``) or a ``/v5/position/list`` row (``avgPrice``)."""
        if not row or Decimal(row.get("size") or 0) == 0:
            return FLAT
        return cls(row["side"], Decimal(row["size"]), Decimal(row.get("avgPrice") or row.get("entryPrice") or 0))

    def __str__(self) -> str:
        return f"{self.side} {self.size} @ {self.entry_price}" if self.size else "flat"


FLAT = Position("", Decimal(0), Decimal(0))


@dataclass
class Drift:
    """What the pushed view got wrong, found by :meth:`ReferenceBot.reconcile`; falsy when nothing."""

    unknown_orders: list[str] = field(default_factory=list)  # open on the exchange, never pushed
    stale_orders: list[str] = field(default_factory=list)  # open in the bot, not open on the exchange
    changed_orders: list[str] = field(default_factory=list)  # open in both, but different
    missing_fills: list[str] = field(default_factory=list)  # on the exchange, never pushed
    phantom_fills: list[str] = field(default_factory=list)  # pushed, unknown to the exchange
    position: tuple[Position, Position] | None = None  # (the bot's, the exchange's)
    balance: tuple[Decimal | None, Decimal] | None = None  # USDT wallet balance (the bot's, the exchange's)

    def __bool__(self) -> bool:
        return any(bool(value) for value in vars(self).values())


@dataclass
class Stats:
    """Counters for tests and fault scenarios to assert on."""

    connects: dict[str, int] = field(default_factory=lambda: {"public": 0, "private": 0})
    disconnects: dict[str, int] = field(default_factory=lambda: {"public": 0, "private": 0})
    book_snapshots: int = 0
    book_deltas: int = 0
    book_gaps: int = 0  # a delta whose u was not the previous u + 1: the book was resubscribed
    book_resets: int = 0  # a snapshot whose u went back (u=1: the exchange restarted its book)
    pongs: int = 0
    duplicate_fills: int = 0  # an execution pushed twice (kept once)
    reconciles: int = 0
    rate_limited: int = 0  # 10006 answers backed off from


class ReferenceBot:
    """``await start()``, trade with ``place_order``/``cancel_order``, read ``orders``, ``fills``,
    ``position``, ``usdt_balance`` and the book; ``reconcile()`` on demand; ``await stop()``."""

    def __init__(
        self,
        rest_url: str,
        ws_url: str,
        api_key: str,
        api_secret: str,
        symbol: str = "BTCUSDT",
        category: str = "linear",
        *,
        book_depth: int = 1,
        ping_interval: float = 20.0,
        backoff: tuple[float, float] = (0.5, 10.0),
        recv_window: int = 5000,
        max_retries: int = 5,
    ) -> None:
        self.rest_url, self.ws_url = rest_url.rstrip("/"), ws_url.rstrip("/")
        self.api_key, self.api_secret, self.symbol, self.category = api_key, api_secret, symbol, category
        self.book_topic, self.trade_topic = f"orderbook.{book_depth}.{symbol}", f"publicTrade.{symbol}"
        self.ping_interval, self.backoff, self.recv_window, self.max_retries = (
            ping_interval, backoff, recv_window, max_retries)  # fmt: skip
        # The market, from the public stream.
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self.last_price: Decimal | None = None
        # The account, from the private stream, corrected by reconcile().
        self.orders: dict[str, dict[str, Any]] = {}  # open orders by orderId
        self.closed_orders: dict[str, dict[str, Any]] = {}  # last known state of orders that ended
        self.fills: dict[str, dict[str, Any]] = {}  # by execId
        self.position: Position = FLAT
        self.usdt_balance: Decimal | None = None
        self.drifts: list[Drift] = []  # what each reconcile after the first one found
        self.stats = Stats()
        self.events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize=10_000)
        # Server time (ms) each piece of account state is as of: a push's creationTime, or the
        # time of the REST answer. Older news never overwrites newer.
        self._as_of: dict[str, int] = {}
        self._book_u: int | None = None  # None: waiting for a snapshot
        self._since_ms = int(time.time() * 1000)  # fills are tracked from here on
        self._last_rx = {"public": 0.0, "private": 0.0}
        self._public_ws: ClientConnection | None = None
        self._private_ws: ClientConnection | None = None
        self._synced = False
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._changed = asyncio.Event()
        self._reconcile_lock = asyncio.Lock()
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy

    # -- the market, the lifecycle, waiting --------------------------------------------------

    @property
    def best_bid(self) -> Decimal | None:
        return max(self.bids, default=None)

    @property
    def best_ask(self) -> Decimal | None:
        return min(self.asks, default=None)

    @property
    def book_u(self) -> int | None:
        """``u`` of the last book message applied; None while waiting for a snapshot."""
        return self._book_u

    async def start(self, timeout: float = 10.0) -> None:
        """Connect both streams; return once the book and the account are loaded."""
        self._stopping = False
        self._tasks = [
            asyncio.create_task(self._keep_connected("public", self._public_session)),
            asyncio.create_task(self._keep_connected("private", self._private_session)),
        ]
        try:
            await self.wait_for(lambda: self._book_u is not None and self._synced, timeout)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def drop_connection(self, name: str) -> None:
        """Cut a stream's socket abruptly (no close frame), as a network fault would."""
        ws = self._public_ws if name == "public" else self._private_ws
        if ws is not None:
            ws.transport.abort()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Return once ``predicate()`` is true (checked after every change); TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            changed = self._changed
            if predicate():
                return
            if (left := deadline - time.monotonic()) <= 0:
                raise TimeoutError("the condition did not become true in time")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), left)

    def _event(self, kind: str, payload: Any = None) -> None:
        if self.events.full():
            self.events.get_nowait()  # nobody is reading: keep the newest
        self.events.put_nowait((kind, payload))
        self._changed.set()
        self._changed = asyncio.Event()

    # -- REST ---------------------------------------------------------------------------------

    async def rest(self, method: str, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """One signed call; returns the whole envelope (``result``, ``time``...) or raises BybitError."""
        for attempt in range(self.max_retries + 1):
            status, headers, body = await asyncio.to_thread(self._http, method, path, params or {})
            try:
                reply = json.loads(body)
            except ValueError:
                reply = {}
            code = reply.get("retCode") if isinstance(reply, dict) else None
            if code == 10006 and attempt < self.max_retries:  # rate limited: wait for the window
                self.stats.rate_limited += 1
                self._event("rate_limited", path)
                reset = headers.get("x-bapi-limit-reset-timestamp", "")
                wait = int(reset) / 1000 - time.time() if reset.isdigit() else 1.0
                await asyncio.sleep(min(max(wait, 0.05), 10.0))
                continue
            if status != 200 or code != 0:
                message = reply.get("retMsg") if isinstance(reply, dict) else None
                raise BybitError(
                    code if isinstance(code, int) else -1, message or body[:200].decode(errors="replace"), status
                )
            return reply
        raise AssertionError("unreachable")

    def _http(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        """Runs in a thread. Signs ts + key + recv_window + (query string or body), exactly as sent."""
        ts = str(int(time.time() * 1000))
        payload = urllib.parse.urlencode(params) if method == "GET" else dumps(params)
        url = f"{self.rest_url}{path}" + (f"?{payload}" if method == "GET" and payload else "")
        sign = hmac.new(
            self.api_secret.encode(), f"{ts}{self.api_key}{self.recv_window}{payload}".encode(), hashlib.sha256
        )
        headers = {"X-BAPI-API-KEY": self.api_key, "X-BAPI-TIMESTAMP": ts, "X-BAPI-SIGN": sign.hexdigest(),
                   "X-BAPI-RECV-WINDOW": str(self.recv_window), "Content-Type": "application/json"}  # fmt: skip
        data = payload.encode() if method != "GET" else None
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with self._opener.open(request, timeout=10) as resp:
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
        except urllib.error.HTTPError as err:  # not 200: still read Bybit's envelope
            return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()

    async def place_order(self, side: str, qty: str | Decimal, order_type: str = "Market",
                          price: str | Decimal | None = None, order_link_id: str | None = None) -> str:  # fmt: skip
        body = {
            "category": self.category,
            "symbol": self.symbol,
            "side": side,
            "orderType": order_type,
            "qty": str(qty),
        }
        if price is not None:
            body["price"] = str(price)
        if order_link_id is not None:
            body["orderLinkId"] = order_link_id
        return str((await self.rest("POST", "/v5/order/create", body))["result"]["orderId"])

    async def cancel_order(self, order_id: str) -> None:
        await self.rest(
            "POST", "/v5/order/cancel", {"category": self.category, "symbol": self.symbol, "orderId": order_id}
        )

    # -- WebSocket: connect, reconnect, ping ---------------------------------------------------

    async def _keep_connected(self, name: str, session: Callable[[], Awaitable[None]]) -> None:
        delay = self.backoff[0]
        while not self._stopping:
            connects = self.stats.connects[name]
            try:
                await session()
                reason = "closed by the server"
            except Exception as exc:  # any failure means the same thing: connect again
                reason = repr(exc)
            if self._stopping:
                return
            self.stats.disconnects[name] += 1
            self._event("disconnected", (name, reason))
            if self.stats.connects[name] > connects:  # it was up: back off from the start again
                delay = self.backoff[0]
            log.warning("%s stream lost (%s); reconnecting in %.1f s", name, reason, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff[1])

    async def _ack(self, ws: ClientConnection, name: str, request: dict[str, Any]) -> dict[str, Any]:
        """Send ``request`` and return its ack (anything arriving meanwhile is handled as usual)."""
        await ws.send(dumps(request))
        async with asyncio.timeout(10):
            while True:
                msg = json.loads(await ws.recv())
                if msg.get("op") == request["op"]:
                    if not msg.get("success"):
                        raise ConnectionError(f"{request['op']} refused: {msg}")
                    return msg
                await self._on_message(name, msg)

    async def _pinger(self, ws: ClientConnection, name: str) -> None:
        """Bybit wants ``{"op": "ping"}`` every 20 s; a connection that sends nothing back is dead."""
        while True:
            sent = time.monotonic()
            await ws.send(dumps({"op": "ping"}))
            await asyncio.sleep(self.ping_interval)
            if self._last_rx[name] < sent:
                log.warning("%s stream: no answer to a ping; dropping it", name)
                ws.transport.abort()
                return

    async def _serve(self, ws: ClientConnection, name: str) -> None:
        pinger = asyncio.create_task(self._pinger(ws, name))
        try:
            async for raw in ws:
                await self._on_message(name, json.loads(raw))
        finally:
            pinger.cancel()

    async def _on_message(self, name: str, msg: dict[str, Any]) -> None:
        self._last_rx[name] = time.monotonic()
        if msg.get("op") == "pong" or msg.get("ret_msg") == "pong":
            self.stats.pongs += 1
            self._event("pong", name)
        elif msg.get("success") is False:
            log.warning("%s stream refused a request: %s", name, msg)
            self._event("refused", msg)
        elif name == "public":
            await self._on_public(msg)
        elif "topic" in msg:
            self._on_private(msg)

    async def _public_session(self) -> None:
        async with connect(f"{self.ws_url}/v5/public/{self.category}", ping_interval=None) as ws:
            self._public_ws, self._book_u, self.bids, self.asks = ws, None, {}, {}  # until the snapshot
            await self._ack(ws, "public", {"op": "subscribe", "args": [self.book_topic, self.trade_topic]})
            self.stats.connects["public"] += 1
            self._event("connected", "public")
            await self._serve(ws, "public")

    async def _private_session(self) -> None:
        async with connect(f"{self.ws_url}/v5/private", ping_interval=None) as ws:
            self._private_ws = ws
            expires = int(time.time() * 1000) + 10_000
            signature = hmac.new(self.api_secret.encode(), f"GET/realtime{expires}".encode(), hashlib.sha256)
            await self._ack(ws, "private", {"op": "auth", "args": [self.api_key, expires, signature.hexdigest()]})
            await self._ack(ws, "private", {"op": "subscribe", "args": ["order", "execution", "position", "wallet"]})
            self.stats.connects["private"] += 1
            self._event("connected", "private")
            # Pushes sent while we were away are lost: read the account again, while the
            # pushes that arrive meanwhile keep being applied (the newer news wins).
            resync = asyncio.create_task(self._resync(ws))
            try:
                await self._serve(ws, "private")
            finally:
                resync.cancel()

    async def _resync(self, ws: ClientConnection) -> None:
        try:
            await self.reconcile()
        except Exception as exc:  # the account is unknown: start over with a new connection
            log.warning("reconcile after connecting failed (%r); reconnecting", exc)
            ws.transport.abort()

    # -- the public stream: book and trades ----------------------------------------------------

    async def _on_public(self, msg: dict[str, Any]) -> None:
        if msg.get("topic") == self.trade_topic:
            self.last_price = Decimal(msg["data"][-1]["p"])
            self._event("trade", msg["data"])
        elif msg.get("topic") == self.book_topic:
            data, u = msg["data"], msg["data"]["u"]
            if msg["type"] == "snapshot":  # replaces the book, whatever came before
                if self._book_u is not None and u < self._book_u:
                    self.stats.book_resets += 1  # u=1: the exchange restarted; this snapshot is the book now
                self.bids = {Decimal(p): Decimal(s) for p, s in data["b"]}
                self.asks = {Decimal(p): Decimal(s) for p, s in data["a"]}
                self._book_u = u
                self.stats.book_snapshots += 1
            elif self._book_u is None:
                return  # deltas before the snapshot we asked for: useless
            elif u != self._book_u + 1:  # a lost or repeated delta: the book is wrong; ask again
                self.stats.book_gaps += 1
                self._book_u = None
                self.bids, self.asks = {}, {}
                if (ws := self._public_ws) is not None:
                    await ws.send(dumps({"op": "unsubscribe", "args": [self.book_topic]}))
                    await ws.send(dumps({"op": "subscribe", "args": [self.book_topic]}))
            else:
                for side, levels in ((self.bids, data["b"]), (self.asks, data["a"])):
                    for price, size in levels:
                        if Decimal(size) == 0:
                            side.pop(Decimal(price), None)
                        else:
                            side[Decimal(price)] = Decimal(size)
                self._book_u = u
                self.stats.book_deltas += 1
            self._event("book", self._book_u)

    # -- the private stream and reconciliation -------------------------------------------------

    def _newer(self, key: str, as_of: int) -> bool:
        """True (and remembered) unless we already know ``key`` as of a later time."""
        if as_of < self._as_of.get(key, 0):
            return False
        self._as_of[key] = as_of
        return True

    def _on_private(self, msg: dict[str, Any]) -> None:
        kind, as_of = msg["topic"].split(".")[0], int(msg.get("creationTime") or 0)
        for item in msg.get("data", []):
            if kind == "wallet":
                usdt = next((c for c in item.get("coin", []) if c["coin"] == "USDT"), None)
                if usdt is not None and self._newer("balance", as_of):
                    self.usdt_balance = Decimal(usdt["walletBalance"])
            elif item.get("symbol") != self.symbol or item.get("category", self.category) != self.category:
                continue  # another market's news
            elif kind == "order" and self._newer(item["orderId"], as_of):
                self._adopt_order(item)
            elif kind == "execution":
                if item["execId"] in self.fills:
                    self.stats.duplicate_fills += 1
                self.fills[item["execId"]] = item
            elif kind == "position" and int(item.get("positionIdx", 0)) == 0 and self._newer("position", as_of):
                self.position = Position.of(item)
            self._event(kind, item)

    def _adopt_order(self, order: dict[str, Any]) -> None:
        if order["orderStatus"] in OPEN_STATUSES:
            self.orders[order["orderId"]] = order
            self.closed_orders.pop(order["orderId"], None)
        else:
            self.orders.pop(order["orderId"], None)
            self.closed_orders[order["orderId"]] = order

    async def _pages(self, path: str, params: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
        """Every page of a list (at most 20); returns the rows and the first page's server time."""
        rows: list[dict[str, Any]] = []
        first_time, cursor = 0, ""
        for _ in range(20):
            envelope = await self.rest("GET", path, params | ({"cursor": cursor} if cursor else {}))
            first_time = first_time or int(envelope["time"])
            rows += envelope["result"]["list"]
            if not (cursor := envelope["result"].get("nextPageCursor") or ""):
                break
        return rows, first_time

    async def reconcile(self) -> Drift:
        """Read orders, position, balance and fills over REST, report what the pushed view got
        wrong, and adopt REST's view (except what a push told us after REST answered)."""
        async with self._reconcile_lock:
            query = {"category": self.category, "symbol": self.symbol}
            orders, t_orders = await self._pages("/v5/order/realtime", query | {"limit": 50})
            positions, t_position = await self._pages("/v5/position/list", query)
            wallet = await self.rest("GET", "/v5/account/wallet-balance", {"accountType": "UNIFIED", "coin": "USDT"})
            fills, t_fills = await self._pages(
                "/v5/execution/list", query | {"limit": 100, "startTime": self._since_ms}
            )
            open_now = {o["orderId"]: o for o in orders}
            ended = {}  # orders that ended unseen (or never existed): how did they end?
            for order_id in [o for o in self.orders if o not in open_now]:
                rows, _ = await self._pages("/v5/order/realtime", query | {"orderId": order_id})
                ended[order_id] = rows[0] if rows else self.orders[order_id]
            # From here on nothing awaits: the comparison and the update see one moment.
            drift = Drift()
            for order_id, order in open_now.items():
                if self._newer(order_id, t_orders):
                    if order_id not in self.orders:
                        drift.unknown_orders.append(order_id)
                    elif _order_key(self.orders[order_id]) != _order_key(order):
                        drift.changed_orders.append(order_id)
                    self._adopt_order(order)
            for order_id in [o for o in self.orders if o not in open_now and self._newer(o, t_orders)]:
                drift.stale_orders.append(order_id)
                self.closed_orders[order_id] = ended.get(order_id, self.orders[order_id])
                del self.orders[order_id]
            position = Position.of(next((p for p in positions if int(p.get("positionIdx", 0)) == 0), None))
            if self._newer("position", t_position):
                if position != self.position:
                    drift.position = (self.position, position)
                self.position = position
            usdt = next((c for c in wallet["result"]["list"][0]["coin"] if c["coin"] == "USDT"), {"walletBalance": "0"})
            balance = Decimal(usdt["walletBalance"])
            if self._newer("balance", int(wallet["time"])):
                if balance != self.usdt_balance:
                    drift.balance = (self.usdt_balance, balance)
                self.usdt_balance = balance
            rest_fills = {f["execId"]: f for f in fills}
            drift.missing_fills = [e for e in rest_fills if e not in self.fills]
            window = range(self._since_ms, t_fills + 1)  # what REST's list covers
            drift.phantom_fills = [
                e for e, f in self.fills.items() if e not in rest_fills and int(f["execTime"]) in window
            ]
            for exec_id in drift.phantom_fills:
                del self.fills[exec_id]
            self.fills.update((e, rest_fills[e]) for e in drift.missing_fills)
            self.stats.reconciles += 1
            if self._synced:  # the first load finds everything "missing": not a drift
                self.drifts.append(drift)
            self._synced = True
            self._event("reconciled", drift)
            return drift


def _order_key(order: dict[str, Any]) -> tuple[str, Decimal, Decimal, Decimal]:
    return (order["orderStatus"], Decimal(order["qty"]), Decimal(order["price"] or 0), Decimal(order["cumExecQty"]))


# -- the demo -----------------------------------------------------------------------------------


async def demo(rest_url: str, ws_url: str, key: str, secret: str, symbol: str) -> None:
    bot = ReferenceBot(rest_url, ws_url, key, secret, symbol)
    await bot.start()
    with contextlib.suppress(TimeoutError):
        await bot.wait_for(lambda: bot.last_price is not None, 2)
    print(f"book: bid {bot.best_bid} / ask {bot.best_ask}, last trade {bot.last_price}")
    print(f"account: USDT {bot.usdt_balance}, position {bot.position}, {len(bot.orders)} open orders")
    order_id = await bot.place_order("Buy", "0.001")
    await bot.wait_for(lambda: any(f["orderId"] == order_id for f in bot.fills.values()), 5)
    fill = next(f for f in bot.fills.values() if f["orderId"] == order_id)
    print(f"filled: {fill['side']} {fill['execQty']} @ {fill['execPrice']}, fee {fill['execFee']} (order {order_id})")
    await bot.wait_for(lambda: bot.position.size > 0)
    print(f"account: USDT {bot.usdt_balance}, position {bot.position}")
    drift = await bot.reconcile()
    print("reconcile:", drift if drift else "pushed view matches REST")
    await bot.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rest", help="REST base URL, e.g. http://127.0.0.1:PORT (default: start a mock)")
    parser.add_argument("--ws", help="WebSocket base URL, e.g. ws://127.0.0.1:PORT")
    parser.add_argument("--key", default=DEMO_KEY)
    parser.add_argument("--secret", default=DEMO_SECRET)
    parser.add_argument("--symbol", default="BTCUSDT")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.rest or args.ws:
        if not (args.rest and args.ws):
            parser.error("--rest and --ws go together")
        asyncio.run(demo(args.rest, args.ws, args.key, args.secret, args.symbol))
        return 0
    from bybit_mock import MockExchange  # noqa: PLC0415  # only the no-argument demo needs it

    with MockExchange() as ex:
        print(f"started a mock exchange: {ex.rest_url} {ex.ws_url}")
        asyncio.run(demo(ex.rest_url, ex.ws_url, ex.api_key, ex.api_secret, args.symbol))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
