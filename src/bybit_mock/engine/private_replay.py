"""Canned private messages: a JSONL file of Bybit private-stream messages, encoded once, each
sent again with fresh ids and times at the cost of a byte join.

Each line of the file is one message as Bybit sends it on ``/v5/private`` (``topic``
``order``, ``execution``, ``position``, ``wallet`` ...). Replaying them must not repeat ids (a
bot that dedups by ``execId`` would drop the second loop) and must look current, so:

* every ``orderId``, ``execId`` and the message's own ``id`` is a hole numbered by its
  distinct value in the file; loop ``n`` fills it with that id shifted by ``n``
  (:func:`shifted`), the same new id everywhere the file had the old one (an order and its
  execution still match);
* every ``creationTime``, ``createdTime``, ``updatedTime`` and ``execTime`` is a hole filled
  with the time of sending, as the file had it (a JSON string or a number).

A message is encoded once (orjson) into the bytes between its holes; sending one is a join.
What goes in the engine's event log is :class:`RawJson`: bytes here, an ``orjson.Fragment``
once unpickled in a WS worker, so the worker's ``orjson.dumps`` sends it as it is instead of
encoding it again.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson

ID_KEYS = frozenset({"orderId", "execId"})
TIME_KEYS = frozenset({"creationTime", "createdTime", "updatedTime", "execTime"})
#: the bundled sample (``bybit_mock/data/``)
SAMPLE = "sample-private.jsonl"
_HOLE = re.compile(rb"@@(T|\d+)@@")
_MASK_48 = (1 << 48) - 1


class RawJson(bytes):
    """An encoded message that a WS worker sends as it is (unpickled as ``orjson.Fragment``)."""

    __slots__ = ()

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return (orjson.Fragment, (bytes(self),))


def _hex_tail(ident: str) -> int | None:
    tail = ident[-12:]
    return int(tail, 16) if len(tail) == 12 and all(c in "0123456789abcdef" for c in tail) else None


def shifted(ident: str, loop: int) -> str:
    """``ident`` as loop ``loop`` sends it: loop 0 as in the file; later loops add ``loop`` to a
    hex tail of 12 digits (a UUID stays a UUID; distinct ids stay distinct within a loop), or
    append ``-loop`` to any other id."""
    if loop == 0:
        return ident
    tail = _hex_tail(ident)
    return f"{ident[:-12]}{(tail + loop) & _MASK_48:012x}" if tail is not None else f"{ident}-{loop}"


class _Id:
    """One distinct id of the file, parsed once: a loop's form of it is one format."""

    __slots__ = ("encoded", "prefix", "tail")

    def __init__(self, ident: str) -> None:
        self.tail = _hex_tail(ident)
        self.prefix = ident[:-12].encode() if self.tail is not None else b""
        self.encoded = orjson.dumps(ident)[1:-1]  # JSON-escaped, unquoted

    def at(self, loop: int) -> bytes:
        if loop == 0:
            return self.encoded
        if self.tail is not None:
            return self.prefix + b"%012x" % ((self.tail + loop) & _MASK_48)
        return self.encoded + b"-%d" % loop


class Template:
    """One message split at its holes: ``parts[i]``, hole ``i``, ``parts[i + 1]`` ..."""

    __slots__ = ("holes", "parts")

    def __init__(self, parts: list[bytes], holes: list[int]) -> None:
        self.parts = parts
        self.holes = holes  # -1: the time; n >= 0: distinct id n

    def render(self, ids: list[bytes], now: bytes) -> RawJson:
        parts = self.parts
        out = [parts[0]]
        for hole, part in zip(self.holes, parts[1:], strict=True):
            out += (now if hole < 0 else ids[hole], part)
        return RawJson(b"".join(out))


class PrivateReplay:
    """The file's messages, encoded once, sent in order, looping with new ids each time."""

    def __init__(self, messages: list[dict[str, Any]]) -> None:
        if not messages:
            raise ValueError("a canned private activity file needs at least one message")
        self.ids: list[str] = []  # distinct ids in the file, in order of first appearance
        index: dict[str, int] = {}
        self.templates = [self._template(m, index) for m in messages]
        self._parsed = [_Id(i) for i in self.ids]
        self.position = 0  # the next message
        self.loop = 0
        self._loop_ids = self._ids_for(0)

    def restart(self) -> None:
        """From the first message again, with the file's own ids (loop 0)."""
        self.position = self.loop = 0
        self._loop_ids = self._ids_for(0)

    @classmethod
    def load(cls, path: str | None) -> PrivateReplay:
        """From a JSONL file (None: the bundled sample); blank lines are skipped."""
        if path is None:
            text = (Path(__file__).resolve().parent.parent / "data" / SAMPLE).read_bytes()
        else:
            text = Path(path).read_bytes()
        messages = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                message = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"{path or SAMPLE}:{n}: not JSON ({exc})") from None
            if not isinstance(message, dict) or not isinstance(message.get("topic"), str):
                raise ValueError(f"{path or SAMPLE}:{n}: each line must be one private message (with a topic)")
            messages.append(message)
        return cls(messages)

    def _template(self, message: dict[str, Any], index: dict[str, int]) -> Template:
        def hole(value: Any, is_id: bool) -> Any:
            if is_id:
                if not isinstance(value, str) or not value:
                    return value
                if value not in index:
                    index[value] = len(self.ids)
                    self.ids.append(value)
                return f"@@{index[value]}@@"
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                return value
            return "@@T@@" if isinstance(value, str) else "@@TN@@"

        def walk(node: Any, top: bool) -> Any:
            if isinstance(node, dict):
                out = {}
                for key, value in node.items():
                    if key in ID_KEYS or (top and key == "id"):
                        out[key] = hole(value, True)
                    elif key in TIME_KEYS:
                        out[key] = hole(value, False)
                    else:
                        out[key] = walk(value, False)
                return out
            if isinstance(node, list):
                return [walk(v, False) for v in node]
            return node

        encoded = orjson.dumps(walk(message, True)).replace(b'"@@TN@@"', b"@@T@@")
        pieces = _HOLE.split(encoded)  # part, hole, part, hole ... part
        holes = [-1 if h == b"T" else int(h) for h in pieces[1::2]]
        return Template(pieces[0::2], holes)

    def _ids_for(self, loop: int) -> list[bytes]:
        return [i.at(loop) for i in self._parsed]

    def next(self, now_ms: int) -> RawJson:
        """The next message, its ids those of the current loop, its times ``now_ms``."""
        message = self.templates[self.position].render(self._loop_ids, str(now_ms).encode())
        self.position += 1
        if self.position == len(self.templates):
            self.position = 0
            self.loop += 1
            self._loop_ids = self._ids_for(self.loop)
        return message
