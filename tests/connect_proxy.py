"""A CONNECT proxy on loopback, as self-hosted runners sit behind, that can misbehave.

It speaks only CONNECT (what requests uses for https:// URLs) and tunnels the bytes
both ways untouched, so TLS runs end to end between the action and the server, as
through a real corporate proxy. Its mode decides how it treats every tunnel:

- `pass`: answers `200 Connection established` at once and tunnels at full speed;
- `trickle-accept`: sends that 200 line one byte per `every` seconds;
- `trickle-tunnel`: answers at once, then passes the server's bytes one per `every`;
- `stall`: reads the CONNECT and never answers;
- `auth`: answers every CONNECT `407 Proxy Authentication Required` (it wants
  credentials it was not given, or refuses those it was).

`connects` records (time.monotonic(), "host:port") for every CONNECT it read.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from .loopback import LoopbackServer, read_head

MODES = ("pass", "trickle-accept", "trickle-tunnel", "stall", "auth")
AUTHENTICATION_REQUIRED = (
    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
    b'Proxy-Authenticate: Basic realm="corp"\r\nContent-Length: 0\r\n\r\n'
)
ESTABLISHED = b"HTTP/1.1 200 Connection established\r\n\r\n"


class ConnectProxy(LoopbackServer):
    def __init__(self, mode: str = "pass", *, every: float = 0.5) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        super().__init__()
        self.mode = mode
        self.every = every
        self.connects: list[tuple[float, str]] = []
        self.url = f"http://127.0.0.1:{self.port}"
        self.listen("proxy-accept")

    def __enter__(self) -> ConnectProxy:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def targets(self) -> list[str]:
        with self._lock:
            return [target for _, target in self.connects]

    def _serve(self, client: socket.socket) -> None:
        try:
            head = read_head(client)
            if head is None:
                return
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            with self._lock:
                self.connects.append((time.monotonic(), target))
            if method != "CONNECT":
                client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            if self.mode == "stall":
                self.stopping.wait()
                return
            if self.mode == "auth":
                client.sendall(AUTHENTICATION_REQUIRED)
                return
            host, port = target.rsplit(":", 1)
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=30)
            self.keep(upstream)
            if self.mode == "trickle-accept":
                self._trickle(client, ESTABLISHED)
            else:
                client.sendall(ESTABLISHED)
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            self._pump(upstream, client, self.mode == "trickle-tunnel")
        except (OSError, ValueError):
            pass  # the client gave up, or the test ended: both are expected here
        finally:
            with contextlib.suppress(OSError):
                client.close()

    def _trickle(self, to: socket.socket, data: bytes) -> None:
        """`data` at one byte per `every` seconds on the monotonic clock: the n-th byte is
        due `n * every` after the start, so a wake-up a loaded machine delays sends what
        fell due meanwhile instead of slowing the whole trickle down."""
        started = time.monotonic()
        sent = 0
        while sent < len(data):
            due = min(len(data), int((time.monotonic() - started) / self.every))
            if due > sent:
                to.sendall(data[sent:due])
                sent = due
            elif self.stopping.wait(started + (sent + 1) * self.every - time.monotonic()):
                return

    def _pump(self, source: socket.socket, to: socket.socket, trickle: bool) -> None:
        try:
            while not self.stopping.is_set():
                data = source.recv(65536)
                if not data:
                    break
                if trickle:
                    self._trickle(to, data)
                else:
                    to.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, to):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
