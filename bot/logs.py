"""Structured JSON logs on stderr, each line tagged with the request id and platform it belongs to."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import traceback
import uuid
from datetime import UTC, datetime

from handlers.parse import transcript_text

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
platform: contextvars.ContextVar[str | None] = contextvars.ContextVar("platform", default=None)

# A request id a proxy or client sends is kept when it is a short plain token, so one id follows a
# request through both logs; anything else would let a stranger write what it likes into every line.
_PLAIN_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def request_id_from(header: str | None) -> str:
    """The client's `X-Request-Id` if it is a plain token of up to 64 characters, else a new id."""
    if header is not None and _PLAIN_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex[:16]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": record.levelname.lower(),
            "logger": record.name,
            # Our own lines never carry pasted text; a library's debug line might: cut any secret.
            "message": transcript_text(record.getMessage()),
            "request_id": request_id.get(),
            "platform": platform.get(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            # Type and stack, not the message: exception texts from libraries may quote request bodies.
            entry["error"] = record.exc_info[0].__name__
            entry["stack"] = "".join(traceback.format_tb(record.exc_info[2]))
        return json.dumps({k: v for k, v in entry.items() if v is not None}, ensure_ascii=False)


# Libraries that log every HTTP request at INFO: one line per Graph round trip drowned the bot's own
# lines and cost about 2% of CPU under load. Their warnings still show; DEBUG shows everything.
# saq: a line per job enqueued, taken and finished; azure-core's request logger does the same for Key
# Vault and the token endpoint (several lines each).
CHATTY_LOGGERS = ("httpx", "httpcore", "saq", "azure.core.pipeline.policies.http_logging_policy")


class _JobsWithoutPayload(logging.Filter):
    """The job queue library logs a job with its whole payload when the job fails. A payload holds
    no secret value, but it may hold a Slack response URL, which can post into a channel: log the
    job's function and key only."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_job_label(arg) for arg in record.args)
        return True


def _job_label(value: object) -> object:
    function, key = getattr(value, "function", None), getattr(value, "key", None)
    if isinstance(function, str) and isinstance(key, str) and hasattr(value, "kwargs"):
        return f"job {function} key={key}"
    return value


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    debugging = root.getEffectiveLevel() <= logging.DEBUG
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if debugging else logging.WARNING)
    queue_log = logging.getLogger("saq")
    if not any(isinstance(f, _JobsWithoutPayload) for f in queue_log.filters):
        queue_log.addFilter(_JobsWithoutPayload())
