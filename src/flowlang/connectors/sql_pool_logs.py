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
