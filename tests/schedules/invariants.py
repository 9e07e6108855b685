"""The promises every generated run must keep, read from what a user can observe (exit
code, GITHUB_OUTPUT, the job summary, the log) and from the Store's final state and its
record of requests. Each broken one is a `Breach`: the invariant's name and what shows it.

Clock allowances, stated once: the run's deadline starts inside the process when the
package begins to load; the checker notes when "N targets to work on" arrives, which is
later, so `work start + timeout-seconds` is a late bound. A request the emulator read
more than `DEADLINE_SLACK` (plus a share of the deadline) after that bound was sent after
the deadline. Timings of a process on a loaded machine are checked only generously, as
invariants of their own (`cancel-took-over-2s`, `run-overran-deadline`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from store_emulator import Recorded

from .. import conftest  # noqa: F401 (first: tests.world takes its names from it)
from ..world import injected_commands
from .model import IN_PROGRESS, STOPPED, Entry, Key, Schedule, covers, version_number
from .play import Observation

DEADLINE_SLACK = 0.5  # s, plus DEADLINE_SHARE of timeout-seconds: the emulator's clock
DEADLINE_SHARE = 0.05  # vs the process's own start, on a loaded machine
CANCEL_SLACK = 1.0  # s after the signal: a request already on its way when it came
CANCEL_SECONDS = 2.0  # rule 10
CANCEL_TIMING_LIMIT = 5.0  # s: what the timing invariant allows a loaded machine (rule 10: 2 s)
OVERRUN_LIMIT = 8.0  # s past the deadline before a run counts as having overrun it
OK_RESULTS = {"halted", "already-halted", "dry-run", "healthy", "inconclusive", "nothing-to-halt"}
RESULTS = OK_RESULTS | {"unknown", "failed"}
WORST_FIRST = ("failed", "unknown", "halted", "dry-run", "already-halted")
_ROLLOUT_PATH = re.compile(
    r"^/v1\.0/my/applications/([^/]+)(?:/flights/([^/]+))?/submissions/([^/]+)/"
    r"(packagerollout|haltpackagerollout)$"
)


@dataclass(frozen=True)
class Breach:
    invariant: str
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.detail}"


def _call(req: Recorded) -> tuple[Key, str] | None:
    """(rollout, "read" or "halt") of a rollout request; None for any other."""
    match = _ROLLOUT_PATH.match(req.path)
    if match is None:
        return None
    app, flight, submission, action = match.groups()
    kind = "halt" if action == "haltpackagerollout" and req.method == "POST" else "read"
    return (app, flight.lower() if flight else None, submission), kind


def _worst(results: list[str]) -> str:
    for result in WORST_FIRST:
        if result in results:
            return result
    return "already-halted" if "nothing-to-halt" in results else "failed"


class Checker:
    """The checks of one run; `breaches` holds what they found."""

    def __init__(self, plan: Schedule, seen: Observation) -> None:
        self.plan, self.seen = plan, seen
        self.breaches: list[Breach] = []
        self.halts: dict[Key, list[Recorded]] = {}
        self.reads: dict[Key, list[Recorded]] = {}
        for req in seen.requests:
            call = _call(req)
            # A halt the gateway throttled (a complete 429) never reached the Store.
            if call is not None and not (call[1] == "halt" and req.status == 429):
                into = self.halts if call[1] == "halt" else self.reads
                into.setdefault(call[0], []).append(req)
        self.base = seen.work_started or min(
            (r.started for r in seen.requests), default=seen.started
        )
        self.broken = plan.log == "broken"
        self.cancelled = seen.sigint_at is not None and not self._done_before_signal()
        self.at_once = seen.sigterm_at is not None  # a second signal ends the run at once
        self.records: list[dict[str, Any]] | None = None
        self.disputed = self._disputed()
        self.conflict = bool(self.disputed)  # some entries are refused

    def breach(self, invariant: str, detail: str) -> None:
        found = Breach(invariant, detail)
        if found not in self.breaches:  # two rows of one rollout break it once
            self.breaches.append(found)

    # -- helpers ----------------------------------------------------------------------

    def _done_before_signal(self) -> bool:
        """Whether the SIGINT found the run's work done (it came as the process exited):
        the notice after the results, no cancel reported, exit 0; or, when the log cannot
        be read, a summary written before the signal (mtime is coarse: 50 ms margin)."""
        seen = self.seen
        if self.broken:
            return (
                seen.summary_written_wall is not None
                and seen.sigint_wall is not None
                and seen.summary_written_wall < seen.sigint_wall - 0.05
            )
        notice, results = seen.log.find("SIGINT received"), seen.log.find("Results:")
        if notice < 0:
            return True  # never handled: the process had ended (a missed handler crashes)
        return seen.exit_code == 0 and 0 <= results < notice and "Run cancelled" not in seen.log

    def _disputed(self) -> set[Key]:
        """Every rollout that entries in a dispute reach: entries that reach one rollout
        with different version guards are refused before anything is sent for them."""
        entries = set()
        for rollout in self.plan.rollouts:
            reaching = [e for e in self.plan.entries if covers(e, rollout)]
            if len({e.expected_version for e in reaching}) > 1:
                entries.update(reaching)
        return {r.key for r in self.plan.rollouts if any(covers(e, r) for e in entries)}

    @staticmethod
    def key_of(record: dict[str, Any]) -> Key | None:
        """The rollout a row speaks of; None for a row that never resolved its submission
        (it failed before it knew which rollout it meant, so says nothing of one)."""
        app, flight = record.get("app-id"), record.get("flight-id")
        flight = flight.lower() if isinstance(flight, str) else None
        submission = record.get("submission-id")
        if isinstance(submission, str) and submission:
            return (str(app), flight, submission)
        return None

    # -- the checks -------------------------------------------------------------------

    def run_all(self) -> list[Breach]:
        self.check_outputs()
        self.check_process()
        if self.records is not None:
            self.check_exit_code(self.records)
            self.check_truth(self.records)
        self.check_deadline()
        self.check_cancel()
        self.check_secrets()
        return self.breaches

    def check_process(self) -> None:
        seen = self.seen
        if seen.exit_code is None:
            self.breach("run-ends", "still running 40 s after its deadline; killed")
            return
        if seen.exit_code not in (0, 1):
            self.breach("exit-code-follows-results", f"exit {seen.exit_code}: rule 9 has 0 and 1")
        if "Traceback" in seen.log + seen.stderr or "halt-rollout crashed" in seen.log:
            self.breach("no-traceback", _first_line_with(seen.log + seen.stderr, "Traceback"))
        took = seen.ended - seen.started
        if took > self.plan.timeout + OVERRUN_LIMIT:
            self.breach(
                "run-overran-deadline",
                f"ran {took:.1f} s with timeout-seconds {self.plan.timeout} (timing, generous)",
            )
        if not self.broken and not self.at_once:
            refused = self.records == []  # bad inputs: no target has a result to state
            if "Results:" not in seen.log and not refused:
                self.breach("log-states-results", "the log never states the results")
            if injected := injected_commands(seen.log):
                self.breach("data-stays-data", f"a workflow command from data: {injected[0]!r}")

    def check_outputs(self) -> None:
        try:
            outputs = self.seen.outputs
        except ValueError as error:  # the runner itself could not read the file
            self.breach("outputs-written", f"GITHUB_OUTPUT cannot be read: {error}")
            return
        if self.at_once and not outputs:
            return  # ended at once by a second signal, perhaps before writing anything
        if "result" not in outputs or "results" not in outputs:
            self.breach("outputs-written", f"outputs are {sorted(outputs)}")
            return
        try:
            records = json.loads(outputs["results"])
        except ValueError as error:
            self.breach("outputs-written", f"results is not JSON: {error}")
            return
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            self.breach("outputs-written", "results is not a list of objects")
            return
        self.records = records
        if not self.seen.summary.strip() and not self.at_once:
            self.breach("outputs-written", "the job summary is empty")
        results = [str(r.get("result")) for r in records]
        if unknown := [r for r in results if r not in RESULTS]:
            self.breach("outputs-written", f"results not in the contract: {unknown}")
        if records and outputs["result"] != _worst(results):
            self.breach(
                "outputs-written", f"result {outputs['result']!r} is not the worst of {results}"
            )
        store_asked = any(r.path.startswith("/v1.0/my/") for r in self.seen.requests)
        if store_asked and not self.conflict:
            for entry in self.plan.entries:
                if not any(_row_of(entry, record) for record in records):
                    self.breach("one-row-per-target", f"no row for {entry}")

    def check_exit_code(self, records: list[dict[str, Any]]) -> None:
        code = self.seen.exit_code
        if code is None:
            return
        if code not in (0, 1):
            return  # check_process says so
        if self.cancelled:
            if code != 1:
                self.breach("exit-code-follows-results", f"cancelled, yet exit {code}")
            return
        if self.at_once:
            return
        results = [str(r.get("result")) for r in records]
        well = bool(records) and all(r in OK_RESULTS for r in results)
        if (code == 0) != well:
            self.breach("exit-code-follows-results", f"exit {code} with results {results}")

    def check_truth(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            key = self.key_of(record)
            if key is None or key not in self.seen.final:
                continue
            result, final = str(record.get("result")), self.seen.final[key]
            halts = self.halts.get(key, [])
            by = self.seen.stopped_by.get(key)
            where = f"{named(key)} ended {final}"
            if result in ("halted", "already-halted") and final != STOPPED:
                self.breach("result-agrees-with-store", f"{result} but {where}")
            if result == "halted" and not halts:
                self.breach("result-agrees-with-store", f"halted, but no halt sent; {where}")
            if result == "already-halted" and by == "client":
                self.breach(
                    "already-halted-means-someone-else",
                    f"already-halted, but this run's halt stopped it; {where}",
                )
            if key in self.disputed:
                continue  # nothing may be sent for it: overlap-conflict-sends-nothing says so
            if result == "nothing-to-halt" and final == IN_PROGRESS and self._wanted(key):
                self.breach("result-agrees-with-store", f"nothing-to-halt but {where}")
            # From the process's start: the least time that can have been left.
            left = self.seen.started + self.plan.timeout - self.seen.ended
            cut = self.cancelled or left < 1.0
            # A request the deadline or the cancel cut may have been sent but never read by
            # the emulator (its connection reset first): only a run with time left is judged.
            if result == "unknown" and not halts and not cut:
                self.breach("unknown-only-after-sending", f"unknown, nothing sent; {where}")
            if result == "unknown" and not self.cancelled and left > 1.5 + 0.2 * self.plan.timeout:
                self.breach("unknown-only-at-the-deadline", f"{left:.1f} s left; {where}")
            if result == "failed" and halts:
                self._failed_after_sending(key, halts, by, where, str(record.get("error")))

    def _wanted(self, key: Key) -> bool:
        """Whether the entries that reach this rollout ask for it halted (a version guard
        of another version leaves it alone)."""
        rollout = self.plan.rollout(key)
        if rollout is None:
            return True
        guards = {e.expected_version for e in self.plan.entries if covers(e, rollout)}
        return any(g is None or newest_is(rollout.versions, g) for g in guards)

    def _failed_after_sending(
        self, key: Key, halts: list[Recorded], by: str | None, where: str, error: str
    ) -> None:
        """Rule 7a: failed after sending only for a 4xx refusal of the first halt,
        confirmed by a read that does not show the rollout stopped."""
        first = halts[0]
        refused = first.status is not None and 400 <= first.status < 500 and first.status != 429
        confirmed = any(
            read.started > first.started and self.seen.told(read) not in (None, STOPPED)
            for read in self.reads.get(key, [])
        )
        if by == "client" or not (refused and confirmed):
            how = f"first halt answered {first.status} ({first.fault or 'as the Store would'})"
            self.breach(
                "sent-halt-never-failed",
                f"failed after {len(halts)} halt(s), {how}, stopped by {by}; {where}; "
                f"error: {error[:160]}",
            )

    def check_deadline(self) -> None:
        bound = self.base + self.plan.timeout + DEADLINE_SLACK + DEADLINE_SHARE * self.plan.timeout
        late = [r for r in self.seen.requests if r.started > bound]
        if late:
            first = late[0]
            self.breach(
                "nothing-sent-after-deadline",
                f"{len(late)} request(s) after the deadline, first {first.method} {first.path} "
                f"at deadline+{first.started - bound + DEADLINE_SLACK:.2f} s",
            )

    def check_cancel(self) -> None:
        seen = self.seen
        if not self.cancelled or seen.sigint_at is None:
            return
        late = [r for r in seen.requests if r.started > seen.sigint_at + CANCEL_SLACK]
        if late:
            self.breach(
                "nothing-sent-after-cancel",
                f"{late[0].method} {late[0].path} {late[0].started - seen.sigint_at:.2f} s "
                "after SIGINT",
            )
        took = seen.ended - seen.sigint_at
        if seen.sigterm_at is None and took > CANCEL_TIMING_LIMIT:
            self.breach(
                "cancel-took-over-2s",
                f"ended {took:.1f} s after SIGINT (rule 10: {CANCEL_SECONDS:g} s; timing, "
                "generous)",
            )
        if self.broken or self.at_once:
            return
        errors = [line for line in seen.log.splitlines() if line.startswith("::error")]
        cancelled = [line for line in errors if line.startswith("::error title=Run cancelled")]
        if len(cancelled) != 1:
            self.breach("cancel-says-so-once", f"{len(cancelled)} 'Run cancelled' errors")
        early = seen.sigint_at < seen.started + self.plan.timeout - 1.0  # surely before it
        said = [r for r in self.records or [] if "Deadline reached" in str(r.get("error"))]
        if early and said:
            self.breach(
                "cancel-is-not-a-deadline",
                f"cancelled with time left, yet: {str(said[0].get('error'))[:160]}",
            )

    def check_secrets(self) -> None:
        seen = self.seen
        log = "\n".join(
            line for line in seen.log.splitlines() if not line.startswith("::add-mask::")
        )
        for place, text in (
            ("log", log + seen.stderr),
            ("outputs", seen.outputs_text),
            ("summary", seen.summary),
        ):
            for secret in seen.secrets:
                if secret in text:
                    self.breach("no-secret-shown", f"a secret ({secret[:3]}…) in the {place}")
                    return


def newest_is(versions: tuple[str, ...], expected: str) -> bool:
    return max(version_number(v) for v in versions) == version_number(expected)


def _row_of(entry: Entry, record: dict[str, Any]) -> bool:
    flight = record.get("flight-id")
    flight = flight.lower() if isinstance(flight, str) else None
    want = None if entry.all_flights else entry.flight_id
    return bool(record.get("app-id") == entry.app_id and flight == want)


def named(key: Key) -> str:
    app, flight, submission = key
    return f"{app}{f' flight {flight}' if flight else ''} submission {submission}"


def _first_line_with(text: str, word: str) -> str:
    lines = text.splitlines()
    at = next((n for n, line in enumerate(lines) if word in line), 0)
    return " | ".join(lines[at : at + 1] + lines[-2:])[:300]
