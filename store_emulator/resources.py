"""What the Store keeps and how it shows it: rollout states, apps' and flights' listings,
packages, upload URLs and the ingestion service's errors."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

NOT_STARTED = "PackageRolloutNotStarted"


IN_PROGRESS = "PackageRolloutInProgress"


COMPLETE = "PackageRolloutComplete"


STOPPED = "PackageRolloutStopped"


DEFAULT_FALLBACK = "1212922684621243058"


DEFAULT_GROUP_IDS = ("1152921504606962205",)


DEFAULT_RANK = "Non-flighted submission"


# Where a submission's packages are uploaded: a blob with a signed query (Microsoft's example).
UPLOAD_BLOB = "https://productingestionbin1.blob.core.windows.net/ingestion/"


ARCHITECTURES = ("x64", "x86", "ARM64", "ARM")


class StoreError(Exception):
    """An ingestion-service error: HTTP status plus the body fields it sends."""

    def __init__(self, status: int, code: str, message: str, target: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.target = status, code, message, target

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "data": [],
            "details": [],
            "message": self.message,
            "source": "Ingestion Api",
            "target": self.target,
        }


@dataclass
class Rollout:
    is_package_rollout: bool = False
    percentage: float = 0.0
    status: str = NOT_STARTED
    fallback: str = "0"
    integer: bool | None = None  # None: the emulator-wide knob decides
    halting: bool = False  # a halt is being applied (Knobs.halt_seconds)

    def to_json(self, integer_default: bool = False) -> dict[str, Any]:
        integer = integer_default if self.integer is None else self.integer
        percentage: float | int = self.percentage
        if integer and self.percentage.is_integer():
            percentage = int(self.percentage)
        return {
            "isPackageRollout": self.is_package_rollout,
            "packageRolloutPercentage": percentage,
            "packageRolloutStatus": self.status,
            "fallbackSubmissionId": self.fallback,
        }


@dataclass
class Listing:
    """An app or a flight: a name, its two submission pointers and what else it shows."""

    name: str
    last_published: str | None
    pending: str | None
    null_style: bool  # True: a missing submission is `null`; False: the key is absent
    extra: dict[str, Any] = field(default_factory=dict)
    group_ids: tuple[str, ...] = DEFAULT_GROUP_IDS
    rank_higher_than: str = DEFAULT_RANK


# A rollout lives on (app, flight or None, submission).
Key = tuple[str, str | None, str]


def uuid_of(text: str) -> str:
    """A stable GUID-shaped name for `text` (a blob's name)."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def package_json(submission_id: str, index: int, version: str | None) -> dict[str, Any]:
    """One package as the submission resource lists it; without a version, not uploaded."""
    architecture = ARCHITECTURES[index % len(ARCHITECTURES)]
    package: dict[str, Any] = {
        "fileName": f"contoso_app_{architecture.lower()}.msixupload",
        "fileStatus": "Uploaded" if version is not None else "PendingUpload",
        "id": str(int(submission_id) + 7 + index) if submission_id.isdigit() else str(index),
        "architecture": architecture,
        "targetPlatforms": [
            {"platform": "Windows.Desktop", "minVersion": None, "maxVersion": None}
        ],
        "languages": ["en-us"],
        "capabilities": ["runFullTrust", "internetClient"],
        "minimumDirectXVersion": "None",
        "minimumSystemRam": "None",
        "targetDeviceFamilies": ["Windows.Desktop min version 10.0.17763.0"],
    }
    if version is not None:
        package["version"] = version
    return package


def invalid_state(submission_id: str, why: str) -> StoreError:
    return StoreError(
        409,
        "InvalidState",
        f"The package rollout of submission {submission_id} cannot be halted: {why}. "
        f"Only a published submission whose rollout is {IN_PROGRESS} can be halted.",
        "submission",
    )


def pointer(
    resource: dict[str, Any], key: str, listing: Listing, submission: str | None, base: str
) -> None:
    if submission is not None:
        resource[key] = {"id": submission, "resourceLocation": f"{base}/{submission}"}
    elif listing.null_style:
        resource[key] = None
