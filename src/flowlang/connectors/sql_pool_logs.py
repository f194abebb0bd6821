"""SQLAlchemy's pool logs its own troubles with a connection (a reset, that is a rollback, that failed as
the connection went back to the pool; a connection that could not be closed) at error level with the
exception's traceback: an embedding program without a handler of its own had Python print
'Exception during reset or similar' and a traceback on stderr (logging's last resort), and the CLI
showed 'error: Exception during reset or similar', saying nothing of which connection or why.

The pool lets such a connection go and makes a new one when one is needed: no record depends on it. The
pools of flowlang's engines log under a name of their own (`pool_logging_name`), and their lines become
one line of flowlang's logger `flowlang.sql` that names the connection and the database's words, without
a traceback (--debug logs the traceback too); a host program's own pools are left as they are."""

from __future__ import annotations

import logging
import weakref
from typing import Any

from flowlang.connectors.sql_cancel import log

LOGGING_NAME = "flowlang"  # the pool's logger is sqlalchemy.pool.impl.<Pool>.flowlang.<connection>


def logging_name(connection: str) -> str:
    return f"{LOGGING_NAME}.{connection}"


# the pool's words, and what they mean
_SAID = (("Exception during reset", "a connection could not be rolled back as it went back to the pool"),
         ("Exception closing connection", "a connection could not be closed"),
         ("Exception terminating connection", "a connection could not be closed"))


class PoolLines(logging.Filter):
    """On a pool's logger: each of its lines said again as flowlang's (see above), the pool's own dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        connection = record.name.rpartition(f".{LOGGING_NAME}.")[2] or "sql"
        error = record.exc_info[1] if record.exc_info else None
        message = record.getMessage()
        said = next((ours for theirs, ours in _SAID if message.startswith(theirs)), message.rstrip("."))
        if error is not None:
            words = str(error).strip().splitlines()
            said += f": {words[0] if words else type(error).__name__}"
        level = min(record.levelno, logging.WARNING)
        log.log(level, "%s: %s; the pool lets that connection go (a new one is made when needed)",
                connection, said, exc_info=record.exc_info if log.isEnabledFor(logging.DEBUG) else None)
        return False


_LINES = PoolLines()


def quiet(pool_logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | object) -> None:
    """Route the lines of one of flowlang's pools (its `logger`) through flowlang's logger, once."""
    logger = getattr(pool_logger, "logger", pool_logger)  # an echo flag makes it an InstanceLogger
    if isinstance(logger, logging.Logger) and _LINES not in logger.filters:
        logger.addFilter(_LINES)


# psycopg's connections of flowlang's engines (each added as it is made): the pipeline lines of these only
_OURS: weakref.WeakSet[Any] = weakref.WeakSet()


class PipelineLines(logging.Filter):
    """On psycopg's logger. psycopg writes a batch (executemany) in pipeline mode; a row the database refuses
    leaves the pipeline with answers still to come, and as the error goes up psycopg logs a warning of its
    internals beside it ('error ignored terminating <psycopg.Pipeline [INERROR, pipeline=ON] (host=...) at
    0x7f...>: pipeline aborted'), in one failed batch of two or so. The error itself fails the records (a
    batch is written again row by row): of a connection of flowlang's the line says nothing more, and it is
    a debug line of flowlang's logger. Other programs' connections are left as they are."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not (isinstance(args, tuple) and args and str(record.msg).startswith("error ignored ")):
            return True
        pipeline = args[0]
        if "Pipeline" not in type(pipeline).__name__ or getattr(pipeline, "_conn", None) not in _OURS:
            return True
        log.debug("psycopg's pipeline was left after an error (the error is the write's): %s",
                  args[-1] if len(args) > 1 else "")
        return False


_PIPELINES = PipelineLines()


def ours(psycopg_connection: Any) -> None:
    """A psycopg connection of one of flowlang's engines: its pipeline's lines are flowlang's debug lines."""
    _OURS.add(psycopg_connection)
    logger = logging.getLogger("psycopg")
    if _PIPELINES not in logger.filters:
        logger.addFilter(_PIPELINES)
