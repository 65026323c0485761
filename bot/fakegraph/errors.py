"""Graph-shaped error responses: the `{"error": {"code", "message", "innerError"}}` envelope."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from http import HTTPStatus

from bot.fakegraph.values import JsonObject

# Codes and messages as Graph sends them for the statuses the fake can produce or inject.
_STANDARD: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "Bad request."),
    401: ("InvalidAuthenticationToken", "Access token is empty."),
    403: ("Authorization_RequestDenied", "Insufficient privileges to complete the operation."),
    404: ("Request_ResourceNotFound", "Resource not found."),
    405: ("Request_BadRequest", "Specified HTTP method is not allowed for the request uri."),
    429: ("TooManyRequests", "Please retry again later."),
    500: ("ServiceUnavailable", "Service is temporarily unavailable. Please retry later."),
    502: ("ServiceUnavailable", "Service is temporarily unavailable. Please retry later."),
    503: ("ServiceUnavailable", "Service is temporarily unavailable. Please retry later."),
    504: ("ServiceUnavailable", "Service is temporarily unavailable. Please retry later."),
}


class GraphError(Exception):
    """Raised while handling a request; becomes a Graph error response with this status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
        details: list[JsonObject] | None = None,
    ):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})
        self.details = details  # Graph's optional error.details: [{"code", "target"}] (policy refusals)


def standard_error(status: int, headers: Mapping[str, str] | None = None) -> GraphError:
    """The error Graph typically sends for `status` (used by fault injection)."""
    code, message = _STANDARD.get(status, _fallback(status))
    return GraphError(status, code, message, headers)


def _fallback(status: int) -> tuple[str, str]:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown error"
    return phrase.replace(" ", ""), phrase + "."


def error_body(error: GraphError, *, request_id: str, client_request_id: str) -> JsonObject:
    # Graph's innerError carries the service date (no offset) and the two request ids.
    date = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    body: JsonObject = {"code": error.code, "message": error.message}
    if error.details:
        body["details"] = [dict(detail) for detail in error.details]
    body["innerError"] = {"date": date, "request-id": request_id, "client-request-id": client_request_id}
    return {"error": body}
