"""What a soak watches in every process of the mock, sampled from outside it.

* **Memory and descriptors** come from ``/proc/<pid>``: ``VmRSS`` in ``status`` and the
  entries of ``fd`` (Linux; elsewhere the values are ``None``). Reading them costs the mock
  nothing, and a worker the supervisor replaced shows up under its new pid.
* **Event-loop lag** is seen the way a client sees it: the time a tiny request takes to come
  back, less what the same request takes on an idle loop. ``GET /v5/market/time`` is answered
  by the REST worker's loop alone, and a WebSocket ``ping`` by the WS worker's loop alone, so
  each probe's round trip is that loop's lag plus a loopback round trip (tens of µs).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

#: seconds a probe waits for its answer before it counts as a lag of that long
PROBE_TIMEOUT = 5.0


@dataclass
class ProcessSample:
    rss_bytes: int | None
    fds: int | None


def sample_process(pid: int, proc: Path = Path("/proc")) -> ProcessSample:
    """One process's resident memory and open descriptors (None where /proc cannot say)."""
    rss: int | None = None
    fds: int | None = None
    try:
        for line in (proc / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024  # kB
                break
    except (OSError, ValueError, IndexError):
        pass
    try:
        fds = len(os.listdir(proc / str(pid) / "fd"))
    except OSError:
        pass
    return ProcessSample(rss, fds)


class HttpProbe:
    """``GET /v5/market/time`` on one keep-alive connection: the REST loop's lag, as a client sees it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._sock: socket.socket | None = None
        self._request = f"GET /v5/market/time HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()

    def round_trip(self) -> float:
        """Seconds for one request and its whole answer (reconnecting if the socket died)."""
        for attempt in (0, 1):
            try:
                if self._sock is None:
                    self._sock = socket.create_connection((self.host, self.port), timeout=PROBE_TIMEOUT)
                start = time.perf_counter()
                self._sock.sendall(self._request)
                self._read_response(self._sock)
                return time.perf_counter() - start
            except OSError:
                self.close()
                if attempt:
                    return PROBE_TIMEOUT
        return PROBE_TIMEOUT  # pragma: no cover - the loop returns

    @staticmethod
    def _read_response(sock: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed")
            body += chunk

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
