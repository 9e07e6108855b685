"""The version guard (`expected-version`): halt only a submission whose NEWEST package
is the version the pipeline shipped.

A newer submission often keeps an older package beside its new one (for older
devices, or another architecture at an older version): carrying the expected
version is not enough, it must be the newest. Versions compare as numbers, missing
parts counting as 0 (`1.4.2` is `1.4.2.0`, as the Store writes it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import NothingToHalt
from .shapes import version_key

if TYPE_CHECKING:  # only their types: the input checks use this module before any network
    from .retry import Log
    from .store_resources import SubmissionRef

TITLE = "Version guard: not the expected version"


class NotTheExpectedVersion(NothingToHalt):
    """The submission's newest package is not expected-version: nothing is sent."""

    title = TITLE


def same_version(one: str | None, other: str | None) -> bool:
    """Whether two expected-versions ask the same thing (`1.4.2` is `1.4.2.0`)."""
    if one is None or other is None:
        return one is other
    return one == other or (version_key(one) or one) == (version_key(other) or other)


def newest(versions: tuple[str, ...]) -> str | None:
    """The newest of the packages' versions; None when there is none, or when one of them
    is not a version (then no order can be trusted)."""
    keys = [version_key(version) for version in versions]
    if not keys or any(key is None for key in keys):
        return None
    ranked = [(key, version) for key, version in zip(keys, versions, strict=True) if key]
    return max(ranked)[1]


def matches(versions: tuple[str, ...], expected: str) -> bool:
    """Whether the submission's newest package is the expected version. Versions the Store
    writes otherwise than as numbers match only when every package carries exactly it."""
    top = newest(versions)
    if top is None:
        return bool(versions) and set(versions) == {expected}
    return version_key(top) == version_key(expected)


def check_version_guard(
    ref: SubmissionRef, versions: tuple[str, ...], expected: str, log: Log
) -> None:
    """Pass, or raise NotTheExpectedVersion naming the versions found."""
    found = ", ".join(versions)
    if matches(versions, expected):
        log(f"version guard passed: its newest package is {expected} (packages: {found})")
        return
    if not versions:
        carried = "it has no package with a version"
    elif (top := newest(versions)) is not None:
        beside = f" (beside {found})" if len(versions) > 1 else ""
        carried = f"its newest package is {top}{beside}"
    else:
        carried = f"its packages carry {found}"
    raise NotTheExpectedVersion(
        f"Nothing was sent: the newest package of {ref.describe()} is not version {expected} "
        f"(expected-version); {carried}. Another submission than the one meant may be rolling "
        "out: check it in Partner Center, and run again with its version if it is the one to "
        "halt."
    )
