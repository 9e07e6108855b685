"""docs/benchmarks.md from a bench record: every median, ratio and verdict is made here."""

from __future__ import annotations

import json
from collections.abc import Iterator

from .evidence_render import evidence_section, false_halt_rows
from .figures import (
    IMPORT_LABELS,
    LABELS,
    MB,
    UNSHARED_SHOWN,
    Phase,
    median,
    ms,
    ms1,
    spread,
    verdict,
)
from .record import Record, Sample, Size
from .summary_rows import (
    guard_rows,
    install_rows,
    one_target,
    retry_after_rows,
    round_trip_rows,
    several_rows,
    time_to_halt_rows,
)


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
    one = one_target(several)
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
