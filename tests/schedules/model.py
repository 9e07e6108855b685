"""What a schedule is made of: the Store's rollouts, the targets, the faults, the
other responder and the cancel, each a frozen value drawn from one seed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

IN_PROGRESS = "PackageRolloutInProgress"
STOPPED = "PackageRolloutStopped"
COMPLETE = "PackageRolloutComplete"
NO_ROLLOUT = "none"  # isPackageRollout false

APP = "9NSOAKAPP001"
OTHER_APP = "9NSOAKAPP002"
HOSTILE_NAMES = (
    "Insiders 🚀 ring",
    "Canary → ring",
    "Ring ::error::x",
    "Beta \u202ering",
    "Ünïcødé ring",
)

# Where each call goes: a regular expression searched in the request path (Fault.path).
CALLS = {
    "app": r"^/v1\.0/my/applications/[A-Za-z0-9]+$",
    "flight": r"/flights/[0-9a-f-]+$",
    "listflights": r"/listflights/?$",
    "submission": r"/submissions/[0-9]+$",
    "rollout": r"/packagerollout$",
    "halt": r"/haltpackagerollout$",
    "token": r"/oauth2/v2\.0/token$",
}
METHODS = {"halt": "POST", "token": "POST"}

Key = tuple[str, str | None, str]  # (app, flight or None, submission): one rollout


@dataclass(frozen=True)
class Rollout:
    """A published submission's rollout as the Store holds it when the run starts."""

    app_id: str
    flight_id: str | None
    submission_id: str
    status: str
    versions: tuple[str, ...]

    @property
    def key(self) -> Key:
        return (self.app_id, self.flight_id, self.submission_id)


@dataclass(frozen=True)
class Flight:
    flight_id: str
    name: str
    published: str | None
    pending: str | None


@dataclass(frozen=True)
class Entry:
    """One target, as the inputs or the targets file name it."""

    app_id: str
    flight_id: str | None = None
    submission_id: str | None = None
    all_flights: bool = False
    expected_version: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class FaultPlan:
    call: str  # a key of CALLS
    kind: str  # a store_emulator Fault kind
    status: int = 500
    times: int | None = 1
    seconds: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class Cancel:
    """SIGINT `delay` s after the run started working ("start") or after its first halt
    reached the Store ("halt"); then SIGTERM `sigterm` s later, when set."""

    after: str
    delay: float
    sigterm: float | None


@dataclass(frozen=True)
class Rival:
    """Another responder halts `key`: `delay` s after the run started working, or
    (`before_ours`) just before this run's first halt of it lands, which then gets 409."""

    key: Key
    delay: float
    before_ours: bool


@dataclass(frozen=True)
class Schedule:
    seed: int
    timeout: int
    rollouts: tuple[Rollout, ...]
    flights: tuple[Flight, ...]  # APP's flights, in listing order
    app_pending: str | None
    entries: tuple[Entry, ...]
    in_file: bool  # a targets file, else the single target's inputs
    faults: tuple[FaultPlan, ...]
    halt_seconds: float = 0.0
    halt_at_once: bool = False
    page_cap: int | None = None
    next_link: bool = True
    later_pages: str = "real"  # Knobs.listflights_later_pages
    rival: Rival | None = None
    cancel: Cancel | None = None
    log: str = "pipe"  # "pipe", "broken", "cp1252", "ascii" or "C"
    broken_after: int = 0  # lines read before a broken log's pipe is closed
    oidc: bool = False
    proxy: tuple[str, str] | None = None  # (variable, value)
    proxy_password: str | None = None
    hostile_names: bool = False

    def rollout(self, key: Key) -> Rollout | None:
        return next((r for r in self.rollouts if r.key == key), None)

    def describe(self) -> str:
        """The schedule in a few lines, for a person replaying it."""
        lines = [f"seed {self.seed}: timeout-seconds {self.timeout}, log {self.log}"]
        for r in self.rollouts:
            where = f"{r.app_id}" + (f" flight {r.flight_id}" if r.flight_id else "")
            lines.append(f"  rollout {where} {r.submission_id}: {r.status} {list(r.versions)}")
        lines.append(f"  targets ({'file' if self.in_file else 'inputs'}):")
        lines += [f"    {e}" for e in self.entries]
        lines += [f"  fault {f}" for f in self.faults]
        knobs = (
            f"  halt_seconds {self.halt_seconds} at_once {self.halt_at_once}, page_cap "
            f"{self.page_cap}, next_link {self.next_link}, later pages {self.later_pages}"
        )
        lines.append(knobs)
        lines.append(f"  rival {self.rival}; cancel {self.cancel}")
        lines.append(f"  oidc {self.oidc}, proxy {self.proxy}, hostile names {self.hostile_names}")
        return "\n".join(lines)


def version_number(version: str) -> tuple[int, ...]:
    """A version as the guard compares it: numbers, `1.4.2` = `1.4.2.0`."""
    parts = [int(p) for p in version.split(".")]
    return tuple(parts + [0] * (4 - len(parts)))


def covers(entry: Entry, rollout: Rollout) -> bool:
    """Whether the entry reaches this rollout (by app, flight, submission or all-flights)."""
    if entry.app_id != rollout.app_id:
        return False
    if entry.all_flights:
        return True
    if entry.flight_id is not None:
        return entry.flight_id == rollout.flight_id
    if rollout.flight_id is not None:
        return False
    return entry.submission_id in (None, rollout.submission_id)
