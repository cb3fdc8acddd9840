"""The sans-I/O exchange: plain Python, no sockets, no asyncio, clock injected.

``engine.exchange.Exchange`` is the object the state service serves; the other modules are
its parts (accounts and margin arithmetic, read-only views).
"""
