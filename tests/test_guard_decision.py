"""The guard's decision: failing only on evidence, healthy only on evidence, inconclusive
otherwise; late or partial data never read as zero; every decision explained in one
sentence with its figures (contract: Halt on evidence).

The decision is pure (rows in, a judgement out), so these tests hand it rows shaped as
the Store's analytics answer them (store-api.md, "Store analytics").
"""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from halt_rollout.evidence import (
    FailureRow,
    Judgement,
    Outcome,
    Readings,
    Thresholds,
    UsageRow,
    judge,
)

NEW, OLD = "1.4.2.0", "1.4.1.0"
DAY0 = date(2026, 11, 2)
DEFAULT = Thresholds(failure_ratio=2.0, min_failing_devices=25, event_types=("crash", "hang"))
Day = tuple[float, float, float, float]  # new active, new failing, old active, old failing


def rows(days: list[Day]) -> tuple[list[UsageRow], list[FailureRow]]:
    usage: list[UsageRow] = []
    failures: list[FailureRow] = []
    for i, (new_active, new_failing, old_active, old_failing) in enumerate(days):
        day = DAY0 + timedelta(days=i)
        usage += [UsageRow(day, NEW, new_active), UsageRow(day, OLD, old_active)]
        for version, failing in ((NEW, new_failing), (OLD, old_failing)):
            if failing:
                failures.append(FailureRow(day, version, "crash", failing))
    return usage, failures


def readings(
    usage: list[UsageRow], failures: list[FailureRow], days: int = 7, start: date = DAY0
) -> Readings:
    return Readings(tuple(usage), tuple(failures), start, start + timedelta(days=days - 1))


def decide(
    days: list[Day],
    thresholds: Thresholds = DEFAULT,
    rolling_out: tuple[str, ...] = (NEW,),
    fallback: tuple[str, ...] = (OLD,),
) -> Judgement:
    usage, failures = rows(days)
    return judge(
        readings(usage, failures, max(len(days), 1)),
        rolling_out_versions=rolling_out,
        fallback_versions=fallback,
        thresholds=thresholds,
    )


def same(a: Judgement, b: Judgement) -> bool:
    return a.outcome is b.outcome and a.why == b.why and a.ratio_bound == b.ratio_bound


def test_failing_on_evidence_is_halted_with_the_contracts_sentence() -> None:
    j = decide([(1000, 31, 9000, 36)] * 3)
    assert j.outcome is Outcome.FAILING
    assert j.ratio_bound is not None
    assert j.ratio is not None
    assert 2.0 < j.ratio_bound <= j.ratio
    assert j.why == (
        f"{NEW} fails on 3.1% of active devices against 0.4% on {OLD}: at least "
        f"{j.ratio_bound:.1f} times worse, above the 2× margin: halted"
    )
    assert j.sentence("would be halted (dry run)").endswith(
        "above the 2× margin: would be halted (dry run)"
    )


def test_healthy_on_evidence_says_how_much_worse_at_most() -> None:
    j = decide([(20_000, 200, 80_000, 800)] * 5)
    assert j.outcome is Outcome.HEALTHY
    assert j.ratio == pytest.approx(1.0)
    assert j.ratio_bound is not None
    assert 1.0 < j.ratio_bound <= 2.0
    assert j.why.endswith(f"at most {j.ratio_bound:.1f} times worse, below the 2× margin: healthy")


def test_too_little_data_is_inconclusive_either_way() -> None:
    for day in [(100, 2, 900, 9), (100, 4, 900, 9)]:
        j = decide([day])
        assert j.outcome is Outcome.INCONCLUSIVE
        assert j.why.endswith("yet: inconclusive")


def test_min_failing_devices_holds_back_a_halt_and_says_so() -> None:
    days: list[Day] = [(1000, 12, 9000, 2)] * 2  # 24 failing devices on the new version
    assert decide(days).outcome is Outcome.INCONCLUSIVE
    assert "from 24 failing devices, of the 25 needed to halt" in decide(days).why
    fewer = Thresholds(2.0, 24, ("crash", "hang"))
    assert decide(days, fewer).outcome is Outcome.FAILING


def test_fractional_device_counts_are_counted_as_given() -> None:
    j = decide([(1000.5, 7.14285714285714, 9000.25, 20.5)] * 3)
    assert j.rolling_out.failing_devices == pytest.approx(3 * 7.14285714285714)
    assert j.rolling_out.active_devices == pytest.approx(3 * 1000.5)
    assert j.fallback.failing_share == pytest.approx(20.5 / 9000.25)
    assert j.ratio is not None
    assert j.ratio_bound is not None


