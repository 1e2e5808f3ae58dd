"""Logging: one JSON object per line (the default of `omnistock serve`) or plain text.

Every record carries the id of the request being served (set by the request-log middleware in
a context variable), and every message and traceback is scrubbed of credentials before it is
written: `scheme://user:password@host` becomes `scheme://***@host`, and `Bearer <token>` /
`Basic <token>` lose their token. The request log itself never reads a header other than
`X-Request-ID`, so API keys cannot reach it in the first place; the scrubbing is the second
line of defence for messages built elsewhere (an exception that prints a store URL, say).
"""

from __future__ import annotations

import functools
import logging
import logging.config
import re
import time
from contextvars import ContextVar
from typing import Any, Literal

import orjson

LogFormat = Literal["json", "text"]

REQUEST_ID: ContextVar[str | None] = ContextVar("omnistock_request_id", default=None)

_URL_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]+@")
_AUTH_TOKEN = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


def redact(text: str) -> str:
    """The text without URL credentials and bearer/basic tokens."""
    if "@" in text:
        text = _URL_CREDENTIALS.sub(r"\1***@", text)
    if text.isascii():  # then the pattern can only match where the lower case has the word
        lowered = text.lower()
        if "bearer" not in lowered and "basic" not in lowered:
            return text  # (a `sub` with a template costs 8 µs even when nothing matches)
    return _AUTH_TOKEN.sub(r"\1 ***", text)


_second: tuple[int, str] = (-1, "")
_MILLIS = tuple(f".{ms:03d}Z" for ms in range(1000))  # a table, not a format per line


def _timestamp(created: float) -> str:
    global _second
    whole = int(created)
    if whole != _second[0]:  # one strftime per second, not per line
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return _second[1] + _MILLIS[int(created * 1000) % 1000]


_TASK_NAMES = hasattr(logging, "logAsyncioTasks")  # Python 3.12+


def _lean() -> bool:
    """Records carry no thread, process or task names (`_lean_records` was applied)."""
    return not (
        logging.logThreads
        or logging.logProcesses
        or logging.logMultiprocessing
        or (_TASK_NAMES and logging.logAsyncioTasks)  # type: ignore[attr-defined]
    )


@functools.cache
def _lean_info_constants() -> dict[str, Any]:
    """The attributes that every lean INFO record of ours has alike (made while lean)."""
    unknown = "(unknown file)", 0, "", (), None, "(unknown function)"
    record = logging.LogRecord("", logging.INFO, *unknown)
    variable = ("name", "msg", "args", "created", "msecs", "relativeCreated")
    return {k: v for k, v in vars(record).items() if k not in variable}


def info_record(
    logger: logging.Logger, msg: str, args: tuple[object, ...], fields: dict[str, Any]
) -> logging.LogRecord:
    """An INFO record of `logger` with structured `fields`, as `logger.info(msg, *args,
    extra={"fields": fields})` makes it (hand it to `logger.handle`), but made for the price of
    setting its attributes: LogRecord's constructor splits a path and checks its arguments on
    every call, a quarter of the cost of the access log's line a request (docs/benchmarks.md,
    "Session 5, HTTP tier"). Where records carry thread or process names (no `_lean_records`:
    tests, or a host application's logging), the constructor makes it, as before."""
    if not _lean():
        return logger.makeRecord(
            logger.name,
            logging.INFO,
            "(unknown file)",
            0,
            msg,
            args,
            None,
            "(unknown function)",
            {"fields": fields},
        )
    record = logging.LogRecord.__new__(logging.LogRecord)
    created = time.time()
    record.__dict__ = {  # one dict made whole: half the instructions of filling it in place
        **_lean_info_constants(),
        "name": logger.name,
        "msg": msg,
        "args": args,
        "created": created,
        "msecs": int((created - int(created)) * 1000) + 0.0,
        "relativeCreated": (created - logging._startTime) * 1000,  # type: ignore[attr-defined]
        "fields": fields,
    }
    return record


