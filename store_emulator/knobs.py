"""Emulator-wide switches for behaviours the live Store has been seen to have (store-api.md,
"Seen in the field"). Change them on `Emulator.knobs` at any time; each request reads them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

CONTENT_TYPE_RULES = ("strict", "declared", "off")
ACCOUNT_SHAPES = ("gateway", "ingestion", "text")
ACCOUNT_MESSAGE = "Account service is experiencing issue. Please try again later."
LISTING_PAGES = ("real", "empty", "repeat", "recount")


@dataclass
class Knobs:
    """
    content_type_rule       what a Store POST or PUT must declare: "strict" (Content-Type
                            application/json, else 400 InvalidParameterValue, target mediaType),
                            "declared" (only a declared non-JSON type is refused), "off".
    integer_percentages     render a whole packageRolloutPercentage as an int (25, 0); a
                            rollout's own `integer_percentage` wins when set.
    account_not_added       every Store call with a valid token answers 503 "Account service is
                            experiencing issue…", as when the Entra app was never added to the
                            Partner Center account; forever, until switched off.
    account_not_added_shape the 503's body: "gateway" {"statusCode", "message"}, "ingestion"
                            (code ServiceUnavailable, the ingestion service's fields) or "text".
    foreign_apps            app IDs of another account: any call about them answers 403 with an
                            empty body.
    halt_seconds            how long the Store takes to apply a halt; meanwhile the rollout reads
                            as in progress and another halt of it gets 409 InvalidState.
    listflights_page_cap    the most flights one listflights page holds, whatever `top` asks
                            (None: no cap).
    listflights_next_link   send @nextLink when more flights remain (False: only totalCount
                            tells, as the documented example shows).
    listflights_empty_404   an app without flights answers listflights with 404 ("No package
                            flights were found", as the documented error table has it).
    halt_answered_at_once   with halt_seconds: the halt is answered at once with the rollout as it
                            still reads (in progress), and takes effect halt_seconds later.
    listflights_later_pages what pages after the first hold: "real"; "empty" (no flights, the
                            same totalCount and next link); "repeat" (the first page's flights
                            again); "recount" (real, but totalCount grows by one each page).
    """

    content_type_rule: str = "strict"
    integer_percentages: bool = False
    account_not_added: bool = False
    account_not_added_shape: str = "gateway"
    foreign_apps: set[str] = field(default_factory=set)
    halt_seconds: float = 0.0
    listflights_page_cap: int | None = None
    listflights_next_link: bool = True
    listflights_empty_404: bool = False
    halt_answered_at_once: bool = False
    listflights_later_pages: str = "real"

    def __setattr__(self, name: str, value: Any) -> None:
        # Checked on every assignment, so a typo'd value fails where it is set.
        if name == "content_type_rule" and value not in CONTENT_TYPE_RULES:
            raise ValueError(f"content_type_rule must be one of {CONTENT_TYPE_RULES}")
        if name == "account_not_added_shape" and value not in ACCOUNT_SHAPES:
            raise ValueError(f"account_not_added_shape must be one of {ACCOUNT_SHAPES}")
        if name == "listflights_later_pages" and value not in LISTING_PAGES:
            raise ValueError(f"listflights_later_pages must be one of {LISTING_PAGES}")
        if name == "listflights_page_cap" and value is not None and value < 1:
            raise ValueError("listflights_page_cap must be at least 1, or None")
        if name == "halt_seconds" and not (math.isfinite(value) and value >= 0):
            raise ValueError("halt_seconds must be a finite number of seconds, at least 0")
        if name not in {f.name for f in fields(Knobs)}:
            raise AttributeError(f"no knob {name!r}")
        super().__setattr__(name, value)

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["foreign_apps"] = sorted(self.foreign_apps)
        return data
