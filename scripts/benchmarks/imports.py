"""Where the start-up goes: `-X importtime` of the entrypoint, and against the same stack.

Two views. By top-level package, the self time of `import halt_rollout.main`. And,
from real runs on the common path (one target, a client secret, no targets file)
under `-X importtime`, every module the entrypoint imports that the same-stack
arm does not: the candidates for a lazy import.
"""

from __future__ import annotations

import re
import statistics
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from store_emulator.action_files import ENTRYPOINT

from .common import fresh_emulator, inputs_for, run_python
from .halt import GIVEN, SAME_STACK, as_the_runner
from .record import Group, ImportProfile, Unshared

RUNS = 7
PACKAGE = "halt_rollout"
ENTRYPOINT_IMPORTER = "entrypoint.py"
RUN_TIME = "(at run time)"
_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)$")


@dataclass
class Node:
    """One import as -X importtime prints it, with the imports made while it ran."""

    name: str
    own: float
    cumulative: float
    children: list[Node]

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.walk()


def import_tree(stderr: str) -> list[Node]:
    """The top-level imports of a -X importtime log, in the order they finished."""
    # A line is printed when its import finishes, indented two spaces per level: the
    # lines of an import's children come just before its own.
    pending: dict[int, list[Node]] = {}
    for line in stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if not match:
            continue
        own, cumulative, indent, name = match.groups()
        level = len(indent) // 2
        node = Node(name, int(own) / 1e6, int(cumulative) / 1e6, pending.pop(level + 1, []))
        pending.setdefault(level, []).append(node)
    return pending.get(0, [])


def modules(roots: Iterable[Node]) -> set[str]:
    return {node.name for root in roots for node in root.walk()}


def by_package(root: Node) -> dict[str, float]:
    """Self time of an import and all it pulled in, by top-level package."""
    groups: dict[str, float] = {}
    for node in root.walk():
        top = node.name.split(".")[0]
        key = "standard library" if top in sys.stdlib_module_names else top
        groups[key] = groups.get(key, 0.0) + node.own
    return groups


def _own(node: Node) -> bool:
    return node.name.split(".")[0] == PACKAGE


@dataclass(frozen=True)
class Beyond:
    """A module the same stack does not import, and what it costs beyond the same stack."""

    node: Node
    importer: str
    seconds: float  # foreign: its whole import; the package's own: itself + foreign imports


def beyond(node: Node, shared: set[str], *, into_own: bool) -> float:
    """Import time under `node` spent on modules the same stack does not import."""
    if node.name not in shared and not _own(node):
        return node.cumulative  # all it pulled in came with it
    own = node.own if node.name not in shared else 0.0
    return own + sum(
        beyond(child, shared, into_own=into_own)
        for child in node.children
        if into_own or not _own(child)
    )


def unshared(roots: list[Node], shared: set[str]) -> Iterator[Beyond]:
    """What `roots` import beyond `shared`, each with its importer.

    A foreign module counts once with all it pulled in; the package's own modules
    are looked into, and each counts itself and the foreign modules it pulled in.
    """
    main = next((n for n, root in enumerate(roots) if root.name == f"{PACKAGE}.main"), 0)

    def visit(node: Node, importer: str) -> Iterator[Beyond]:
        if node.name not in shared:
            yield Beyond(node, importer, beyond(node, shared, into_own=False))
        if _own(node) or node.name in shared:
            for child in node.children:
                yield from visit(child, node.name)

    for number, root in enumerate(roots):
        yield from visit(root, ENTRYPOINT_IMPORTER if number <= main else RUN_TIME)


def _groups_of_median_run() -> list[Group]:
    runs = []
    for _ in range(RUNS):
        completed = run_python("-X", "importtime", "-c", f"import {PACKAGE}.main")
        root = next(r for r in import_tree(completed.stderr) if r.name == f"{PACKAGE}.main")
        runs.append((root.cumulative, by_package(root)))
    runs.sort(key=lambda run: run[0])
    groups = sorted(runs[len(runs) // 2][1].items(), key=lambda g: g[1], reverse=True)
    return [Group(name=name, seconds=seconds) for name, seconds in groups]


def import_profile() -> ImportProfile:
    seen: dict[str, tuple[str, list[float], list[float], list[float]]] = {}
    totals = []
    entrypoint_modules = same_stack_modules = 0
    for _ in range(RUNS):
        trees = []
        for script in (SAME_STACK, ENTRYPOINT):
            with fresh_emulator() as emulator:
                run = as_the_runner(
                    script, emulator, inputs_for(emulator, **GIVEN), "-X", "importtime"
                )
            trees.append(import_tree(run.completed.stderr))
        same_stack, entrypoint = trees
        shared = modules(same_stack)
        entrypoint_modules, same_stack_modules = len(modules(entrypoint)), len(shared)
        totals.append(sum(beyond(root, shared, into_own=True) for root in entrypoint))
        for found in unshared(entrypoint, shared):
            _, extra, cumulative, own = seen.setdefault(
                found.node.name, (found.importer, [], [], [])
            )
            extra.append(found.seconds)
            cumulative.append(found.node.cumulative)
            own.append(found.node.own)
    entries = [
        Unshared(
            module=name,
            importer=importer,
            beyond=statistics.median(extra),
            cumulative=statistics.median(cumulative),
            own=statistics.median(own),
        )
        for name, (importer, extra, cumulative, own) in seen.items()
    ]
    entries.sort(key=lambda entry: entry["beyond"], reverse=True)
    return ImportProfile(
        runs=RUNS,
        groups=_groups_of_median_run(),
        unshared=entries,
        beyond=statistics.median(totals),
        entrypoint_modules=entrypoint_modules,
        same_stack_modules=same_stack_modules,
    )
