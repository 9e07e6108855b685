"""The response value every router returns, and JSON helpers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .bodies import JSON_TYPE, Stream


@dataclass
class Response:
    """An HTTP answer before the server adds Content-Length and MS-CorrelationId.

    With a `stream`, that is the body (sent as it is generated) and `body` is ignored.
    """

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    stream: Stream | None = None


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status,
        json.dumps(payload).encode(),
        {"Content-Type": JSON_TYPE, **(headers or {})},
    )
