"""docs/benchmarks.md from a bench record: every median, ratio and verdict is made here."""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterator, Sequence
from typing import Literal

from .evidence_render import evidence_section, false_halt_rows
from .record import Record, Sample, Several, Size

MB = 1_000_000
SAME_STACK_TARGET = 1.1  # the entrypoint's time over the same-stack script's, at most
UNSHARED_SHOWN = 15
LABELS = {
    "floor": "floor (`requests`, 2 POSTs)",
    "same-stack": "same stack (azure-identity + `requests` halt + GITHUB_OUTPUT)",
    "given": "entrypoint, submission given",
    "resolved": "entrypoint, submission resolved",
}
IMPORT_LABELS = {
    "sys": "the interpreter alone",
    "requests": "the floor's imports",
    "requests, azure.identity": "the same stack's",
    "halt_rollout.main": "the entrypoint's",
}

Row = tuple[str, str, str, bool | None, str]
Phase = Literal["seconds", "startup", "http", "tail", "cpu"]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def ms1(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float]) -> str:
    return f"{ms(min(values))}–{ms(max(values))}"


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "**no**")


class Arms:
    """Medians of the time-to-halt arms, and their differences."""

    def __init__(self, arms: dict[str, list[Sample]]) -> None:
        self.arms = arms

    def of(self, arm: str, phase: Phase = "seconds") -> float:
        return median([s[phase] for s in self.arms[arm]])

    def cpu(self, arm: str) -> float:
        return self.of(arm, "cpu")

    def gap(self, arm: str, base: str, phase: Phase) -> float:
        return self.of(arm, phase) - self.of(base, phase)

    def requests(self, arm: str) -> int:
        return self.arms[arm][0]["requests"]

    def where(self, arm: str, base: str) -> str:
        """Where an arm's extra time goes, phase by phase, against another arm."""
        extra = self.requests(arm) - self.requests(base)
        trips = f"{extra} more round trip{'s' if extra != 1 else ''}"
        total = self.gap(arm, base, "seconds")
        return (
            f"{ms(abs(total))} {'more' if total >= 0 else 'less'} than the "
            f"{base.replace('-', ' ')} (each phase's difference, a minus for less): "
            f"{ms(self.gap(arm, base, 'startup'))} before the first request, "
            f"{ms(self.gap(arm, base, 'http'))} in {trips}, "
            f"{ms(self.gap(arm, base, 'tail'))} after the halt"
        )


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


def _one_target(several: Several) -> float:
    return median(next(t for t in several["targets"] if t["count"] == 1)["seconds"])


def several_rows(record: Record) -> list[Row]:
    several = record["several"]
    one = _one_target(several)
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
# PyNaCl, about 8 MB that the action never imports (README, "Maintaining the lock").
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


def header(record: Record) -> list[str]:
    m = record["machine"]
    return [
        "# Benchmarks",
        "",
        "Measured by `make bench` (`scripts/bench.py`) against the local Store emulator "
        "(loopback HTTPS; no network latency, no throttling unless a fault asks for it). "
        "Absolute times are this machine's; the ratios are what carry over. The "
        "measurements are kept as plain data in `.bench/record.json`; "
        "`make bench-render` writes this page from it again.",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores ({m['system']})",
        f"- Python: {m['python']} (`{m['interpreter']}`)",
        f"- Date: {m['date']}",
        f"- Commit: `{m['commit']}`"
        + (" with uncommitted changes to the measured code" if m["dirty"] else ""),
        f"- `make bench` took {m['bench_seconds']:.0f} s; 1-minute load average "
        f"{m['load_start']:.2f} at the start, {m['load_end']:.2f} at the end "
        f"({m['cores']} cores: above 1 or so, other work on the machine adds noise to "
        "wall times; CPU times are far less disturbed)",
    ]


def summary(record: Record) -> list[str]:
    rows = [
        *time_to_halt_rows(record),
        *round_trip_rows(record),
        *retry_after_rows(record),
        *guard_rows(record),
        *several_rows(record),
        *install_rows(record),
        *false_halt_rows(record["evidence"]),
    ]
    return [
        "| what | measured | target | met | note |",
        "| --- | --- | --- | --- | --- |",
        *(f"| {w} | {m} | {t} | {verdict(ok)} | {n} |" for w, m, t, ok, n in rows),
    ]


