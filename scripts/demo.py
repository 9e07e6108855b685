"""`make demo`: the real entrypoint, end to end, against the local Store emulator.

Ten runs of the action, as GitHub's runner would run them: a dry run, the
halt, the same halt again (idempotent: already halted, nothing sent), a
flight's halt that the Store throttles once (the wait is logged, then the halt
lands), the whole-app stop (all-flights) of an app with 23 package flights,
listed over several pages, and the version guard: a release pipeline's stop
for a version that is not the one rolling out (refused, nothing sent), then
for the one that is (halted). Then the guard (halt-when: failing), as a schedule
runs it: a healthy rollout left alone (nothing sent), a failing one halted on the
Store's own failure data with the one sentence that says why, and a blind guard (the
analytics refused) failing loudly with nothing halted. Each shows the log, the outputs
(with the packages' versions the guard read) and the job summary a user would see.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from store_emulator import Emulator, Fault, demo
from store_emulator.actions_runner import run_action
from store_emulator.demo import APP_ID, FLIGHT_ID, OTHER_APP, OTHER_SUBMISSION, OTHER_VERSION
from store_emulator.step_results import ActionRun

RULE = "─" * 78


def show(title: str, run: ActionRun) -> None:
    print(f"\n{RULE}\n▶ {title}  (exit code {run.exit_code}, {run.seconds:.2f} s)\n{RULE}")
    print("Log:")
    for line in run.stdout.splitlines():
        print(f"  {line}")
    for line in run.stderr.splitlines():
        print(f"  [stderr] {line}")
    print("Outputs:")
    for name, value in run.outputs.items():
        shown = value
        if name in ("results", "evidence"):
            shown = json.dumps(json.loads(value), indent=2).replace("\n", "\n    ")
        print(f"  {name} = {shown}")
    print("Job summary:")
    for line in run.summary.splitlines():
        print(f"  {line}")


def _versions(run: ActionRun) -> str:
    """The packages' versions the guard read, as the `results` output lists them."""
    records = json.loads(run.outputs.get("results") or "[]")
    return ", ".join(records[0].get("versions") or []) if records else ""


def _evidence(run: ActionRun) -> dict[str, Any]:
    """The first evidence object of a run (the guard's figures and sentence)."""
    evidence = json.loads(run.outputs.get("evidence") or "[]")
    return evidence[0] if evidence else {}


def guard_runs(
    emulator: Emulator, inputs: dict[str, str], env: dict[str, str]
) -> list[tuple[str, ActionRun]]:
    """halt-when: failing, as an hourly schedule runs it, on three guarded apps."""
    emulator.seed_guard()
    guard = inputs | {"halt-when": "failing", "reason": "hourly guard"}
    healthy = run_action(guard | {"app-id": demo.GUARD_HEALTHY_APP}, extra_env=env)
    failing = run_action(guard | {"app-id": demo.GUARD_FAILING_APP}, extra_env=env)
    emulator.analytics.knobs.status = 403  # the Entra app lost its analytics access
    blind = run_action(guard | {"app-id": demo.GUARD_BLIND_APP}, extra_env=env)
    emulator.analytics.knobs.status = None
    return [
        ("8. The guard: a healthy rollout, left alone (nothing sent)", healthy),
        ("9. The guard: a failing rollout, halted on the Store's failure data", failing),
        ("10. The guard, blind: analytics refused (403), nothing halted, the run fails", blind),
    ]


