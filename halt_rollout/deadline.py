"""The run's one deadline (`timeout-seconds`), and the HTTP transport that keeps it.

A per-socket-read timeout is not a deadline: a server that sends a byte a
second never trips one, and neither does a TLS handshake dribbled out, a proxy
that answers CONNECT slowly, a body without end, a name that never resolves or
a host whose every address black-holes. So every request made through
`Deadline.session()` is watched from name resolution to the last byte, direct or
through a proxy's tunnel: its sockets are known before they connect, and when
its time is up a timer shuts them down under whatever is using them; no request
starts once the time is gone. Answers are read whole, up to MAX_ANSWER_BYTES,
before anything parses them. The Store calls, azure-identity's sign-in and the
GitHub OIDC request all go through these sessions: this is the one place where
the deadline is enforced on the network. Whatever fails below requests (urllib3,
http.client, ssl, a malformed answer) comes out as a `LostAnswer`, a requests
ConnectionError that says whether the request may have been sent.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    LocationParseError,
    NameResolutionError,
    NewConnectionError,
)
from urllib3.util.connection import allowed_gai_family

from .network_words import describe, proxy_refusal

# A rollout answer is a few hundred bytes, but a submission resource (the version guard
# reads it) carries every listing and package: a megabyte or more. Beyond 16 MiB an answer
# is a broken server or proxy, not the Store.
MAX_ANSWER_BYTES = 16 * 1024 * 1024
# One request may take at most this long; a hung connection is then retried.
REQUEST_TIMEOUT_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 10.0
# threading's waits refuse longer timeouts (OverflowError); no run lasts this long.
LONGEST_WAIT_SECONDS = float(threading.TIMEOUT_MAX)
# The proxy schemes urllib3 speaks itself; SOCKS would need PySocks, and the
# Actions runner itself only speaks HTTP(S) proxies.
PROXY_SCHEMES = ("http", "https")
_CHUNK_BYTES = 64 * 1024
# What can fail below requests when a server or proxy misbehaves: each is a lost answer.
_BELOW_REQUESTS = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
    ValueError,  # a doubled Content-Length, a URL that does not parse, bad idna
)


class LostAnswer(requests.exceptions.ConnectionError):
    """No usable answer came; `sent` is true when the request may have reached the server."""

    def __init__(self, message: str, *, sent: bool, request: requests.PreparedRequest) -> None:
        super().__init__(message, request=request)
        self.sent = sent


class DeadlinePassed(LostAnswer):
    """The request was cut off (`sent`), or never started, because its time was up."""


class AnswerTooLarge(requests.exceptions.ConnectionError):
    """The answer's body was larger than any answer the API documents."""


class Deadline:
    """The run's end on the monotonic clock, and the sessions that honour it."""

    def __init__(
        self,
        seconds: float,
        *,
        started: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        stop: threading.Event | None = None,
    ) -> None:
        self.seconds = seconds
        self._clock = clock
        self.end = (clock() if started is None else started) + seconds
        self._reserve = threading.local()
        # Sleeps are an Event's wait(): tests pass one that records them instead.
        self._stop = stop or threading.Event()
        self._cancelled = False
        self._cancel_reason = ""
        self._lock = threading.Lock()
        self._exchanges: set[_Exchange] = set()
        _CANCELLER.start()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def remaining(self) -> float:
        """Seconds left for the request about to start (less any reserve held back)."""
        if self._cancelled:
            return 0.0
        return max(0.0, self._request_end() - self._clock())

    def now(self) -> float:
        return self._clock()

    def expired(self) -> bool:
        return self._cancelled or self._clock() >= self.end

    def cancel(self, reason: str = "the run was cancelled") -> None:
        """Make the deadline arrive now: sleeps wake, requests in flight are cut, none starts.

        Safe in a signal handler: it only sets flags and wakes the thread that does
        the cutting, so it takes no lock that the code it interrupted may hold.
        """
        self._cancel_reason = reason
        self._cancelled = True
        _CANCELLER.request(self)

    def why(self) -> str:
        """What ended the time: the cancellation, or timeout-seconds."""
        if self._cancelled:
            return self._cancel_reason
        return f"timeout-seconds ({self.seconds:g}) ran out"

    @contextlib.contextmanager
    def keeping(self, seconds: float) -> Iterator[None]:
        """Within this block, requests and waits end `seconds` before the deadline, so
        that something (a last read of the rollout) still fits in after them."""
        outer = getattr(self._reserve, "seconds", 0.0)
        self._reserve.seconds = max(outer, seconds)
        try:
            yield
        finally:
            self._reserve.seconds = outer

    def sleep(self, seconds: float) -> None:
        """Sleep, but never past the deadline (nor past a cancellation)."""
        self._stop.wait(min(seconds, self.remaining(), LONGEST_WAIT_SECONDS))

    def session(self) -> requests.Session:
        """A requests session whose every request ends by the deadline."""
        session = requests.Session()
        adapter = _DeadlineAdapter(self)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def _request_end(self) -> float:
        return self.end - getattr(self._reserve, "seconds", 0.0)

    def _enter(self, exchange: _Exchange) -> None:
        with self._lock:
            self._exchanges.add(exchange)
        if self._cancelled:  # cancelled while it was being registered: cut it now
            exchange.shut_all()

    def _leave(self, exchange: _Exchange) -> None:
        with self._lock:
            self._exchanges.discard(exchange)

    def _cut_everything(self) -> None:
        """After cancel(): wake the sleepers and cut every request in flight."""
        self._stop.set()
        with self._lock:
            exchanges = list(self._exchanges)
        for exchange in exchanges:
            exchange.shut_all()