def test_unordered_and_repeated_rows_change_nothing() -> None:
    usage, failures = rows([(1000, 31, 9000, 36), (1200, 40, 8800, 30), (900, 20, 9100, 41)])
    first = judge(
        readings(usage, failures, 3),
        rolling_out_versions=(NEW,),
        fallback_versions=(OLD,),
        thresholds=DEFAULT,
    )
    shuffled = usage + usage[:2], failures + failures[1:3]
    random.Random(7).shuffle(shuffled[0])
    random.Random(8).shuffle(shuffled[1])
    again = judge(
        readings(*shuffled, 3),
        rolling_out_versions=(NEW,),
        fallback_versions=(OLD,),
        thresholds=DEFAULT,
    )
    assert same(first, again)
    assert first.rolling_out.failing_devices == 91


def test_rows_outside_the_period_asked_for_are_ignored() -> None:
    usage, failures = rows([(1000, 5, 9000, 45)] * 3)
    before, after = DAY0 - timedelta(days=1), DAY0 + timedelta(days=3)
    extra_usage = [UsageRow(d, v, 500) for d in (before, after) for v in (NEW, OLD)]
    extra_failures = [FailureRow(d, NEW, "crash", 400) for d in (before, after)]
    plain = judge(
        readings(usage, failures, 3),
        rolling_out_versions=(NEW,),
        fallback_versions=(OLD,),
        thresholds=DEFAULT,
    )
    padded = judge(
        readings(usage + extra_usage, failures + extra_failures, 3),
        rolling_out_versions=(NEW,),
        fallback_versions=(OLD,),
        thresholds=DEFAULT,
    )
    assert same(plain, padded)
    assert padded.period_from == DAY0
    assert padded.period_to == DAY0 + timedelta(days=2)


def test_a_day_without_usage_yet_is_left_out_of_both_sides() -> None:
    """Late usage: the last day has failures but no usage for the fallback yet. Counted as
    zero active devices it would make the share infinite; it is left out of both sides."""
    usage, failures = rows([(1000, 5, 9000, 45)] * 3)
    last = DAY0 + timedelta(days=3)
    j = judge(
        readings(
            [*usage, UsageRow(last, NEW, 1000)], [*failures, FailureRow(last, NEW, "crash", 60)], 4
        ),
        rolling_out_versions=(NEW,),
        fallback_versions=(OLD,),
        thresholds=DEFAULT,
    )
    assert j.period_to == DAY0 + timedelta(days=2)
    assert j.rolling_out.failing_devices == 15
    assert j.days[-1].day == last
    assert j.days[-1].fallback is None


def test_late_failure_data_are_not_read_as_zero() -> None:
    """Usage has reached a day the failure report has not: that day is left out (read as
    zero failures, the new version would look better than it is). A day before it with
    usage and no failure row for a version does count zero for that version."""
    usage, failures = rows([(1000, 30, 9000, 40), (1000, 0, 9000, 40)])
    late_day = DAY0 + timedelta(days=2)
    usage += [UsageRow(late_day, NEW, 50_000), UsageRow(late_day, OLD, 50_000)]
    j = judge(
        readings(usage, failures, 3),
        rolling_out_versions=(NEW,),
        fallback_versions=(OLD,),
        thresholds=DEFAULT,
    )
    assert j.period_to == DAY0 + timedelta(days=1)
    assert j.rolling_out.active_devices == 2000
    assert j.rolling_out.failing_devices == 30
    assert j.days[-1].rolling_out is None


def test_no_failure_data_at_all_is_inconclusive_not_healthy() -> None:
    usage, _ = rows([(50_000, 0, 50_000, 0)] * 5)
    j = judge(
        readings(usage, [], 5),
        rolling_out_versions=(NEW,),
        fallback_versions=(OLD,),
        thresholds=DEFAULT,
    )
    assert j.outcome is Outcome.INCONCLUSIVE
    assert "failure report has no rows" in j.why


def test_the_same_version_on_both_sides_cannot_be_judged() -> None:
    j = decide([(1000, 300, 9000, 36)] * 3, rolling_out=("1.4.1",), fallback=(OLD,))
    assert j.outcome is Outcome.INCONCLUSIVE
    assert "is also the fallback's" in j.why
    assert j.rolling_out.versions == ("1.4.1",)


def test_a_submission_without_a_readable_version_is_not_called_a_republished_package() -> None:
    """No version read from the rolling-out submission (none uploaded, or none a version can
    be): inconclusive, and the sentence says so, not "the same package published again"."""
    j = decide([(1000, 300, 9000, 36)] * 3, rolling_out=())
    assert j.outcome is Outcome.INCONCLUSIVE
    assert "has no package version to compare" in j.why
    assert "published again" not in j.why


