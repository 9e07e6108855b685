"""The incident record: who pressed stop, why, and what a halt means afterwards.

The people who run this action are in an incident. Beside the results, they
need to know who stopped what and why (the run is the incident's record), and
what happens next for customers and for the next release. What a halt means is
said in the Store's documented terms only (store-api.md, "What a halt means"):
the documentation describes no way to resume a halted rollout, and nothing here
promises one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

PARTNER_CENTER = "https://partner.microsoft.com/dashboard/products"
_ORIGIN = re.compile(r"https://[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::[0-9]{1,5})?")
_REPOSITORY = re.compile(r"[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}")
_DIGITS = re.compile(r"[0-9]{1,20}")
# GitHub logins are at most 39 characters; anything longer is not a login.
_MAX_ACTOR_CHARS = 39

# Said wherever a run leaves something unfinished or unconfirmed: what makes a re-run safe.
RERUN_IS_SAFE = (
    "Running this again is safe: it reads each rollout first, halts only what is still "
    "rolling out, and never halts twice."
)
# After a halt: what it means, in the Store's documented terms.
WHAT_A_HALT_MEANS = (
    "The halted submission's packages are no longer distributed to anyone: new customers, "
    "and customers who update, get the packages of the fallback submission (the one "
    "published before).",
    "Customers who already have the halted packages keep them: there is no rollback. To "
    "reach them, publish a new submission with fixed packages.",
    "A new submission starts as a clone of the halted one, so it still carries the halted "
    "packages: replace them before you commit it.",
    "If that submission also rolls out gradually, the customers who had the halted packages "
    "are offered it in the same order as before.",
    "The Store's documentation describes no way to resume a halted rollout: the way forward "
    "is a new submission.",
)
# A package flight: the same, and the flight's own way forward.
WHAT_A_FLIGHT_HALT_MEANS = (
    "For a package flight: create an update for the same flight with a newer, fixed package.",
)


@dataclass(frozen=True)
class Incident:
    """Who started the run, who pressed the button this time, why, and where it ran."""

    reason: str
    actor: str | None = None
    triggering_actor: str | None = None  # set only when it differs from the actor
    run_url: str | None = None

    def who(self) -> str:
        if not self.actor:
            return "someone unknown (no GITHUB_ACTOR)"
        if self.triggering_actor:
            return f"{self.actor} (this attempt started by {self.triggering_actor})"
        return self.actor

    def log_lines(self, reason_is_given_by: str = "the reason input") -> list[str]:
        """The first lines of the log: why, who, where (`reason_is_given_by` names where a
        person gives a reason: the action's input, or the command line's flag)."""
        reason = self.reason or f"none given ({reason_is_given_by} records why)"
        lines = [f"Reason: {reason}", f"Started by: {self.who()}"]
        if self.run_url:
            lines.append(f"Run: {self.run_url}")
        return lines


def incident_from(environment: Mapping[str, str], reason: str) -> Incident:
    """The incident as the runner's variables describe it. Each part is checked for the
    shape GitHub gives it; one that is not is left out rather than shown as a link."""
    actor = _login(environment.get("GITHUB_ACTOR", ""))
    triggering = _login(environment.get("GITHUB_TRIGGERING_ACTOR", ""))
    return Incident(
        reason=reason,
        actor=actor,
        triggering_actor=triggering if triggering and triggering != actor else None,
        run_url=_run_url(environment),
    )


def _login(text: str) -> str | None:
    text = text.strip()
    if not text or len(text) > _MAX_ACTOR_CHARS or not text.isprintable():
        return None
    return text


def _run_url(environment: Mapping[str, str]) -> str | None:
    server = environment.get("GITHUB_SERVER_URL", "").rstrip("/")
    repository = environment.get("GITHUB_REPOSITORY", "")
    run_id = environment.get("GITHUB_RUN_ID", "")
    attempt = environment.get("GITHUB_RUN_ATTEMPT", "")
    # Exactly https://host[:port]: not even an empty query or fragment, which would turn
    # the path after it into something else.
    plain_origin = _ORIGIN.fullmatch(server) is not None
    if not (plain_origin and _REPOSITORY.fullmatch(repository) and _DIGITS.fullmatch(run_id)):
        return None
    url = f"{server}/{repository}/actions/runs/{run_id}"
    if _DIGITS.fullmatch(attempt) and attempt != "1":
        url += f"/attempts/{attempt}"
    return url


def partner_center_url(app_id: str, submission_id: str | None = None) -> str:
    """The app's page in Partner Center, or one of its submissions' (a flight's too: the
    Store's own tools link flight submissions the same way). IDs are validated shapes."""
    if submission_id:
        return f"{PARTNER_CENTER}/{app_id}/submissions/{submission_id}"
    return f"{PARTNER_CENTER}/{app_id}/overview"
