"""The options of a database URL (`?charset=utf8mb4&connect_timeout=10`) that the driver would refuse
with Python's words, said in the URL's terms before connecting.

MySQL/MariaDB's driver, PyMySQL, takes each option of the URL as a keyword argument, and failed with
what Python said of it: an option it has no argument for was "db: TypeError: Connection.__init__() got
an unexpected keyword argument 'chraset'", a character set MySQL has no name for "db: AttributeError:
'NoneType' object has no attribute 'encoding'", a certificate file that is not there "db:
FileNotFoundError: [Errno 2] No such file or directory" (which file not said). A whole number that is
none (`connect_timeout=abc`, a port `:abc`) was "invalid literal for int() with base 10: 'abc'", on
every database. PostgreSQL's libpq says its own clearly ('invalid connection option "bogus"')."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

# PyMySQL arguments a URL cannot give (objects, or the URL's own parts)
_NOT_FROM_URL = frozenset({"self", "user", "password", "host", "database", "port", "passwd", "db", "conv",
                           "cursorclass", "auth_plugin_map", "ssl"})
# options SQLAlchemy reads for PyMySQL itself (into its ssl argument)
_SQLALCHEMY_READS = frozenset({"ssl_capath", "ssl_cipher", "ssl_check_hostname"})
_WHOLE_NUMBERS = ("connect_timeout", "read_timeout", "write_timeout", "client_flag", "max_allowed_packet")
_BOOLEANS = ("compress", "local_infile", "use_unicode", "ssl_check_hostname")  # as SQLAlchemy reads them
_TRUE_FALSE = frozenset({"true", "false", "yes", "no", "on", "off", "1", "0", "y", "n", "t", "f"})
_FILES = ("ssl_ca", "ssl_cert", "ssl_key", "ssl_capath", "read_default_file")


def _one(value: Any) -> str:
    """An option's value (the last one when the URL gives it twice, as SQLAlchemy keeps a tuple)."""
    return str(value[-1] if isinstance(value, tuple) else value)


def mysql_options_problem(query: dict[str, Any]) -> str | None:
    """What is wrong with the options of a MySQL/MariaDB URL for PyMySQL, or None."""
    import importlib

    try:
        connections = importlib.import_module("pymysql.connections")
        charset_by_name = importlib.import_module("pymysql.charset").charset_by_name
    except ImportError:
        return None  # the missing driver is said when the engine is made
    known = {*inspect.signature(connections.Connection.__init__).parameters, *_SQLALCHEMY_READS}
    known -= _NOT_FROM_URL
    for name in query:
        if name not in known:
            from flowlang.diagnostics import closest

            meant = closest(name, known)
            return (f"the URL's option {name} (?{name}=...) is no connection option of MySQL/MariaDB's driver "
                    f"(PyMySQL){f': is {meant} meant?' if meant else ''}; it knows {', '.join(sorted(known))}")
    if "charset" in query and charset_by_name(_one(query["charset"])) is None:
        return (f"the URL's charset={_one(query['charset'])} is no character set MySQL/MariaDB knows: "
                "charset=utf8mb4 holds every character")
    for name in _WHOLE_NUMBERS:
        if name in query and not _one(query[name]).strip().isdigit():
            return f"the URL's {name}= must be a whole number, got {_one(query[name])!r}"
    for name in _BOOLEANS:
        if name in query and _one(query[name]).strip().lower() not in _TRUE_FALSE:
            return f"the URL's {name}= must be true or false, got {_one(query[name])!r}"
    for name in _FILES:
        if name in query:
            path = Path(_one(query[name])).expanduser()
            wanted = "a folder" if name == "ssl_capath" else "a file"
            if not (path.is_dir() if name == "ssl_capath" else path.is_file()):
                return f"the URL's {name}={path}: there is no such {wanted[2:]} (it must name {wanted} on this machine)"
    return None


def port_problem(sa: Any, url: str, error: ValueError) -> str | None:
    """What to say of a URL whose port is no whole number (`@db:abc/app`, `@[::1:3306`: SQLAlchemy's
    "invalid literal for int() with base 10: 'abc'"), or None when its port is not what is wrong."""
    try:
        sa.engine.make_url(url)
    except ValueError:
        said = str(error).partition(": ")[2]
        return f"its port must be a whole number, got {said}" if said else "its port must be a whole number"
    return None
