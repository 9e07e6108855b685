"""The rows of docs/benchmarks.md's summary table: each measure, its target and its verdict."""

from __future__ import annotations

from collections.abc import Sequence

from .figures import (
    MB,
    SAME_STACK_TARGET,
    Arms,
    Row,
    median,
    ms,
)
from .record import Record, Several


def time_to_halt_rows(record: Record) -> list[Row]:
    arms = Arms(record["time_to_halt"]["arms"])
    loads = record["time_to_halt"]["imports"]
    imports = record["imports"]
    given, same, floor = arms.of("given"), arms.of("same-stack"), arms.of("floor")
    biggest = [f"`{u['module']}` {ms(u['beyond'])}" for u in imports["unshared"][:6]]
    return [
        (
            "Time-to-halt, entrypoint against the same stack (submission given)",
            f"{ms(given)} median vs same stack {ms(same)}: **×{given / same:.2f}** "
            f"(CPU time ×{arms.cpu('given') / arms.cpu('same-stack'):.2f})",
            f"≤ ×{SAME_STACK_TARGET}",
            given / same <= SAME_STACK_TARGET,
            f"{arms.where('given', 'same-stack')}. On this path the entrypoint imports "
            f"{imports['entrypoint_modules']} modules, the same stack "
            f"{imports['same_stack_modules']}; the others cost {ms(imports['beyond'])} under "
            f"`-X importtime`, largest first: {', '.join(biggest)}",
        ),
        (
            "Time-to-halt, entrypoint as the runner runs it (submission given)",
            f"{ms(given)} median vs floor {ms(floor)}: **×{given / floor:.1f}** "
            f"(CPU time ×{arms.cpu('given') / arms.cpu('floor'):.1f})",
            "— (compared with the floor)",
            None,
            f"{arms.where('given', 'floor')}. The cause is what it loads: "
            f"{loads['halt_rollout.main']['loaded']} modules against the floor's "
            f"{loads['requests']['loaded']} (azure-identity, MSAL, cryptography, PyYAML). A "
            "process that only imports `halt_rollout.main` and exits costs "
            f"{ms(median(loads['halt_rollout.main']['cpu']) - median(loads['requests']['cpu']))} "
            "more CPU than one that imports `requests`; the arms' CPU gap is "
            f"{ms(arms.cpu('given') - arms.cpu('floor'))}. The HTTP itself is not where the "
            "time goes",
        ),
        (
            "Time-to-halt, the same stack against the floor",
            f"{ms(same)} median vs floor {ms(floor)}: ×{same / floor:.1f} "
            f"(CPU time ×{arms.cpu('same-stack') / arms.cpu('floor'):.1f})",
            "—",
            None,
            f"{arms.where('same-stack', 'floor')}: azure-identity's share, which any "
            "implementation on this stack pays",
        ),
        (
            "Time-to-halt, submission resolved (app-id only)",
            f"{ms(arms.of('resolved'))} median",
            "—",
            None,
            "one more request (GET the app) than with the submission given",
        ),
    ]


def round_trip_rows(record: Record) -> list[Row]:
    trips = record["round_trips"]
    given = len(trips["given submission"])
    return [
        (
            "HTTP round trips, submission given",
            str(given),
            "≤ 4",
            given <= 4,
            ", ".join(trips["given submission"]),
        ),
        *(
            (f"HTTP round trips, {case}", str(len(trips[case])), "—", None, ", ".join(trips[case]))
            for case in ("resolved submission", "flight (resolved)", "given, version guard")
        ),
    ]


