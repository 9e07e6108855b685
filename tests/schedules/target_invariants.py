"""The promises about what a run works on: the whole app (`all-flights`), a listing
that is complete or failed, one row per rollout however the targets overlap, and the
version guard. Checked on top of the run-wide ones (`invariants.Checker`)."""

from __future__ import annotations

from typing import Any

from .invariants import Breach, Checker, named, newest_is
from .model import IN_PROGRESS, Key, Schedule, covers
from .play import Observation


class Invariants(Checker):
    """Every check: the run-wide ones and those of the targets."""

    def run_all(self) -> list[Breach]:
        super().run_all()
        if self.records is not None:
            self.check_whole_app(self.records)
            self.check_reported_once(self.records)
        self.check_version_guard()
        return self.breaches

    def check_whole_app(self, records: list[dict[str, Any]]) -> None:
        if self.cancelled or self.seen.exit_code != 0:
            return
        for entry in self.plan.entries:
            if not entry.all_flights:
                continue
            for rollout in self.plan.rollouts:
                if rollout.app_id != entry.app_id or rollout.status != IN_PROGRESS:
                    continue
                if entry.expected_version and not newest_is(
                    rollout.versions, entry.expected_version
                ):
                    continue
                if self.seen.final[rollout.key] == IN_PROGRESS:
                    self.breach(
                        "all-flights-exit-0-means-all-stopped",
                        f"exit 0, but {named(rollout.key)} is still in progress",
                    )
        if served := self._glitched_pages():
            self.breach("short-listing-is-failed", f"exit 0 after a listing page {served}")

    def _glitched_pages(self) -> str | None:
        """A later listing page the Store spoiled (empty, the first again, or with a
        count that grew) that the run was served: the listing cannot be complete."""
        if self.plan.later_pages == "real":
            return None
        for req in self.seen.requests:
            if not req.path.rstrip("/").endswith("/listflights") or req.status != 200:
                continue
            if int(req.query.get("skip") or 0) > 0:
                return f"at skip={req.query['skip']} ({self.plan.later_pages})"
        return None

    def check_reported_once(self, records: list[dict[str, Any]]) -> None:
        seen: set[Key] = set()
        for record in records:
            key = self.key_of(record)
            if key is None or key in self.disputed:
                continue  # a row that names no rollout; entries refused for a dispute
            if key in seen:
                self.breach("one-rollout-reported-once", f"{named(key)} has two rows")
            seen.add(key)

    def check_version_guard(self) -> None:
        disputed = self.disputed
        for key, halts in self.halts.items():
            rollout = self.plan.rollout(key)
            if not halts or rollout is None:
                continue
            if key in disputed:
                self.breach(
                    "overlap-conflict-sends-nothing",
                    f"entries guard a rollout differently, yet a halt went to {named(key)}",
                )
                continue
            guards = {e.expected_version for e in self.plan.entries if covers(e, rollout)}
            expected = next(iter(guards), None)
            if expected and not newest_is(rollout.versions, expected):
                self.breach(
                    "guard-never-halts-another-version",
                    f"halt sent to {named(key)} whose packages are {list(rollout.versions)}, "
                    f"expected-version {expected}",
                )
        if self.conflict or self.records is None or self.cancelled:
            return
        for entry in self.plan.entries:
            if not (entry.all_flights and entry.expected_version):
                continue
            matching = [
                r
                for r in self.plan.rollouts
                if r.app_id == entry.app_id
                and r.status == IN_PROGRESS
                and newest_is(r.versions, entry.expected_version)
            ]
            if not matching and self.seen.exit_code == 0:
                own = [r.get("result") for r in self.records if r.get("app-id") == entry.app_id]
                self.breach(
                    "guard-no-match-fails",
                    f"no rollout of {entry.app_id} in progress is at {entry.expected_version}, "
                    f"yet exit 0 with {own}",
                )


def check(plan: Schedule, seen: Observation) -> list[Breach]:
    """Every promise the run broke (empty when it kept them all)."""
    return Invariants(plan, seen).run_all()
