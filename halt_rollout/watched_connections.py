"""One request's sockets, watched from name resolution to the last byte, and cut together.

urllib3's connections, subclassed: each resolves and connects within the time its request
has left, and is known to the request (an `Exchange`) before it connects, so that a timer
or a cancellation can shut every socket of the request at once, under whatever is using it:
a hanging connect, a proxy's CONNECT, a TLS handshake or a body without end."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any, Protocol

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    LocationParseError,
    NameResolutionError,
    NewConnectionError,
)
from urllib3.util.connection import allowed_gai_family


class RunClock(Protocol):
    """What a request needs of the run's deadline (deadline.Deadline is one)."""

    @property
    def cancelled(self) -> bool: ...

    def now(self) -> float: ...


# threading's waits refuse longer timeouts (OverflowError); no run lasts this long.
LONGEST_WAIT_SECONDS = float(threading.TIMEOUT_MAX)


class _Exchange:
    """One request: the sockets it uses, and the cut that shuts them all at once."""

    def __init__(self, deadline: RunClock, end: float) -> None:
        self._deadline = deadline
        self._end = end
        self._lock = threading.Lock()
        self._connections: list[_WatchedHTTPConnection] = []
        self._closed: list[_WatchedHTTPConnection] = []
        self._on_cut: list[Callable[[], None]] = []
        self.cut = False
        self.sent = False  # some of the request's bytes may have left

    def left(self) -> float:
        """Seconds this request still has."""
        if self._deadline.cancelled:
            return 0.0
        return max(0.0, self._end - self._deadline.now())

    def watch(self, connection: _WatchedHTTPConnection) -> None:
        with self._lock:
            if not self.cut:
                if connection not in self._connections:
                    self._connections.append(connection)
                return
        connection.shut()

    def watches(self, connection: _WatchedHTTPConnection) -> bool:
        with self._lock:
            return connection in self._connections

    def on_cut(self, wake: Callable[[], None]) -> None:
        with self._lock:
            if not self.cut:
                self._on_cut.append(wake)
                return
        wake()

    def drop_when_done(self, connection: _WatchedHTTPConnection) -> None:
        with self._lock:
            self._closed.append(connection)

    def done(self) -> None:
        """The request is over: let go of what connections closed during it kept."""
        with self._lock:
            closed, self._closed = self._closed, []
        for connection in closed:
            connection._drop_watch()

    def shut_all(self) -> None:
        with self._lock:
            self.cut = True
            connections = list(self._connections)
            wakes, self._on_cut = self._on_cut, []
        for connection in connections:
            connection.shut()
        for wake in wakes:
            wake()

    def resolve(self, host: str, port: int) -> list[Any]:
        """getaddrinfo, given at most the time this request has left (a resolver can
        hang for long): the lookup runs in a thread of its own, abandoned when late."""
        family = allowed_gai_family()
        with contextlib.suppress(socket.gaierror):  # an IP address: no lookup to wait for
            return socket.getaddrinfo(
                host, port, family, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST
            )
        done = threading.Event()
        found: list[Any] = []

        def look_up() -> None:
            try:
                found.append(socket.getaddrinfo(host, port, family, socket.SOCK_STREAM))
            except (OSError, UnicodeError) as error:
                found.append(error)
            finally:
                done.set()

        self.on_cut(done.set)
        threading.Thread(target=look_up, daemon=True, name="resolve").start()
        done.wait(min(self.left(), LONGEST_WAIT_SECONDS))
        if not found:
            self.shut_all()  # out of time: the request is over, and says so
            raise TimeoutError(f"resolving {host} did not finish in time")
        if isinstance(found[0], BaseException):
            raise found[0]
        addresses: list[Any] = found[0]
        return addresses


class _Current(threading.local):
    exchange: _Exchange | None = None


_CURRENT = _Current()