def time_to_halt_section(record: Record) -> Iterator[str]:
    tth = record["time_to_halt"]
    yield from [
        "## Time-to-halt",
        "",
        f"{tth['rounds']} runs of each, interleaved (the order rotates every round, after "
        "one discarded warm-up round), each in a fresh emulator. Every run is a new process, "
        "so interpreter start-up counts for all. The *floor* is a `requests` script that "
        "sends only the token POST and the halt POST over one connection "
        "(`scripts/benchmarks/arms/floor.py`): what any Python implementation must at "
        "least do. The *same stack* (`scripts/benchmarks/arms/same_stack.py`) does what the "
        "action does on its common path on the action's own libraries and nothing more: "
        "azure-identity's `ClientSecretCredential` (OpenID configuration and token "
        "requests), one `requests` halt POST with `Content-Type: application/json`, and "
        "`result=halted` written to `GITHUB_OUTPUT`, under the runner's environment. The "
        "entrypoint runs under the runner's environment too "
        "(`store_emulator.actions_runner.run_action`); it also reads the rollout before "
        "halting, masks secrets, and writes every output and a job summary.",
        "",
        "Phases come from the emulator's clock (same process as the benchmark): start-up is "
        "process start → first request received; HTTP is first request → halt request "
        "received; the rest is the halt's answer, writing outputs, and exit. CPU time is the "
        "process's user + system time.",
        "",
        "| arm | requests | median | range | start-up | HTTP | halt → exit | CPU time |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, samples in tth["arms"].items():

        def of(phase: Phase, samples: list[Sample] = samples) -> str:
            return ms(median([s[phase] for s in samples]))

        yield (
            f"| {LABELS[name]} | {samples[0]['requests']} | {of('seconds')}"
            f" | {spread([s['seconds'] for s in samples])} | {of('startup')} | {of('http')}"
            f" | {of('tail')} | {of('cpu')} |"
        )
    yield from [
        "",
        "Where the time goes: a new process that only imports (then exits, tearing its "
        f"modules down), run in the same rotation as the arms above (medians of "
        f"{tth['rounds']}):",
        "",
        "| process | wall | CPU time | modules loaded |",
        "| --- | --- | --- | --- |",
    ]
    for name, runs in tth["imports"].items():
        loaded = "" if name == "sys" else str(runs["loaded"])
        yield (
            f"| `python -c 'import {runs['modules']}'` ({IMPORT_LABELS[name]}) "
            f"| {ms(median(runs['wall']))} | {ms(median(runs['cpu']))} | {loaded} |"
        )


def imports_section(record: Record) -> Iterator[str]:
    imports = record["imports"]
    yield from [
        "",
        "Import time of `halt_rollout.main` by top-level package (`-X importtime` self time, "
        "median run; the tool adds overhead of its own, so the sum exceeds the wall time above):",
        "",
        "| package | self time |",
        "| --- | --- |",
        *(
            f"| {g['name']} | {ms(g['seconds'])} |"
            for g in imports["groups"][:8]
            if g["seconds"] >= 0.001
        ),
        "",
        "### What the entrypoint imports beyond the same stack",
        "",
        f"From {imports['runs']} runs of each on the common path (one target, the submission "
        "given, a client secret, no targets file) under `-X importtime`: every module the "
        f"entrypoint imported ({imports['entrypoint_modules']} in all) that the same-stack "
        f"script did not ({imports['same_stack_modules']}), {ms(imports['beyond'])} in all, "
        "largest first. *Beyond the same stack* is, for a module from outside "
        "`halt_rollout`, its whole import with everything it pulled in; for one of "
        "`halt_rollout`'s own, its self time plus the outside modules it pulled in (those "
        "are also listed on their own). *Imported by* is the module whose import pulled it "
        "in (*at run time*: a call, after start-up). Times are medians, inflated by the "
        "tool; they show where to look, not what a lazy import saves.",
        "",
        "| module | imported by | beyond the same stack | cumulative | self |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| `{u['module']}` | {u['importer']} | {ms1(u['beyond'])} "
            f"| {ms1(u['cumulative'])} | {ms1(u['own'])} |"
            for u in imports["unshared"][:UNSHARED_SHOWN]
        ),
    ]


def retry_after_section(record: Record) -> list[str]:
    return [
        "",
        "## Retry-After on the halt",
        "",
        "One 429 (`Retry-After: N`, gateway body) on the first halt POST; the time is between "
        "the two halt requests as the emulator received them.",
        "",
        "| Retry-After | 429 → halt landed | whole run |",
        "| --- | --- | --- |",
        *(
            f"| {th['retry_after']} s | {th['waited']:.2f} s | {th['run_seconds']:.2f} s |"
            for th in record["retry_after"]
        ),
    ]


def several_section(record: Record) -> list[str]:
    several = record["several"]
    one = _one_target(several)
    most = max(several["targets"], key=lambda t: t["count"])
    return [
        "",
        "## Several targets",
        "",
        f"Medians of {several['rounds']} runs; each target is an app whose last published "
        "submission is resolved, read and halted (3 requests), after one sign-in. The emulator "
        "does not throttle. Against the real Store's reported ~20 requests a minute per "
        f"tenant, the {most['store_requests']} Store requests of {most['count']} targets would "
        f"take about {most['store_requests'] / 20 * 60:.0f} s of throttled waits and retries, "
        "against a default timeout-seconds of 180: a long targets list may need a larger "
        "timeout-seconds.",
        "",
        "| targets | requests | wall (median) | HTTP phase (median) | × one target |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| {t['count']} | {t['requests']} | {median(t['seconds']):.2f} s "
            f"| {ms(median(t['http']))} | ×{median(t['seconds']) / one:.2f} |"
            for t in several["targets"]
        ),
    ]


def size_section(size: Size) -> list[str]:
    if size["error"]:
        return ["", "## Installed size", "", f"Not measured: {size['error']}"]
    return [
        "",
        "## Installed size",
        "",
        "`pip install --no-deps --require-hashes -r requirements.txt` into a fresh venv "
        f"({size['seconds']:.0f} s); site-packages without {', '.join(size['excluded'])} (the "
        "venv's own tools). Per distribution, from each RECORD:",
        "",
        "| distribution | MB |",
        "| --- | --- |",
        *(f"| {d['name']} | {d['bytes'] / MB:.2f} |" for d in size["by_distribution"]),
        f"| **total** | **{size['total'] / MB:.2f}** |",
    ]


def render(record: Record) -> str:
    out = [*header(record), "", *summary(record), ""]
    out += [*time_to_halt_section(record), *imports_section(record)]
    out += [*retry_after_section(record), *several_section(record), *size_section(record["size"])]
    out += evidence_section(record["evidence"])
    image = record["image"]
    if image is not None:
        out += ["", "## Image", "", f"From `{image['path']}`:", "", "```json"]
        out += [json.dumps(image["data"], indent=2), "```"]
    return "\n".join(out) + "\n"
