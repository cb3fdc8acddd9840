"""REST workers: an httptools ``asyncio.Protocol`` on uvloop, a routing table, Bybit handlers."""
