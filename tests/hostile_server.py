"""A deliberately hostile HTTPS server: it misbehaves below HTTP, where the emulator cannot.

Each connection's request head is read, recorded with its arrival time, and then
handed to the test's `answer` function, which writes whatever bytes it likes at
whatever pace it likes (a byte at a time, a body without end), or nothing.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import trustme

from .loopback import LoopbackServer, read_head

Answer = Callable[[ssl.SSLSocket, "Seen"], None]


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    at: float  # time.monotonic() when the request head arrived


class HostileServer(LoopbackServer):
    def __init__(self, answer: Answer, ca_dir: Path) -> None:
        super().__init__()
        self._answer = answer
        ca = trustme.CA(organization_name="hostile test server")
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(self._context)
        self.ca_path = ca_dir / "hostile-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_path))
        self.url = f"https://127.0.0.1:{self.port}"
        self.seen: list[Seen] = []
        self.listen("hostile-accept")

    def _serve(self, raw: socket.socket) -> None:
        with contextlib.suppress(OSError, ssl.SSLError), raw:
            conn = self._context.wrap_socket(raw, server_side=True)
            while not self.stopping.is_set():
                head = read_head(conn)
                if head is None:
                    return
                method, path = head.split(b"\r\n", 1)[0].decode().split(" ")[:2]
                seen = Seen(method, path, time.monotonic())
                with self._lock:
                    self.seen.append(seen)
                self._answer(conn, seen)


def trickle(data: bytes, interval: float, stop: threading.Event, *, head: bytes = b"") -> Answer:
    """Send `head` at once, then `data` a byte at a time, `interval` seconds apart."""

    def answer(conn: ssl.SSLSocket, seen: Seen) -> None:
        conn.sendall(head)
        for byte in data:
            if stop.wait(interval):
                return
            conn.sendall(bytes([byte]))

    return answer


def http_answer(status: int, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def endless_chunks(stop: threading.Event) -> Answer:
    """A 200 whose chunked body never ends, sent as fast as the client reads it."""

    def answer(conn: ssl.SSLSocket, seen: Seen) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        conn.sendall(b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"4000\r\n" + b"[" * 0x4000 + b"\r\n"
        while not stop.is_set():
            conn.sendall(chunk)

    return answer


@contextlib.contextmanager
def hostile(
    answer_for: Callable[[threading.Event], Answer], ca_dir: Path
) -> Iterator[HostileServer]:
    stop = threading.Event()
    server = HostileServer(answer_for(stop), ca_dir)
    try:
        yield server
    finally:
        stop.set()
        server.close()


def both_cas(*paths: Path | str, into: Path) -> str:
    """One CA bundle trusting several test CAs (REQUESTS_CA_BUNDLE takes one file)."""
    into.write_text("".join(Path(p).read_text(encoding="utf-8") for p in paths), encoding="utf-8")
    return str(into)