def main() -> int:
    with Emulator() as emulator:
        emulator.seed_demo()
        inputs = {
            "app-id": APP_ID,
            "tenant-id": emulator.tenant_id,
            "client-id": emulator.client_id,
            "client-secret": emulator.client_secret,
            "store-api-url": emulator.url,
            "authority-host": emulator.url,
        }
        env = {"REQUESTS_CA_BUNDLE": emulator.ca_path}
        print(f"Store emulator (Entra ID + Store API) on {emulator.url}")
        runs = [
            (
                "1. Dry run: what would be halted",
                run_action(inputs | {"dry-run": "true"}, extra_env=env),
            ),
            ("2. The halt", run_action(inputs, extra_env=env)),
            (
                "3. The same halt again: already halted, nothing sent",
                run_action(inputs, extra_env=env),
            ),
        ]
        emulator.add_fault(
            Fault(
                method="POST",
                path=r"/haltpackagerollout$",
                status=429,
                headers={"Retry-After": "2"},
                body={
                    "statusCode": 429,
                    "message": "Rate limit is exceeded. Try again in 2 seconds.",
                },
            )
        )
        runs.append(
            (
                "4. A flight's halt, throttled once by the Store (Retry-After: 2)",
                run_action(inputs | {"flight-id": FLIGHT_ID}, extra_env=env),
            )
        )
        halts = len(emulator.halt_requests)
        emulator.seed_whole_app()
        emulator.knobs.listflights_page_cap = 10  # the listing comes in pages of ten
        whole = run_action(
            inputs | {"app-id": demo.WHOLE_APP_ID, "all-flights": "true"}, extra_env=env
        )
        runs.append((f"5. The whole app: {demo.WHOLE_APP_NAME} and its 23 flights", whole))
        # A release pipeline's stop: it shipped 2.0.0.0, but 2.0.1.0 is what is rolling out.
        guarded = inputs | {"app-id": OTHER_APP, "reason": "crash rate over 2% after release"}
        before_guard = len(emulator.halt_requests)
        refused = run_action(guarded | {"expected-version": "2.0.0.0"}, extra_env=env)
        guard_sent = len(emulator.halt_requests) - before_guard
        runs.append(("6. The version guard: not the version rolling out, nothing sent", refused))
        runs.append(
            (
                "7. The version guard: the version rolling out, halted",
                run_action(guarded | {"expected-version": OTHER_VERSION}, extra_env=env),
            )
        )
        for title, run in runs:
            show(title, run)
        records = json.loads(whole.outputs.get("results") or "[]")
        halted = sum(record["result"] == "halted" for record in records)
        print(
            f"\n{RULE}\nThe Store received {halts} halt requests in runs 1–4 (the app's once; "
            f"the flight's twice, the first throttled). Run 5 reported {len(records)} rollouts "
            f"and halted {halted}; the others were not in progress and were left alone. "
            f"Run 6 found version {_versions(refused)} rolling out, not 2.0.0.0, and sent "
            f"{guard_sent} halt requests; run 7 asked for {OTHER_VERSION} and halted it."
        )
        guarded_state = emulator.rollout(OTHER_APP, OTHER_SUBMISSION)["packageRolloutStatus"]
        before_evidence = len(emulator.halt_requests)
        guard = guard_runs(emulator, inputs, env)
        runs += guard
        for title, run in guard:
            show(title, run)
        evidence_sent = len(emulator.halt_requests) - before_evidence
        sentence = _evidence(guard[1][1]).get("why", "")
        print(
            f"\n{RULE}\nThe guard left the healthy rollout alone, halted the failing one "
            f"({sentence}) and, blind, halted nothing: {evidence_sent} halt request(s) in "
            "runs 8–10."
        )
    expected = [
        *("dry-run", "halted", "already-halted", "halted", "halted", "failed", "halted"),
        *("healthy", "halted", "failed"),
    ]
    got = [run.outputs.get("result") for _, run in runs]
    # The incident record of run 7: who, why and what the halt means.
    record = runs[6][1].summary
    told = all(
        words in record
        for words in (
            "**Why:** `crash rate over 2% after release`",
            "**Who:**",
            "### What the halt means",
        )
    )
    if (
        not told
        or got != expected
        or halts != 3
        or len(records) != 1 + len(demo.WHOLE_FLIGHTS)
        or [run.exit_code for _, run in runs] != [0, 0, 0, 0, 0, 1, 0, 0, 0, 1]
        or evidence_sent != 1
        or not sentence.endswith(": halted")
        or guard_sent != 0
        or _versions(refused) != OTHER_VERSION
        or guarded_state != "PackageRolloutStopped"
    ):
        print(
            f"Demo did not go as expected: results {got}, {halts} halt request(s), "
            f"{guard_sent} sent past the version guard, who/why/what-next shown: {told}."
        )
        return 1
    print(
        "Demo finished as expected: dry-run, halted, already-halted, halted after a wait, "
        "the whole app halted, the version guard refused the wrong version (nothing sent) "
        "and halted the right one, and its summary says who, why and what the halt means; "
        "the guard left a healthy rollout alone, halted a failing one on evidence, and "
        "failed loudly when blind."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
