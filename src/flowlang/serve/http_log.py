"""What serve's HTTP server logs of a request that is no valid HTTP. aiohttp answers it 400 and logs
'Error handling request from IP' at level error, the exception (which quotes the request's own bytes,
a credential header's too) as its traceback: a client's mistake said as a failure of serve, and saying
nothing of what was wrong. Here it is a warning naming what was wrong, without the request's bytes."""

from __future__ import annotations

import logging

from aiohttp import http_exceptions as bad

HTTP_LOGGER = "flowlang.serve.http"

REASONS: tuple[tuple[type[BaseException], str], ...] = (
    (bad.LineTooLong, "its request line or a header line is too long"),
    (bad.InvalidHeader, "a header is malformed"),
    (bad.BadStatusLine, "its request line is malformed"),
    (bad.InvalidURLError, "its URL is malformed"),
    (bad.PayloadEncodingError, "its body does not match its Content-Length, chunked or compressed encoding"),
)


def reason(error: bad.HttpProcessingError) -> str:
    return next((text for kind, text in REASONS if isinstance(error, kind)), "it is malformed")


class RefusedRequests(logging.Filter):
    """A request refused as no valid HTTP (a 4xx aiohttp answered): a warning with the reason, no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, bad.HttpProcessingError) and 400 <= error.code < 500:
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "a client"
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = "refused a request from %s that is not valid HTTP (answered %d): %s"
            record.args = (remote, error.code, reason(error))
            if not logging.getLogger(HTTP_LOGGER).isEnabledFor(logging.DEBUG):  # --debug keeps the traceback
                record.exc_info, record.exc_text = None, None
        return True


def http_logger() -> logging.Logger:
    """The logger serve's HTTP server reports to (the filter is added once)."""
    logger = logging.getLogger(HTTP_LOGGER)
    if not any(isinstance(f, RefusedRequests) for f in logger.filters):
        logger.addFilter(RefusedRequests())
    return logger


__all__ = ["HTTP_LOGGER", "http_logger"]
