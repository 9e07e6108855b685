"""The outputs, the job summary and the annotations say what each target came to (rules 5,
9 and 11), made from the results alone."""

from __future__ import annotations

import json

from halt_rollout.halt import Failure, Result, TargetResult
from halt_rollout.inputs import Target
from halt_rollout.job_summary import summary
from halt_rollout.log_lines import error_annotations
from halt_rollout.step_outputs import outputs, overall_result
from halt_rollout.store_resources import Rollout

STOPPED = Rollout(True, 0.0, "PackageRolloutStopped", "1212922684621243058")
RUNNING = Rollout(True, 25.0, "PackageRolloutInProgress", "1212922684621243058")


def result(outcome: Result, name: str = "A1", rollout: Rollout | None = STOPPED) -> TargetResult:
    failure = Failure("Broke | badly", "<b>it</b>\nbroke") if outcome is Result.FAILED else None
    return TargetResult(Target(name), outcome, "42", rollout, failure)


def test_overall_result_order() -> None:
    assert overall_result([result(Result.ALREADY_HALTED), result(Result.HALTED)]) is Result.HALTED
    assert overall_result([result(Result.HALTED), result(Result.FAILED)]) is Result.FAILED
    assert overall_result([result(Result.ALREADY_HALTED), result(Result.DRY_RUN)]) is Result.DRY_RUN
    assert overall_result([result(Result.ALREADY_HALTED)]) is Result.ALREADY_HALTED
    assert overall_result([]) is Result.FAILED


def test_single_target_outputs() -> None:
    got = outputs([result(Result.HALTED)])
    assert got["result"] == "halted"
    assert got["status"] == "PackageRolloutStopped"
    assert got["rollout-percentage"] == "0.0"
    assert got["submission-id"] == "42"
    assert json.loads(got["results"])[0]["result"] == "halted"


def test_several_targets_share_only_common_values() -> None:
    got = outputs([result(Result.HALTED, "A1"), result(Result.DRY_RUN, "B2", RUNNING)])
    assert got["status"] == ""
    assert got["rollout-percentage"] == ""
    assert got["submission-id"] == "42"
    assert got["fallback-submission-id"] == "1212922684621243058"
    assert len(json.loads(got["results"])) == 2


def test_failure_with_unknown_rollout() -> None:
    got = outputs([result(Result.FAILED, rollout=None)])
    assert got["result"] == "failed"
    assert got["status"] == ""
    [record] = json.loads(got["results"])
    assert record["status"] is None
    assert record["error"] == "Broke | badly: <b>it</b>\nbroke"


def test_annotations_name_the_target_when_there_are_several() -> None:
    one = [result(Result.FAILED)]
    assert error_annotations(one) == [("Broke | badly", "<b>it</b>\nbroke")]
    two = [result(Result.HALTED, "A1"), result(Result.FAILED, "B2")]
    assert error_annotations(two) == [("B2: Broke | badly", "<b>it</b>\nbroke")]


def test_summary_shows_data_only_as_code() -> None:
    text = summary([result(Result.HALTED), result(Result.FAILED, "B|2")], dry_run=False)
    assert text.startswith("## ❌ Rollout halt failed for 1 of 2 target(s)")
    assert "`B\\|2`" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "`" in line]
    assert len(rows) == 2
    assert all(row.count(" | ") == 7 for row in rows)
    # The failure's message is in a fenced block, where HTML is shown as written, never
    # rendered: nothing is inserted into it.
    lines = text.splitlines()
    start = lines.index("```text")
    assert lines[start + 1 : start + 4] == ["<b>it</b>", "broke", "```"]
    assert all("<b>" not in line for line in lines[:start])


def test_summary_headlines() -> None:
    assert summary([result(Result.DRY_RUN, rollout=RUNNING)], dry_run=True).startswith(
        "## 🔍 Dry run"
    )
    assert "Already halted" in summary([result(Result.ALREADY_HALTED)], dry_run=False)
    assert summary([result(Result.HALTED)], dry_run=False).startswith("## 🛑 Rollout halted")


def test_annotations_stop_at_githubs_ten_and_count_the_rest() -> None:
    many = [result(Result.FAILED, f"T{n}") for n in range(25)]
    annotations = error_annotations(many)
    assert len(annotations) == 10
    assert annotations[8][0] == "T8: Broke | badly"
    title, message = annotations[9]
    assert title == "16 more targets failed"
    assert message.startswith("16 more targets failed or were not confirmed: T9, T10")
    assert "T24" in message
    assert error_annotations(many[:10]) == [
        (f"T{n}: Broke | badly", "<b>it</b>\nbroke") for n in range(10)
    ]