def test_a_large_healthy_version_with_its_own_swings_is_not_halted_at_a_tight_margin() -> None:
    """A million devices a side, margin 1.1. On its first day the new version's share is
    10% up and the fallback's 5% down, each on its own (their daily swing): 1.16 times
    the fallback's, from counts so large that read as Poisson they would "prove" more
    than 1.1; not failing. Nor over a week of such swings either way."""
    tight = Thresholds(failure_ratio=1.1, min_failing_devices=25, event_types=("crash",))
    first_day: Day = (1e6, 1e4 * 1.10, 4e6, 4e4 * 0.95)
    assert decide([first_day], tight).outcome is Outcome.INCONCLUSIVE
    rng = random.Random(7)
    for _ in range(50):
        days: list[Day] = [
            (1e6, 1e4 * (1 + rng.uniform(-0.1, 0.1)), 4e6, 4e4 * (1 + rng.uniform(-0.1, 0.1)))
            for _ in range(7)
        ]
        assert decide(days, tight).outcome is not Outcome.FAILING


def test_a_big_ratio_from_a_handful_of_devices_is_not_halted() -> None:
    """Three failing devices of five against three of five thousand: a thousand times the
    share, and still one tester's machines, not evidence (min-failing-devices)."""
    j = decide([(5, 3, 5000, 3)])
    assert j.outcome is Outcome.INCONCLUSIVE
    assert "from 3.0 failing devices, of the 25 needed to halt" in j.why


def test_versions_match_as_numbers() -> None:
    """The submission says 1.4.2, the Store's rows 1.4.2.0: one version. A package kept
    from the fallback (1.4.1) is not what is rolling out."""
    j = decide([(1000, 31, 9000, 36)] * 3, rolling_out=("1.4.2", "1.4.1"), fallback=("1.4.1",))
    assert j.outcome is Outcome.FAILING
    assert j.rolling_out.versions == ("1.4.2",)
    assert j.rolling_out.failing_devices == 93


def test_only_the_chosen_event_types_count_and_other_names_are_data() -> None:
    usage, failures = rows([(1000, 5, 9000, 45)] * 3)
    noise = [FailureRow(DAY0, NEW, kind, 900) for kind in ("memory", "jse", "<b>weird</b>")]
    with_memory = Thresholds(2.0, 25, ("crash", "memory"))
    j, k = (
        judge(
            readings(usage, failures + noise, 3),
            rolling_out_versions=(NEW,),
            fallback_versions=(OLD,),
            thresholds=thresholds,
        )
        for thresholds in (DEFAULT, with_memory)
    )
    assert j.rolling_out.failing_devices == 15
    assert k.rolling_out.failing_devices == 915


def test_missing_usage_names_the_version_without_it() -> None:
    usage, failures = rows([(1000, 5, 9000, 45)] * 2)
    only_new = [u for u in usage if u.version == NEW]
    j = judge(
        readings(only_new, failures, 2),
        rolling_out_versions=(NEW,),
        fallback_versions=(OLD,),
        thresholds=DEFAULT,
    )
    assert j.outcome is Outcome.INCONCLUSIVE
    assert j.why == f"no active devices measured for {OLD} yet: inconclusive"


def test_the_evidence_object_has_the_contracts_keys_and_is_plain_json() -> None:
    j = decide([(1000, 30, 9000, 0)] * 3)  # the fallback never failed: no finite ratio
    evidence = j.evidence(
        app_id="9NBLGGH4R315", flight_id=None, submission_id="1152921504621086517"
    )
    assert list(evidence) == [
        "app-id", "flight-id", "submission-id", "outcome", "rolling-out", "fallback",
        "period", "ratio", "ratio-bound", "failure-ratio", "min-failing-devices",
        "event-types", "why",
    ]  # fmt: skip
    assert evidence["outcome"] == "failing"
    assert evidence["ratio"] is None
    assert evidence["period"] == {"from": "2026-11-02", "to": "2026-11-04"}
    assert set(cast(dict[str, object], evidence["rolling-out"])) == {
        "versions", "active-devices", "failing-devices", "failing-share",
    }  # fmt: skip
    json.dumps(evidence, allow_nan=False)


