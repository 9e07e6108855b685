"""The Emulator: Entra ID, GitHub OIDC and the Store API on one loopback HTTPS server."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from . import control, demo
from .analytics import Analytics
from .certs import server_context
from .entra import Entra
from .faults import Fault, FaultQueue
from .github_oidc import PATH as OIDC_PATH
from .github_oidc import GitHubOidc
from .guard_script import script_rollout, seed_guard
from .knobs import Knobs
from .records import Recorded
from .responses import Response, json_response
from .server import HttpsServer
from .state import (
    DEFAULT_FALLBACK,
    DEFAULT_GROUP_IDS,
    DEFAULT_RANK,
    IN_PROGRESS,
    NOT_STARTED,
    StoreState,
)
from .store import PREFIX as STORE_PREFIX
from .store import StoreApi

_WILDCARDS = ("", "0.0.0.0", "::")  # noqa: S104 (recognises them; binds nothing)


class Emulator:
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
        self.github = GitHubOidc()
        self.entra = Entra(self.github)
        self.knobs = Knobs()  # field behaviours; see knobs.Knobs
        self.state = StoreState(self.knobs)
        self.analytics = Analytics()  # failurehits and usagedaily; see analytics.Analytics
        self._store = StoreApi(self.state, self.entra.is_access_token, self.knobs, self.analytics)
        self._faults = FaultQueue()
        self._lock = threading.Lock()
        self._requests: list[Recorded] = []
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

    # -- Store content -------------------------------------------------------------------

    def add_app(
        self,
        app_id: str,
        *,
        last_published: str | None = None,
        pending: str | None = None,
        null_style: bool = False,
        name: str = "ApiTestApp",
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """A missing submission is an absent key (`null` with `null_style`). `extra` adds keys
        to the resource, e.g. a PascalCase `PackageFamilyName` as captures show."""
        self.state.add_app(
            app_id,
            last_published=last_published,
            pending=pending,
            null_style=null_style,
            name=name,
            extra=extra,
        )

    def add_flight(
        self,
        app_id: str,
        flight_id: str,
        *,
        last_published: str | None = None,
        pending: str | None = None,
        null_style: bool = False,
        name: str = "myflight",
        extra: Mapping[str, Any] | None = None,
        group_ids: Iterable[str] = DEFAULT_GROUP_IDS,
        rank_higher_than: str = DEFAULT_RANK,
    ) -> None:
        """Flights are listed (listflights) in the order added."""
        self.state.add_flight(
            app_id,
            flight_id,
            last_published=last_published,
            pending=pending,
            null_style=null_style,
            name=name,
            extra=extra,
            group_ids=group_ids,
            rank_higher_than=rank_higher_than,
        )

    def set_rollout(
        self,
        app_id: str,
        submission_id: str,
        *,
        flight_id: str | None = None,
        is_package_rollout: bool = True,
        percentage: float = 25.0,
        status: str = IN_PROGRESS,
        fallback: str = DEFAULT_FALLBACK,
        integer_percentage: bool | None = None,
    ) -> dict[str, Any]:
        """`integer_percentage`: render a whole percentage as an int for this rollout (None:
        as knobs.integer_percentages says)."""
        return self.state.set_rollout(
            app_id,
            submission_id,
            flight_id=flight_id,
            is_package_rollout=is_package_rollout,
            percentage=percentage,
            status=status,
            fallback=fallback,
            integer_percentage=integer_percentage,
        )

    def set_packages(
        self,
        app_id: str,
        submission_id: str,
        versions: Iterable[str | None],
        *,
        flight_id: str | None = None,
    ) -> None:
        """The submission's packages, one per version (None: not uploaded, no version);
        `GET …/submissions/{id}` lists them. The submission must exist."""
        self.state.set_packages(app_id, submission_id, versions, flight_id=flight_id)

    @property
    def upload_signature(self) -> str:
        """The `sig=` of every submission's fileUploadUrl (decoded): a credential that must
        never appear in anything a client shows. In the URL it is percent-encoded."""
        return self.state.upload_signature

    def rollout(
        self, app_id: str, submission_id: str, flight_id: str | None = None
    ) -> dict[str, Any]:
        """The current rollout object; raises state.StoreError when there is none."""
        return self.state.rollout(app_id, submission_id, flight_id)

    def script_guard(
        self,
        app_id: str,
        submission_id: str,
        *,
        scenario: str,
        fallback: str,
        version: str,
        fallback_version: str,
        flight_id: str | None = None,
        kept_versions: Iterable[str] = (),
        hostile_names: bool = False,
    ) -> None:
        """A rollout for halt-when: failing: see guard_script (scenario healthy, failing or
        too-early)."""
        script_rollout(
            self.state,
            self.analytics,
            app_id,
            submission_id,
            scenario=scenario,
            fallback=fallback,
            version=version,
            fallback_version=fallback_version,
            flight_id=flight_id,
            kept_versions=tuple(kept_versions),
            hostile_names=hostile_names,
        )

    def seed_guard(self) -> None:
        """The guarded apps of the demo (demo.GUARD_APPS): healthy, failing, and one whose
        analytics the demo refuses (analytics.knobs.status = 403)."""
        seed_guard(self.state, self.analytics)

    def add_foreign_app(self, app_id: str) -> None:
        """An app ID of another Partner Center account: every call about it gets 403, empty."""
        self.knobs.foreign_apps.add(app_id)

    def seed_demo(self) -> None:
        """The examples of docs/store-api.md and docs/contract.md (IDs in store_emulator.demo)."""
        self.add_app(
            demo.APP_ID,
            last_published=demo.PUBLISHED,
            pending=demo.PENDING,
            name=demo.APP_NAME,
            extra={"PackageFamilyName": demo.PACKAGE_FAMILY_NAME},
        )
        self.set_rollout(demo.APP_ID, demo.PUBLISHED, percentage=25.0, fallback=demo.FALLBACK)
        self.set_rollout(
            demo.APP_ID, demo.PENDING, percentage=0.0, status=NOT_STARTED, fallback=demo.PUBLISHED
        )
        self.add_flight(
            demo.APP_ID,
            demo.FLIGHT_ID,
            last_published=demo.PUBLISHED,
            pending=demo.FLIGHT_PENDING,
            name=demo.FLIGHT_NAME,
        )
        self.set_rollout(
            demo.APP_ID,
            demo.PUBLISHED,
            flight_id=demo.FLIGHT_ID,
            percentage=25.0,
            fallback=demo.FALLBACK,
        )
        self.set_rollout(
            demo.APP_ID,
            demo.FLIGHT_PENDING,
            flight_id=demo.FLIGHT_ID,
            percentage=0.0,
            status=NOT_STARTED,
            fallback=demo.PUBLISHED,
        )
        self.add_app(demo.OTHER_APP, last_published=demo.OTHER_SUBMISSION, name=demo.OTHER_APP_NAME)
        self.set_rollout(
            demo.OTHER_APP, demo.OTHER_SUBMISSION, percentage=10.0, fallback=demo.OTHER_FALLBACK
        )
        # Packages: two architectures of one version each; the drafts have one not uploaded.
        self.set_packages(demo.APP_ID, demo.PUBLISHED, [demo.VERSION, demo.VERSION])
        self.set_packages(demo.APP_ID, demo.PENDING, [demo.PENDING_VERSION, None])
        self.set_packages(
            demo.APP_ID,
            demo.PUBLISHED,
            [demo.FLIGHT_VERSION, demo.FLIGHT_VERSION],
            flight_id=demo.FLIGHT_ID,
        )
        self.set_packages(
            demo.APP_ID,
            demo.FLIGHT_PENDING,
            [demo.FLIGHT_PENDING_VERSION],
            flight_id=demo.FLIGHT_ID,
        )
        self.set_packages(demo.OTHER_APP, demo.OTHER_SUBMISSION, [demo.OTHER_VERSION])

    def seed_whole_app(self) -> None:
        """The whole-app case (demo.WHOLE_APP_ID): the app's published submission rolling out,
        a pending draft, and the 23 flights of demo.WHOLE_FLIGHTS with their rollouts."""
        self.add_app(
            demo.WHOLE_APP_ID,
            last_published=demo.WHOLE_PUBLISHED,
            pending=demo.WHOLE_PENDING,
            name=demo.WHOLE_APP_NAME,
            extra={"PackageFamilyName": demo.WHOLE_PACKAGE_FAMILY_NAME},
        )
        self.set_rollout(
            demo.WHOLE_APP_ID, demo.WHOLE_PUBLISHED, percentage=20.0, fallback=demo.WHOLE_FALLBACK
        )
        self.set_rollout(
            demo.WHOLE_APP_ID,
            demo.WHOLE_PENDING,
            percentage=0.0,
            status=NOT_STARTED,
            fallback=demo.WHOLE_PUBLISHED,
        )
        self.set_packages(demo.WHOLE_APP_ID, demo.WHOLE_PUBLISHED, [demo.WHOLE_VERSION] * 2)
        self.set_packages(demo.WHOLE_APP_ID, demo.WHOLE_PENDING, [None])
        for flight in demo.WHOLE_FLIGHTS:
            self.add_flight(
                demo.WHOLE_APP_ID,
                flight.flight_id,
                last_published=flight.published,
                pending=flight.pending,
                name=flight.name,
            )
            if flight.published is not None:
                self.set_rollout(
                    demo.WHOLE_APP_ID,
                    flight.published,
                    flight_id=flight.flight_id,
                    is_package_rollout=flight.is_package_rollout,
                    percentage=flight.percentage,
                    status=flight.status,
                    fallback=flight.fallback,
                )
                self.set_packages(
                    demo.WHOLE_APP_ID,
                    flight.published,
                    [flight.version],
                    flight_id=flight.flight_id,
                )
            if flight.pending is not None:
                self.set_rollout(
                    demo.WHOLE_APP_ID,
                    flight.pending,
                    flight_id=flight.flight_id,
                    percentage=0.0,
                    status=NOT_STARTED,
                    fallback=flight.published or "0",
                )

    # -- faults and records --------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        self._faults.add(fault)

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def faults(self) -> list[Fault]:
        """Faults not used up yet."""
        return self._faults.pending()

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    @property
    def store_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.startswith(STORE_PREFIX)]

    @property
    def halt_requests(self) -> list[Recorded]:
        return [
            r
            for r in self.store_requests
            if r.method == "POST" and r.path.endswith("/haltpackagerollout")
        ]

    def reset_requests(self) -> None:
        with self._lock:
            self._requests.clear()

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