class _Canceller:
    """The thread that carries out cancel(): a signal handler may interrupt code holding
    any lock (an Event's, the deadline's, threading's own), so the handler only appends
    to a list and writes a byte to a pipe, which take none."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[Deadline] = []
        self._wake: int | None = None

    def start(self) -> None:
        with self._lock:
            if self._wake is not None:
                return
            read_end, write_end = os.pipe()
            with contextlib.suppress(OSError):  # a full pipe must not block a handler
                os.set_blocking(write_end, False)
            threading.Thread(
                target=self._run, args=(read_end,), daemon=True, name="deadline-cancel"
            ).start()
            self._wake = write_end

    def request(self, deadline: Deadline) -> None:
        self._pending.append(deadline)
        if self._wake is not None:
            with contextlib.suppress(OSError):
                os.write(self._wake, b"\0")

    def _run(self, read_end: int) -> None:
        while os.read(read_end, 512):
            while self._pending:
                self._pending.pop()._cut_everything()


_CANCELLER = _Canceller()


class _Exchange:
    """One request: the sockets it uses, and the cut that shuts them all at once."""

    def __init__(self, deadline: Deadline, end: float) -> None:
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


class _DeadlineAdapter(HTTPAdapter):
    def __init__(self, deadline: Deadline) -> None:
        self._deadline = deadline
        super().__init__(max_retries=0)  # retrying is the caller's decision, with its log

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        # requests would build a ProxyManager with urllib3's own, unwatched pools (or a
        # SOCKS manager, which needs a library this action does not ship).
        scheme = urlsplit(proxy).scheme.lower()
        if scheme not in PROXY_SCHEMES:
            raise ValueError(f"a {scheme}:// proxy is not supported (only http:// and https://)")
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager

    def get_connection_with_tls_context(self, *args: Any, **kwargs: Any) -> Any:
        pool = super().get_connection_with_tls_context(*args, **kwargs)
        # The guard: whatever path urllib3 takes, an unwatched connection is never used.
        if not issubclass(getattr(pool, "ConnectionCls", object), _WatchedHTTPConnection):
            raise ValueError(f"{type(pool).__name__} would make unwatched connections")
        return pool

    def send(  # noqa: PLR0917 (requests calls it with these positional arguments)
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        deadline = self._deadline
        left = deadline.remaining()
        if left <= 0:
            raise DeadlinePassed(
                f"{deadline.why()} before the request to {_host(request)} could be sent",
                sent=False,
                request=request,
            )
        connect, read = _split_timeout(timeout)
        limits = (min(connect, left), min(read, left))
        exchange = _Exchange(deadline, deadline.now() + left)
        timer = threading.Timer(min(left, LONGEST_WAIT_SECONDS), exchange.shut_all)
        timer.daemon = True
        outer, _CURRENT.exchange = _CURRENT.exchange, exchange
        deadline._enter(exchange)
        timer.start()
        try:
            response = super().send(
                request, stream=True, timeout=limits, verify=verify, cert=cert, proxies=proxies
            )
            try:
                body = _read_capped(response)
            except BaseException:
                response.close()
                raise
            if exchange.cut:
                # Cut mid-headers, http.client takes the end of the stream for the end of the
                # headers: what arrived looks like an answer but is only part of one.
                response.close()
                raise requests.exceptions.ConnectionError("the answer was cut off")
        except _BELOW_REQUESTS as error:
            if exchange.cut:
                raise DeadlinePassed(
                    f"{deadline.why()} while waiting for {_host(request)} to answer",
                    sent=exchange.sent,
                    request=request,
                ) from error
            if isinstance(error, (AnswerTooLarge, requests.exceptions.SSLError)):
                raise
            # Told here, once, in a person's words: the proxy by name, no internal class.
            proxy = requests.utils.select_proxy(request.url or "", proxies)
            if refused := proxy_refusal(error, proxy):
                raise refused from error
            raise LostAnswer(describe(error, proxy), sent=exchange.sent, request=request) from error
        finally:
            timer.cancel()
            _CURRENT.exchange = outer
            deadline._leave(exchange)
            exchange.done()
        response._content = body  # what `.content`, `.text` and `.json()` then read
        return response


def _read_capped(response: requests.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(_CHUNK_BYTES):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise AnswerTooLarge(
                f"the answer's body is larger than {MAX_ANSWER_BYTES} bytes", response=response
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _split_timeout(timeout: Any) -> tuple[float, float]:
    """(connect, read) from whatever a caller passed: None, a number or a pair."""
    if isinstance(timeout, tuple):
        connect, read = timeout
    else:
        connect = read = timeout
    return (
        CONNECT_TIMEOUT_SECONDS if connect is None else float(connect),
        REQUEST_TIMEOUT_SECONDS if read is None else float(read),
    )


def _host(request: requests.PreparedRequest) -> str:
    return urlsplit(request.url or "").netloc or "the server"
