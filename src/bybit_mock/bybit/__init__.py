"""Bybit v5 wire format: HMAC auth, the response envelope, error codes and JSON shapes."""