class _WatchedHTTPConnection(HTTPConnection):
    """urllib3's connection, watched: it resolves and connects within the request's time,
    and keeps a duplicate of its socket's descriptor (taken before connecting), through
    which the socket can be shut from another thread, even while it connects, while a
    proxy's tunnel is set up, or while TLS is (the TLS wrapper detaches the original)."""

    _watch_socket: socket.socket | None = None
    _connecting = False

    def _new_conn(self) -> socket.socket:
        exchange = _CURRENT.exchange
        if exchange is None:  # only our adapter's send() makes requests on these
            raise NewConnectionError(self, "no watched request to connect for")
        self._drop_watch()
        host = self._dns_host.strip("[]")
        try:
            host.encode("idna")
        except UnicodeError:
            raise LocationParseError(f"'{host}', label empty or too long") from None
        try:
            addresses = exchange.resolve(host, self.port)
        except socket.gaierror as error:
            raise NameResolutionError(self.host, self, error) from error
        except TimeoutError as error:
            raise ConnectTimeoutError(self, str(error)) from error
        if not addresses:
            raise NewConnectionError(self, "the name resolved to no address")
        last: OSError | None = None
        for found in addresses:
            left = exchange.left()
            if left <= 0 or exchange.cut:
                break
            try:
                return self._connect_to(exchange, found, left)
            except OSError as error:
                last = error
        if exchange.cut or exchange.left() <= 0:
            exchange.shut_all()
            raise ConnectTimeoutError(self, f"connecting to {self.host} did not finish in time")
        if isinstance(last, TimeoutError):
            raise ConnectTimeoutError(self, f"connection to {self.host} timed out") from last
        raise NewConnectionError(self, f"Failed to establish a new connection: {last}") from last

    def _connect_to(self, exchange: _Exchange, found: Any, left: float) -> socket.socket:
        """A socket connected to one of getaddrinfo's answers, watched while it connects."""
        family, kind, proto, _, address = found
        sock = socket.socket(family, kind, proto)
        try:
            for option in self.socket_options or ():
                sock.setsockopt(*option)
            limit = self.timeout if isinstance(self.timeout, int | float) else left
            sock.settimeout(min(limit, left))
            if self.source_address:
                sock.bind(self.source_address)
            self._watch_socket = sock.dup()
            exchange.watch(self)  # before connecting: a connect that hangs can be cut
            if exchange.cut:
                raise TimeoutError("the request's time is up")
            sock.connect(address)
        except BaseException:
            self._drop_watch()
            sock.close()
            raise
        sys.audit("http.client.connect", self, self.host, self.port)
        return sock

    def connect(self) -> None:
        # The CONNECT to a proxy is sent during connect(); it is not the request.
        self._connecting = True
        try:
            super().connect()
        finally:
            self._connecting = False

    def send(self, data: Any) -> None:
        if self.sock is None:
            self.connect()
        exchange = _CURRENT.exchange
        if exchange is not None and not self._connecting:
            self._watch_current()  # a kept-alive connection, reused by a new request
            exchange.sent = True
        super().send(data)

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        self._watch_current()
        return super().getresponse(*args, **kwargs)

    def close(self) -> None:
        super().close()
        exchange = _CURRENT.exchange
        if exchange is not None and exchange.watches(self):
            # An answer with `Connection: close` closes its connection once the headers are
            # read, handing the socket to the response: the body still needs watching.
            exchange.drop_when_done(self)
        else:
            self._drop_watch()

    def shut(self) -> None:
        sock = self._watch_socket
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _watch_current(self) -> None:
        exchange = _CURRENT.exchange
        if exchange is not None and self._watch_socket is not None:
            exchange.watch(self)

    def _drop_watch(self) -> None:
        sock, self._watch_socket = self._watch_socket, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


class _WatchedHTTPSConnection(_WatchedHTTPConnection, HTTPSConnection):
    """The same watch over TLS: HTTPSConnection's connect() calls the watched _new_conn,
    then sets up the proxy's tunnel and TLS on the socket it returned."""


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


# Every pool of ours, direct or behind a proxy, is one of these.
_WATCHED_POOLS: dict[str, type[HTTPConnectionPool]] = {
    "http": _WatchedHTTPPool,
    "https": _WatchedHTTPSPool,
}
