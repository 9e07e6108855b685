"""How the Store's answers are read: the JSON of a success, or a failure that says what
the Store answered (the HTTP status, its `code` and `message`, and the `MS-CorrelationId`
that Microsoft support asks for) and what to do about it."""

from __future__ import annotations

import html
import json
import re
from typing import Any
from urllib.parse import urlsplit

import requests

from .errors import StoreError, one_line
from .network_words import tidy
from .policy import ACCOUNT_SERVICE_PATIENCE_SECONDS, RETRIED_STATUSES
from .retry import TransientError, parse_retry_after, retry_hint_in_message
from .shapes import case_hint
from .store_resources import field

PARTNER_CENTER_ROLE_HINT = (
    "Check that the Entra application (client-id) is added to the Partner Center account "
    "(Account settings → User management → Microsoft Entra applications) with the Manager "
    "role, and that tenant-id is that account's tenant."
)


FOREIGN_APP_HINT = "A 403 can also mean that the app ID is not one of this account's apps."


ACCOUNT_SERVICE_HINT = (
    "A 503 about the account service is the Store's answer when the Entra application was "
    "never added to the Partner Center account; waiting does not clear it. "
    + PARTNER_CENTER_ROLE_HINT
)


# An error `code` that may be shown even where the body may not: an identifier.
# The app ID in a request's path, for the 404's hint about case.
_APP_IN_PATH = re.compile(r"/applications/([A-Za-z0-9]+)")
_ERROR_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.]{0,63}")


# Only the start of an error body is looked at: enough for any real message, and it
# keeps parsing time independent of what a server sends.
_ERROR_TEXT_CHARS = 8192


HALT_CONFLICT_HINT = (
    "The Store refuses a halt when the submission is not in a haltable state (it must be "
    "published with its rollout in progress), when the submission does not belong to this "
    "app, or when the app uses a Partner Center feature the API does not support (mandatory "
    "updates, Store-managed consumable add-ons). Check the submission in Partner Center; "
    "halt it there if the API cannot."
)


def read_answer(response: requests.Response, what: str, *, quote_body: bool) -> Any:
    """The JSON of a 2xx answer (None when unusable: the callers say what was missing), or
    the failure that says what the Store answered: a TransientError when worth retrying."""
    status = response.status_code
    code, message = _error_fields(response)
    correlation_id = response.headers.get("MS-CorrelationId")
    if 200 <= status < 300:
        return _json(response.content)  # None when unusable: the callers say what was missing
    # Still read for the waits it asks for; only ever shown when it may be quoted.
    hint = message
    if not quote_body:
        code = code if code and _ERROR_CODE.fullmatch(code) else None
        message = None
    details = _details(status, code, message, correlation_id)

    def failure(title: str, text: str) -> StoreError:
        return StoreError(
            f"Could not {what}: {text} ({details}).",
            title=title,
            status=status,
            code=code,
            store_message=message,
            correlation_id=correlation_id,
        )

    if status in RETRIED_STATUSES:
        if status == 429:
            text = "the Store's rate limit was hit and did not clear in time"
        else:
            text = f"the Store kept failing with HTTP {status}"
        account_service = status == 503 and "account service" in (hint or "").lower()
        if account_service:
            text = f"the Store's account service kept failing. {ACCOUNT_SERVICE_HINT}"
        raise TransientError(
            f"{status} from the Store",
            failure(f"Store answered HTTP {status}", text.rstrip(".")),
            retry_after=_retry_after(response, hint),
            # A throttled request was never processed; a gateway error may have been.
            maybe_applied=status != 429,
            patience=ACCOUNT_SERVICE_PATIENCE_SECONDS if account_service else None,
        )
    if status in (401, 403):
        hint = PARTNER_CENTER_ROLE_HINT + (f" {FOREIGN_APP_HINT}" if status == 403 else "")
        raise failure(
            f"Not allowed by the Store (HTTP {status})",
            f"sign-in or permission problem. {hint}".rstrip("."),
        )
    if status == 404:
        asked = _APP_IN_PATH.search(urlsplit(response.url or "").path)
        raise failure(
            "Not found in the Store (HTTP 404)",
            "the app, flight or submission was not found. Check the IDs in Partner Center "
            "(the app's Store ID is under Product identity)"
            + (case_hint(asked.group(1)) if asked else ""),
        )
    if status == 409:
        raise failure("Halt refused by the Store (HTTP 409)", HALT_CONFLICT_HINT.rstrip("."))
    raise failure(f"Store answered HTTP {status}", "the Store refused the request")


def _retry_after(response: requests.Response, message: str | None) -> float | None:
    seconds = parse_retry_after(response.headers.get("Retry-After"))
    return seconds if seconds is not None else retry_hint_in_message(message)


def _json(content: bytes) -> Any:
    """The body as JSON, or None; however deep a hostile body nests, never a crash."""
    try:
        return json.loads(content)
    except (ValueError, RecursionError):
        return None


def _error_fields(response: requests.Response) -> tuple[str | None, str | None]:
    """The Store's `code` and `message`, from an ingestion, gateway or any other body."""
    if 200 <= response.status_code < 300:
        return None, None
    content = response.content
    text = content[:_ERROR_TEXT_CHARS].decode("utf-8", "replace").strip()
    if not text:
        return None, None
    body = _json(content) if len(content) <= _ERROR_TEXT_CHARS * 8 else None
    if isinstance(body, dict):
        code = field(body, "code") or field(body, "error")
        message = field(body, "message") or field(body, "error_description")
        if isinstance(message, dict):  # some gateways nest {"error": {"code", "message"}}
            message = field(message, "message")
        if isinstance(code, dict):
            code = field(code, "code")
        # The analytics API's 400 says what was wrong only in innererror.data.
        inner = field(body, "innererror")
        data = field(inner, "data") if isinstance(inner, dict) else None
        if isinstance(data, list) and isinstance(message, str):
            said = "; ".join(item for item in data[:5] if isinstance(item, str))
            message = f"{message} ({said})" if said else message
        return (
            one_line(str(code)[:_ERROR_TEXT_CHARS], 100) if code else None,
            one_line(str(message)[:_ERROR_TEXT_CHARS]) if message else None,
        )
    if text.startswith("<"):
        return None, f"an HTML page{': ' + title if (title := _html_title(text)) else ''}"
    return None, one_line(text)


def _html_title(page: str) -> str:
    """The <title> of an HTML page, found in one pass (no regular expression to backtrack)."""
    lower = page.lower()
    start = lower.find("<title")
    opened = lower.find(">", start) if start >= 0 else -1
    end = lower.find("</title>", opened) if opened >= 0 else -1
    if end < 0:
        return ""
    return one_line(html.unescape(page[opened + 1 : end]), 200)


def _details(status: int, code: str | None, message: str | None, correlation: str | None) -> str:
    parts = [f"HTTP {status}"]
    if code or message:
        parts.append(": ".join(p for p in (code, message) if p))
    parts.append(f"MS-CorrelationId: {correlation or 'none sent'}")
    return ", ".join(parts)


def first_line(error: Exception) -> str:
    return one_line(tidy(str(error)), limit=200)
