"""What the tests' own loopback servers share (the hostile servers, the CONNECT proxy): a
listener whose every connection is served on its own thread, a request head read to its
blank line, and a close that ends every connection still open."""

from __future__ import annotations

import contextlib
import socket
import threading


class LoopbackServer:
    """Listens on 127.0.0.1; a subclass serves each connection (`_serve`) and calls
    `listen()` once it is ready to."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]

    def listen(self, name: str) -> None:
        threading.Thread(target=self._accept, daemon=True, name=name).start()

    def close(self) -> None:
        self.stopping.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def keep(self, sock: socket.socket) -> None:
        """Shut `sock` down at close()."""
        with self._lock:
            self._sockets.add(sock)

    def forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return
            self.keep(raw)
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        raise NotImplementedError


def read_head(connection: socket.socket, size: int = 4096) -> bytes | None:
    """What arrived up to a request head's blank line (and any bytes after it in the last
    read); None when the peer closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(size)
        if not chunk:
            return None
        data += chunk
    return data
