"""WebSocket workers: picows listeners for the public, private (and later trade) channels."""
