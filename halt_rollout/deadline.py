"""The run's one deadline (`timeout-seconds`), and the HTTP transport that keeps it.

A per-socket-read timeout is not a deadline: a server that sends a byte a
second never trips one, and neither does a TLS handshake dribbled out or a
body without end. So every request made through `Deadline.session()` is
watched: when its time is up, a timer shuts its socket down under whatever is
reading it, and no request starts once the time is gone. Answers are read
whole, up to MAX_ANSWER_BYTES, before anything parses them. The Store calls,
azure-identity's sign-in and the GitHub OIDC request all go through these
sessions: this is the one place where the deadline is enforced on the network.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

# Every documented answer is a few hundred bytes; a megabyte is a broken proxy.
MAX_ANSWER_BYTES = 1024 * 1024
# One request may take at most this long; a hung connection is then retried.
REQUEST_TIMEOUT_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 10.0
# threading's waits refuse longer timeouts (OverflowError); no run lasts this long.
LONGEST_WAIT_SECONDS = float(threading.TIMEOUT_MAX)
_CHUNK_BYTES = 64 * 1024


class DeadlinePassed(requests.exceptions.ConnectionError):
    """The request was cut off (`sent`), or never started, because its time was up."""

    def __init__(self, message: str, *, sent: bool, request: requests.PreparedRequest) -> None:
        super().__init__(message, request=request)
        self.sent = sent


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
        self.cancelled: str | None = None  # why the deadline was made to arrive early
        self._live: set[_Exchange] = set()
        self._live_lock = threading.Lock()

    def remaining(self) -> float:
        """Seconds left for the request about to start (less any reserve held back)."""
        return max(0.0, self._request_end() - self._clock())

    def now(self) -> float:
        return self._clock()

    def expired(self) -> bool:
        return self._clock() >= self.end

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

    def cancel(self, why: str) -> None:
        """The deadline arrives now: no new request, every sleep and request in flight ends."""
        if self.cancelled is None:
            self.cancelled = why
        self.end = min(self.end, self._clock())
        self._stop.set()
        with self._live_lock:
            live = list(self._live)
        for exchange in live:
            exchange.shut_all()

    def _started(self, exchange: _Exchange) -> None:
        with self._live_lock:
            self._live.add(exchange)
        if self.cancelled is not None:
            exchange.shut_all()

    def _ended(self, exchange: _Exchange) -> None:
        with self._live_lock:
            self._live.discard(exchange)

    def ran_out(self) -> str:
        """Why requests end early, as a person reads it."""
        return self.cancelled or f"timeout-seconds ({self.seconds:g}) ran out"

    def sleep(self, seconds: float) -> None:
        """Sleep, but never past the deadline."""
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


class _Exchange:
    """The sockets one request uses, and the cut that shuts them all at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connections: list[_WatchedHTTPConnection] = []
        self._closed: list[_WatchedHTTPConnection] = []
        self.cut = False

    def watch(self, connection: _WatchedHTTPConnection) -> None:
        with self._lock:
            if self.cut:
                connection.shut()
            else:
                self._connections.append(connection)

    def watches(self, connection: _WatchedHTTPConnection) -> bool:
        with self._lock:
            return connection in self._connections

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
        for connection in connections:
            connection.shut()


class _Current(threading.local):
    exchange: _Exchange | None = None


_CURRENT = _Current()


class _WatchedHTTPConnection(HTTPConnection):
    """urllib3's connection, watched: it keeps a duplicate of its socket's descriptor,
    through which the socket can be shut from another thread, even while TLS is being
    set up on it (the TLS wrapper detaches the original)."""

    _watch_socket: socket.socket | None = None

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        self._drop_watch()
        with contextlib.suppress(OSError):
            self._watch_socket = sock.dup()
        self._watch_current()
        return sock

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        self._watch_current()  # a kept-alive connection, reused by a new request
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
    """The same watch over TLS: HTTPSConnection's connect() calls the watched _new_conn."""


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _DeadlineAdapter(HTTPAdapter):
    def __init__(self, deadline: Deadline) -> None:
        self._deadline = deadline
        super().__init__(max_retries=0)  # retrying is the caller's decision, with its log
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPPool,
            "https": _WatchedHTTPSPool,
        }

    def send(  # noqa: PLR0917 (requests calls it with these positional arguments)
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        left = self._deadline.remaining()
        if left <= 0:
            raise DeadlinePassed(
                f"{self._deadline.ran_out()} before the request to {_host(request)} could be sent",
                sent=False,
                request=request,
            )
        connect, read = _split_timeout(timeout)
        limits = (min(connect, left), min(read, left))
        exchange = _Exchange()
        timer = threading.Timer(min(left, LONGEST_WAIT_SECONDS), exchange.shut_all)
        timer.daemon = True
        outer, _CURRENT.exchange = _CURRENT.exchange, exchange
        self._deadline._started(exchange)
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
        except requests.RequestException as error:
            if exchange.cut:
                raise DeadlinePassed(
                    f"{self._deadline.ran_out()} while waiting for {_host(request)} to answer",
                    sent=True,
                    request=request,
                ) from error
            raise
        finally:
            timer.cancel()
            self._deadline._ended(exchange)
            _CURRENT.exchange = outer
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