def test_a_tiny_share_of_a_large_app_is_small_in_the_evidence_not_zero() -> None:
    """Three failing of ten million active device-days is a share of 3e-7: the evidence
    gives it as that number, as it gives every figure as a JSON number."""
    j = decide([(1e7, 3, 4e7, 2)])
    evidence = j.evidence(app_id="9NBLGGH4R315", flight_id=None, submission_id="1")
    rolling_out = cast(dict[str, object], evidence["rolling-out"])
    assert rolling_out["failing-share"] == 3e-7
    assert cast(dict[str, object], evidence["fallback"])["failing-share"] == 5e-8
    assert evidence["ratio"] == pytest.approx(6, rel=1e-5)
    for figure in ("active-devices", "failing-devices", "failing-share"):
        assert type(rolling_out[figure]) is float, figure
    assert type(evidence["ratio"]) is type(evidence["ratio-bound"]) is float


ORDER = {Outcome.HEALTHY: 0, Outcome.INCONCLUSIVE: 1, Outcome.FAILING: 2}
counts = st.floats(min_value=0, max_value=400, allow_nan=False)
actives = st.floats(min_value=1, max_value=50_000, allow_nan=False)
days_strategy = st.lists(st.tuples(actives, counts, actives, counts), min_size=1, max_size=8)
margins = st.sampled_from([1.1, 1.5, 2.0, 3.0])


@settings(max_examples=200, deadline=None)
@given(days_strategy, st.integers(min_value=0, max_value=7), counts, margins)
def test_more_failures_on_the_new_version_never_make_it_look_healthier(
    days: list[Day], which: int, more: float, margin: float
) -> None:
    """Any days: more failing devices on the rolling-out version never turn a halt, or an
    open question, into `healthy`. (When the rollout's share differs between days, the
    day-matched bound is conservative but not exactly monotone, so one more failure on a
    day when the new version had a far larger share can turn `failing` into
    `inconclusive`: docs/guard.md, "The limits, honestly".)"""
    thresholds = Thresholds(margin, 1, ("crash",))
    worse = list(days)
    i = which % len(days)
    worse[i] = (days[i][0], days[i][1] + more, days[i][2], days[i][3])
    before, after = decide(days, thresholds), decide(worse, thresholds)
    if before.outcome is not Outcome.HEALTHY:
        assert after.outcome is not Outcome.HEALTHY


same_share_days = st.lists(st.tuples(counts, counts), min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(same_share_days, st.tuples(actives, actives), st.integers(0, 7), counts, margins)
def test_with_the_same_rollout_share_every_day_more_failures_never_help(
    failing: list[tuple[float, float]],
    active: tuple[float, float],
    which: int,
    more: float,
    margin: float,
) -> None:
    """The same share of devices on the new version every day: more failing devices on it
    never lower the outcome (healthy < inconclusive < failing)."""
    thresholds = Thresholds(margin, 1, ("crash",))
    new_active, old_active = active
    days: list[Day] = [(new_active, n, old_active, f) for n, f in failing]
    worse = list(days)
    i = which % len(days)
    worse[i] = (new_active, days[i][1] + more, old_active, days[i][3])
    before, after = decide(days, thresholds), decide(worse, thresholds)
    assert ORDER[after.outcome] >= ORDER[before.outcome]


@settings(max_examples=200, deadline=None)
@given(days_strategy, margins)
def test_the_bound_brackets_the_observed_ratio(days: list[Day], margin: float) -> None:
    j = decide(days, Thresholds(margin, 1, ("crash",)))
    if j.ratio is not None and j.ratio_bound is not None:
        if j.ratio > margin:
            assert j.ratio_bound <= j.ratio * (1 + 1e-9)
        else:
            assert j.ratio_bound >= j.ratio * (1 - 1e-9)
    if j.outcome is Outcome.FAILING:
        assert j.ratio_bound is not None
        assert j.ratio_bound > margin
    if j.outcome is Outcome.HEALTHY:
        assert j.ratio_bound is not None
        assert j.ratio_bound <= margin


@settings(max_examples=150, deadline=None)
@given(days_strategy, margins)
def test_swapping_the_versions_never_halts_both_ways(days: list[Day], margin: float) -> None:
    """Symmetry: the same figures cannot show each version more than `margin` times worse
    than the other; the estimate of one is the inverse of the other's."""
    thresholds = Thresholds(margin, 1, ("crash",))
    swapped: list[Day] = [(c, d, a, b) for a, b, c, d in days]
    one, other = decide(days, thresholds), decide(swapped, thresholds)
    assert not (one.outcome is Outcome.FAILING and other.outcome is Outcome.FAILING)
    if one.ratio and other.ratio:
        assert one.ratio * other.ratio == pytest.approx(1.0, rel=1e-6)
