"""The requests adapter that keeps the deadline: every request watched, every answer read whole.

Answers are read whole, up to MAX_ANSWER_BYTES, before anything parses them. Whatever fails
below requests (urllib3, http.client, ssl, a malformed answer) comes out as a `LostAnswer`,
a requests ConnectionError that says whether the request may have been sent."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from .lost_answer import AnswerTooLarge, DeadlinePassed, LostAnswer
from .network_words import describe, proxy_refusal
from .watched_connections import (
    _CURRENT,
    _WATCHED_POOLS,
    LONGEST_WAIT_SECONDS,
    RunClock,
    _Exchange,
    _WatchedHTTPConnection,
)

# A rollout answer is a few hundred bytes, but a submission resource (the version guard
# reads it) carries every listing and package: a megabyte or more. Beyond 16 MiB an answer
# is a broken server or proxy, not the Store.
MAX_ANSWER_BYTES = 16 * 1024 * 1024


# One request may take at most this long; a hung connection is then retried.
REQUEST_TIMEOUT_SECONDS = 30.0


CONNECT_TIMEOUT_SECONDS = 10.0


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


class KeptDeadline(RunClock, Protocol):
    """What the adapter needs of the run's deadline (deadline.Deadline is one)."""

    def remaining(self) -> float: ...

    def why(self) -> str: ...

    def _enter(self, exchange: _Exchange) -> None: ...

    def _leave(self, exchange: _Exchange) -> None: ...


class _DeadlineAdapter(HTTPAdapter):
    def __init__(self, deadline: KeptDeadline) -> None:
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
