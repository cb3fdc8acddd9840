"""Bybit's WebSocket control messages (acks and pongs), per channel.

The shapes differ by channel and clients depend on the differences (shared/reference/
bybit-v5.md 4.2-4.3):

* spot acks say ``"ret_msg": "subscribe"``; linear/inverse say ``""`` and always carry
  ``req_id`` (``""`` when the client sent none); option acks are ``COMMAND_RESP`` objects;
* ``req_id`` is echoed with its JSON type: pybit sends uuid strings and looks them up, ccxt
  sends ints;
* pongs: public spot/linear answer ``{"success": true, "ret_msg": "pong", "op": "ping"}``,
  option ``{"op": "pong", "args": [ms]}``, private ``{"op": "pong", "args": [ms]}`` with
  ``conn_id``.
"""

from __future__ import annotations

from typing import Any

import orjson

_MISSING = object()


def _with_req_id(msg: dict[str, Any], req_id: Any, default: Any = _MISSING) -> dict[str, Any]:
    if req_id is not _MISSING and req_id is not None:
        msg["req_id"] = req_id
    elif default is not _MISSING:
        msg["req_id"] = default
    return msg


def public_ack(category: str, op: str, conn_id: str, req_id: Any, ok: bool, ret_msg: str, topics: list[str]) -> bytes:
    if category == "option":
        msg: dict[str, Any] = {
            "success": ok,
            "ret_msg": ret_msg,
            "conn_id": conn_id,
            "data": {"failTopics": [] if ok else topics, "successTopics": topics if ok else []},
            "type": "COMMAND_RESP",
        }
        return orjson.dumps(_with_req_id(msg, req_id))
    if ok and category == "spot":
        ret_msg = op
    msg = {"success": ok, "ret_msg": ret_msg, "conn_id": conn_id}
    _with_req_id(msg, req_id, "" if category != "spot" else _MISSING)
    msg["op"] = op
    return orjson.dumps(msg)


def public_pong(category: str, conn_id: str, req_id: Any, now_ms: int) -> bytes:
    if category == "option":
        return orjson.dumps(_with_req_id({"args": [str(now_ms)], "op": "pong"}, req_id))
    msg: dict[str, Any] = {"success": True, "ret_msg": "pong", "conn_id": conn_id}
    _with_req_id(msg, req_id, "" if category != "spot" else _MISSING)
    msg["op"] = "ping"
    return orjson.dumps(msg)


def private_ack(op: str, conn_id: str, req_id: Any, ok: bool, ret_msg: str) -> bytes:
    msg: dict[str, Any] = {}
    _with_req_id(msg, req_id)
    msg.update(success=ok, ret_msg=ret_msg, op=op, conn_id=conn_id)
    return orjson.dumps(msg)


def private_pong(conn_id: str, req_id: Any, now_ms: int) -> bytes:
    msg: dict[str, Any] = {}
    _with_req_id(msg, req_id)
    msg.update(op="pong", args=[str(now_ms)], conn_id=conn_id)
    return orjson.dumps(msg)


def private_push(topic: str, data: bytes, push_id: str, now_ms: int) -> bytes:
    """An ``order``/``execution``/``position``/``wallet`` message (``id``, ``topic``, ``creationTime``,
    ``data``), around ``data`` already encoded by the engine (the id and topic are plain tokens)."""
    return b'{"id":"%s","topic":"%s","creationTime":%d,"data":%s}' % (push_id.encode(), topic.encode(), now_ms, data)
