"""HTTPS plumbing: a threaded HTTP/1.1 server that records requests and applies faults."""

from __future__ import annotations

import contextlib
import itertools
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from .faults import Fault
from .records import Headers, Recorded
from .responses import Response


class Application(Protocol):
    def admit(self, req: Recorded) -> Fault | None:
        """Record the request (when it is recordable) and return the fault to apply, if any."""

    def dispatch(self, req: Recorded, base_url: str) -> Response:
        """The normal answer to the request, after any state change it causes."""


class HttpsServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], app: Application, context: ssl.SSLContext, verbose: bool
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        # The handshake happens in the connection's own thread (on its first read), so a
        # client that stalls it cannot block accept().
        self.socket = context.wrap_socket(
            self.socket, server_side=True, do_handshake_on_connect=False
        )
        self.app = app
        self.verbose = verbose
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn) that can take seconds.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def track(self, connection: socket.socket, live: bool) -> None:
        with self._lock:
            (self._connections.add if live else self._connections.discard)(connection)

    def stop(self) -> None:
        self.stopping.set()  # ends hangs
        self.shutdown()
        self.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            # Below TLS: wakes a thread blocked reading a kept-alive connection.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(connection, socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Dropped connections, failed handshakes and shutdown races are expected here.
        if isinstance(sys.exc_info()[1], OSError | ValueError) or self.stopping.is_set():
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so clients reuse connections as in production
    server_version = "store-emulator"
    sys_version = ""
    server: HttpsServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm and
        # the client's delayed ACK add ~40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request is written by _serve when verbose

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        started = time.monotonic()
        body = self._read_body()
        url = urlsplit(self.path)
        req = Recorded(
            method=self.command,
            path=url.path,
            query=dict(parse_qsl(url.query, keep_blank_values=True)),
            headers=Headers(self.headers.items()),
            body=body,
            started=started,
            correlation_id=str(uuid.uuid4()),
        )
        # Endpoints named in discovery documents follow the host the client used.
        base_url = f"https://{self.headers.get('Host') or self.server.server_name}"
        app = self.server.app
        fault = app.admit(req)
        if fault is not None:
            req.fault = fault.kind
        try:
            self._apply(req, fault, lambda: app.dispatch(req, base_url))
        finally:
            if self.server.verbose:
                outcome = req.status if req.status is not None else req.fault
                print(f"{req.method} {self.path} -> {outcome}", file=sys.stderr, flush=True)

    def _apply(self, req: Recorded, fault: Fault | None, dispatch: Callable[[], Response]) -> None:
        kind = fault.kind if fault is not None else None
        if fault is None:
            self._send(req, dispatch())
        elif kind == "reset_before":
            self._reset()
        elif kind == "hang":
            self._hang(fault.seconds)
        elif kind == "respond":
            self._send(req, fault.response(), fault.framing)
        elif kind == "respond_after":
            dispatch()  # the request takes effect; the answer says otherwise
            self._send(req, fault.response(), fault.framing)
        elif kind == "truncate" and fault.body is not None:
            self._answer(req, fault.response(), truncate=True)
        elif kind == "delay":
            if self.server.stopping.wait(fault.seconds):
                self.close_connection = True
                return
            response = fault.response() if fault.body is not None else dispatch()
            self._send(req, response, fault.framing)
        elif kind == "trickle":
            response = fault.response() if fault.body is not None else dispatch()
            self._send(req, response, fault.framing, fault.endless, fault.interval)
        elif kind == "huge":
            self._send(req, fault.huge_response(), fault.framing, fault.endless)
        else:
            response = dispatch()  # the request takes effect before the connection misbehaves
            if kind == "reset_after":
                self._reset()
            elif kind == "hang_after":
                self._hang(fault.seconds)
            else:
                self._answer(req, response, truncate=True)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailer fields
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self, req: Recorded, response: Response, truncate: bool = False) -> None:
        body = response.body
        length = len(body)
        if truncate:
            length, body = max(length, 16), body[: length // 2]
        headers = self._fields(req, response)
        if truncate:
            self.close_connection = True  # the normal teardown closes after the part sent
        else:
            req.status = response.status  # before sending: the client may look right after
        self.send_response(response.status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)

    def _send(
        self,
        req: Recorded,
        response: Response,
        framing: str = "length",
        endless: bool = False,
        interval: float | None = None,
    ) -> None:
        """Answer at once, or stream, or trickle: whatever the answer and the fault ask."""
        if response.stream is None and framing == "length" and not endless and interval is None:
            self._answer(req, response)
            return
        headers = {
            name: value
            for name, value in self._fields(req, response).items()
            if name.lower() not in ("transfer-encoding", "connection")  # the framing's own
        }
        if response.stream is not None:
            length, body = len(response.stream), response.stream.chunks(endless)
        else:
            length = len(response.body)
            body = iter([response.body] if response.body else [])
            if endless:  # JSON allows trailing whitespace: the body stays valid, and never ends
                body = itertools.chain(body, itertools.repeat(b" " * 1024))
        if framing == "length":
            headers["Content-Length"] = str(length)
        elif framing == "chunked":
            headers["Transfer-Encoding"] = "chunked"
            body = _chunked(body, endless)
        else:
            headers["Connection"] = "close"
        if framing == "close":
            self.close_connection = True  # only the close tells the client the body ended
        phrase = self.responses.get(response.status, ("",))[0]
        head = [f"{self.protocol_version} {response.status} {phrase}".rstrip()]
        head.append(f"Server: {self.version_string()}")
        head.append(f"Date: {self.date_time_string()}")
        head.extend(f"{name}: {value}" for name, value in headers.items())
        parts = itertools.chain([("\r\n".join(head) + "\r\n\r\n").encode("latin-1")], body)
        try:
            for part in parts:
                if interval is None:
                    self.wfile.write(part)
                    continue
                for i in range(len(part)):
                    self.wfile.write(part[i : i + 1])
                    if self.server.stopping.wait(interval):
                        raise ConnectionAbortedError("the emulator is stopping")
        except OSError:
            self.close_connection = True  # the client left, or the emulator stops
            return
        req.status = response.status  # only a complete answer counts

    def _fields(self, req: Recorded, response: Response) -> dict[str, str]:
        """The answer's header fields but Content-Length (the server sets it), and the
        correlation ID unless the answer names its own."""
        headers = {"MS-CorrelationId": req.correlation_id}
        for name, value in response.headers.items():
            for existing in [h for h in headers if h.lower() == name.lower()]:
                del headers[existing]
            if name.lower() != "content-length":
                headers[name] = value
        return headers

    def _reset(self) -> None:
        """Drop the connection with a TCP RST: linger 0, then close without TLS close_notify."""
        self.close_connection = True
        connection = self.connection
        with contextlib.suppress(OSError):
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()
        self.rfile.close()  # drops the last reference, so the socket really closes now

    def _hang(self, seconds: float) -> None:
        self.server.stopping.wait(seconds)
        self.close_connection = True


def _chunked(body: Iterator[bytes], endless: bool) -> Iterator[bytes]:
    for chunk in body:
        if chunk:
            yield f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    if not endless:
        yield b"0\r\n\r\n"