def guard_rows(record: Record) -> list[Row]:
    guard = record["guard"]
    latency = guard["store_latency"]
    extra = median(guard["guarded"]) - median(guard["unguarded"])
    return [
        (
            f"Version guard: the halt's HTTP time, guarded − unguarded (Store reads "
            f"{ms(latency)} each)",
            f"{extra * 1000:+.0f} ms",
            f"< {ms(latency / 2)}",
            extra < latency / 2,
            f"medians of {guard['rounds']} interleaved runs: {ms(median(guard['unguarded']))} "
            f"unguarded, {ms(median(guard['guarded']))} guarded; the submission is read next "
            "to the rollout, so one more request but no more round trips before the halt",
        )
    ]


def retry_after_rows(record: Record) -> list[Row]:
    return [
        (
            f"429 with Retry-After: {th['retry_after']} on the halt: 429 → halt landed",
            f"{th['waited']:.2f} s",
            f"≤ {th['retry_after'] + 1} s",
            th["waited"] <= th["retry_after"] + 1,
            "waits Retry-After plus up to 0.25 s of jitter"
            + ("; the wait was logged as it started" if th["logged"] else "; **wait not logged**"),
        )
        for th in record["retry_after"]
    ]


def one_target(several: Several) -> float:
    return median(next(t for t in several["targets"] if t["count"] == 1)["seconds"])


def several_rows(record: Record) -> list[Row]:
    several = record["several"]
    one = one_target(several)
    most = max(t["count"] for t in several["targets"])
    rows: list[Row] = []
    for t in several["targets"]:
        if t["count"] == 1:
            continue
        r = median(t["seconds"]) / one
        target, ok = ("≤ 3× one target's", r <= 3) if t["count"] == most else ("—", None)
        rows.append(
            (
                f"{t['count']} targets in one run (targets file)",
                f"{median(t['seconds']):.2f} s vs {one:.2f} s for one: ×{r:.2f}",
                target,
                ok,
                f"{t['requests']} requests, {several['parallel']} targets at a time",
            )
        )
    return rows


# The runtime's installed size. 32 MB until the lock had to install as written (a lock
# that Dependabot's updates keep whole): actions-toolkit declares PyGithub, which brings
# PyNaCl, about 8 MB that the action never imports (docs/development.md, "Maintaining the lock").
SIZE_TARGET_MB = 40


def install_rows(record: Record) -> list[Row]:
    size, image = record["size"], record["image"]
    rows: list[Row] = []
    if size["error"]:
        rows.append(
            (
                "Installed size of the runtime dependencies",
                "not measured",
                f"≤ {SIZE_TARGET_MB} MB",
                None,
                "",
            )
        )
    else:
        top = ", ".join(f"{d['name']} {d['bytes'] / MB:.1f}" for d in size["by_distribution"][:4])
        rows.append(
            (
                "Installed size of the runtime dependencies",
                f"{size['total'] / MB:.1f} MB",
                f"≤ {SIZE_TARGET_MB} MB",
                size["total"] <= SIZE_TARGET_MB * MB,
                f"site-packages of a fresh venv minus {', '.join(size['excluded'])}; .pyc "
                f"included (as in the image); largest: {top} MB. PyGithub and PyNaCl, which "
                "actions-toolkit declares and the action never imports, are in it: the lock "
                "installs as written, so that Dependabot's updates keep it whole",
            )
        )
    if image is None:
        rows.append(
            (
                "Image size and build time",
                "not measured in this run: run `make container-test`",
                "—",
                None,
                "no container-test record found under .container/",
            )
        )
    else:
        data = image["data"]
        size_text = _value(data, ("image_size", "size", "image_size_bytes"), "size")
        build_text = _value(data, ("build_seconds", "build_time", "build"), "build")
        rows.append(
            (
                "Image size and build time",
                f"{size_text}; built in {build_text} s",
                "—",
                None,
                f"from {image['path']}",
            )
        )
    return rows


def _value(data: dict[str, object], preferred: Sequence[str], part: str) -> str:
    """The first of the preferred keys present, else the first key containing `part`."""
    for key in preferred:
        if key in data:
            return str(data[key])
    return next((str(v) for k, v in data.items() if part in k and "base" not in k), "?")