def _lean_records() -> None:
    """Skip what no line of ours shows: the caller's frame (the costliest part of a record)
    and thread/process names. Set by the formatters, so each uvicorn worker process that
    configures logging from `logging_config` gets it too."""
    logging._srcfile = None  # documented in the logging HOWTO ("Optimization")
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    if hasattr(logging, "logAsyncioTasks"):  # Python 3.12+: the current task's name
        logging.logAsyncioTasks = False


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "msg", "request_id"?, ...fields, "exc"?}` on one line.

    Structured fields come in through `extra={"fields": {...}}`."""

    def __init__(self) -> None:
        super().__init__()
        _lean_records()

    def format(self, record: logging.LogRecord) -> str:
        exc = redact(self.formatException(record.exc_info)) if record.exc_info else None
        return _json_line(
            record.created,
            record.levelname,
            record.name,
            record.getMessage(),
            getattr(record, "fields", None),
            exc,
        )


def _json_line(
    created: float,
    levelname: str,
    name: str,
    message: str,
    fields: dict[str, Any] | None,
    exc: str | None = None,
) -> str:
    """The JSON line of a record (JsonFormatter), from its parts: the one home of its form."""
    doc: dict[str, Any] = {
        "ts": _timestamp(created),
        "level": levelname.lower(),
        "logger": name,
        "msg": redact(message),
    }
    request_id = REQUEST_ID.get()
    if request_id is not None:
        doc["request_id"] = request_id
    if fields:
        doc.update(fields)
    if exc is not None:
        doc["exc"] = exc
    return orjson.dumps(doc, default=str).decode()


def _lone_json_handler(logger: logging.Logger) -> logging.StreamHandler[Any] | None:
    """The one handler an INFO record of `logger` reaches, when that is a plain StreamHandler
    writing JsonFormatter's lines and no filter anywhere can drop or change the record (as
    `logging_config` sets it up); else None. What `Logger.handle` would do with the record:
    its own filters, then every handler up the hierarchy until one logger does not
    propagate, each handler's level and filters."""
    if logger.disabled or logger.filters:
        return None
    found = None
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if found is not None:
                return None
            found = handler
        if not current.propagate:
            break
        current = current.parent
    if (
        type(found) is not logging.StreamHandler
        or found.filters
        or found.level > logging.INFO
        or type(found.formatter) is not JsonFormatter
    ):
        return None
    return found


def log_info(
    logger: logging.Logger, msg: str, args: tuple[object, ...], fields: dict[str, Any]
) -> None:
    """`logger.handle(info_record(logger, msg, args, fields))` (the caller checked that INFO
    is enabled), the same bytes written the same way, without the logging module's machinery
    per record where the record would go to one JSON StreamHandler and nothing else
    (`_lone_json_handler`): the record, its filter checks, the walk of the handlers and
    the formatter's attribute look-ups were about half of the access line's cost
    (docs/benchmarks.md, "Session 8, the hold's Python")."""
    handler = _lone_json_handler(logger)
    if handler is None:
        logger.handle(info_record(logger, msg, args, fields))
        return
    created = time.time()
    handler.acquire()
    try:  # as StreamHandler.emit, under the lock Handler.handle takes
        level = logging.getLevelName(logging.INFO)
        line = _json_line(created, level, logger.name, msg % args, fields)
        handler.stream.write(line + handler.terminator)
        handler.flush()
    except RecursionError:
        raise
    except Exception:
        handler.handleError(info_record(logger, msg, args, fields))
    finally:
        handler.release()


class TextFormatter(logging.Formatter):
    """The classic `time level logger message` line, scrubbed like the JSON one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")
        _lean_records()

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = REQUEST_ID.get()
        if request_id is not None:
            line += f" request_id={request_id}"
        return redact(line)


def logging_config(fmt: LogFormat, level: str = "info") -> dict[str, Any]:
    """A `logging.config.dictConfig` document: also handed to uvicorn as `log_config`, so
    every worker process logs the same way. uvicorn's access log is off (the request-log
    middleware writes one line per request instead)."""
    formatter = "app.logs.JsonFormatter" if fmt == "json" else "app.logs.TextFormatter"
    lvl = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "omnistock": {"handlers": ["stderr"], "level": lvl, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": lvl, "propagate": False},
            "uvicorn.error": {"level": lvl},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }


def configure(fmt: LogFormat, level: str = "info") -> None:
    logging.config.dictConfig(logging_config(fmt, level))
