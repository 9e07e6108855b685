"""The Emulator: Entra ID, GitHub OIDC and the Store API on one loopback HTTPS server."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from . import control
from .certs import server_context
from .contents import Contents
from .faults import Fault
from .github_oidc import PATH as OIDC_PATH
from .records import Recorded
from .responses import Response, json_response
from .server import HttpsServer
from .store import PREFIX as STORE_PREFIX
from .store import StoreApi

_WILDCARDS = ("", "0.0.0.0", "::")  # noqa: S104 (recognises them; binds nothing)


class Emulator(Contents):
    """Start with `with Emulator() as emu:` (or start()/stop()); see the package docstring."""

    def __init__(
        self,
        extra_hosts: Iterable[str] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        verbose: bool = False,
        url_host: str | None = None,
    ) -> None:
        """`url_host` names the server in `url` (default: `host`, or 127.0.0.1 for a
        wildcard); it joins `extra_hosts` in the certificate."""
        self._host, self._port, self._verbose = host, port, verbose
        self._url_host = url_host
        self._extra_hosts = [*extra_hosts, *([url_host] if url_host else [])]
        super().__init__()
        self._store = StoreApi(self.state, self.entra.is_access_token, self.knobs, self.analytics)
        self._server: HttpsServer | None = None
        self._thread: threading.Thread | None = None
        self._tmp: str | None = None
        self._ca_path = ""
        self._url = ""

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> Emulator:
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        self._tmp = tempfile.mkdtemp(prefix="store-emulator-")
        hosts = [*self._extra_hosts, *([] if self._host in _WILDCARDS else [self._host])]
        context, self._ca_path = server_context(Path(self._tmp), hosts)
        try:
            server = HttpsServer((self._host, self._port), self, context, self._verbose)
        except BaseException:
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise
        port = server.server_address[1]
        # A wildcard bind is still reached, and named in the URL, through loopback.
        name = self._url_host or ("127.0.0.1" if self._host in _WILDCARDS else self._host)
        self._url = f"https://[{name}]:{port}" if ":" in name else f"https://{name}:{port}"
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.name = "store-emulator"
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- facts a client needs ------------------------------------------------------------

    @property
    def url(self) -> str:
        if not self._url:
            raise RuntimeError("the emulator has not been started")
        return self._url

    @property
    def ca_path(self) -> str:
        if not self._ca_path:
            raise RuntimeError("the emulator has not been started")
        return self._ca_path

    @property
    def tenant_id(self) -> str:
        return self.entra.tenant_id

    @property
    def tenant_domain(self) -> str:
        return self.entra.tenant_domain

    @property
    def client_id(self) -> str:
        return self.entra.client_id

    @property
    def client_secret(self) -> str:
        return self.entra.client_secret

    @property
    def oidc_request_url(self) -> str:
        return f"{self.url}{OIDC_PATH}?api-version=2.0"

    @property
    def oidc_request_token(self) -> str:
        return self.github.request_token

    @property
    def issued_access_tokens(self) -> list[str]:
        return self.entra.issued_access_tokens

    @property
    def issued_oidc_tokens(self) -> list[str]:
        return self.github.issued_tokens

    def facts(self) -> dict[str, str]:
        """What a client process needs to use the emulator (printed by the command line)."""
        return {
            "url": self.url,
            "ca_path": self.ca_path,
            "tenant_id": self.tenant_id,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "oidc_request_url": self.oidc_request_url,
            "oidc_request_token": self.oidc_request_token,
        }

    # -- server hooks --------------------------------------------------------------------

    def admit(self, req: Recorded) -> Fault | None:
        if req.path.startswith(control.PREFIX):
            return None  # the control API is neither recorded nor faulted
        with self._lock:
            self._requests.append(req)
        return self._faults.take(req.method, req.path)

    def dispatch(self, req: Recorded, base_url: str) -> Response:
        if req.path.startswith(STORE_PREFIX):
            return self._store.handle(req)
        if req.path == OIDC_PATH:
            return self.github.handle(req)
        if req.path.startswith(control.PREFIX):
            return control.handle(self, req)
        entra = self.entra.handle(req, base_url)
        if entra is not None:
            return entra
        return json_response(404, {"error": "not_found", "path": req.path})
