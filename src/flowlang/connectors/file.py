"""The `file` connector: CSV, JSON and JSON Lines files, read as record streams (a JSON list is
parsed as a stream too, so memory stays flat) and written record by record (folders are created),
and binary files (`format: "bytes"`). Text is decoded in the file's `encoding` line by line
(textlines.py), so a bad byte is reported with its line; the CSV rules (bad rows, ragged rows, bare
carriage returns, formula escaping) are csvrows.py's.

Writes are buffered, not flushed per record: the run flushes them (`flush_writes`) at the end of
each page of an outermost loop, before a checkpoint or a ledger entry says records are done, and at
the end of the run; a read of a file flushes what this process has buffered for that file first."""

from __future__ import annotations

import codecs
import csv
import itertools
import operator
import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from flowlang.connectors.base import ConfigKey, Connection, ConnectorSpec, OperationSpec, RunServices
from flowlang.connectors.csvrows import RAGGED, csv_cell, escaped, formula_after, header_of, record_pages
from flowlang.connectors.jsonlrows import json_lines
from flowlang.connectors.matching import matches
from flowlang.connectors.pickup import PickupConnection, check_after, is_pattern
from flowlang.connectors.storage import LocalStorage
from flowlang.connectors.wholelines import DISK_FULL, WholeRecords
from flowlang.diagnostics import unencodable
from flowlang.errors import DiskFull, FlowRuntimeError
from flowlang.runtime.blob import Blob, binary_value, is_binary
from flowlang.runtime.flow_folder import PathRefused, inside, outside_left_to_run
from flowlang.runtime.jsoncodec import EXPONENT_PROBLEM, LONG_DIGITS, MAX_INT_DIGITS, JsonDataError, dumps, loads
from flowlang.runtime.values import BadRecord, RecordStream, Value, to_text, type_name

FORMATS = ("csv", "json", "jsonl", "bytes")
PAGE = 1000
ROW_END = "\r\n"


@dataclass(frozen=True)
class TextRules:
    """How a file's text is read and written: its encoding, and for CSV the delimiter and what a
    ragged row is ("error" or "keep", csvrows.py)."""

    delimiter: str = ","
    encoding: str = "utf-8"
    ragged: str = "error"


_UNFLUSHED: set[FileConnection] = set()  # file connections of this process with buffered writes


def flush_buffered(path: Path) -> None:
    """What any run of this process has buffered for `path` reaches it before it is read (a failure
    to write is kept for the writer's run to report)."""
    for writer in [w for w in _UNFLUSHED if w.path == path]:
        writer.flush_quietly()


class FileConnection(Connection):
    def __init__(self, name: str, spec: ConnectorSpec, path: Path, fmt: str, mode: str, services: RunServices,
                 rules: TextRules = TextRules()) -> None:
        super().__init__(name, spec)
        self.rules = rules
        self.encoding = rules.encoding
        self.path = path
        self.format = fmt
        self.mode = mode
        self.services = services
        self.delimiter = rules.delimiter
        self._handle: Any = None  # WholeRecords for text formats, a binary file for bytes
        self._writer: Any = None
        self._header: list[str] | None = None  # the header's cells as written
        self._columns: dict[str, int] = {}  # a record's key (or its escaped form) -> its column
        self._width = 0  # the header's columns
        self._seps = 0  # delimiters in the usual row: one fewer than its columns
        self._cells: Callable[[dict[str, Value]], tuple[Any, ...]] = tuple  # a record's cells in the header's order
        self._plain_sep: str | None = None  # the delimiter, once the usual row can be written joined
        self._formula_at: Callable[[str], object] = bool  # finds a cell that starts a formula (csvrows)
        self._json_count = 0
        self._cache: list[Value] | None = None
        self._write_error: str | None = None  # a buffered write that failed, reported at the next flush
        self._full: str | None = None  # the disk filled up writing this file: what every later write says
        self._dirty = False  # records written since the last flush

    # ---- reading -------------------------------------------------------------------------------
    async def invoke(self, op: str, args: list[Value], kwargs: dict[str, Value]) -> Value:
        if op == "read":
            return RecordStream(self._pages, f"{self.name}.read()")
        if op == "find":
            return [r for r in await self._all() if matches(r, kwargs)]
        if op == "write":
            return await self.send(op, args[0] if args else None, [], {})
        raise FlowRuntimeError(f"file has no operation '{op}'", "connector")

    async def _all(self) -> list[Value]:
        """The whole file, read once per run (for find)."""
        if self._cache is None:
            found: list[Value] = []
            async for page in self._pages():
                for record in page:
                    if type(record) is BadRecord:  # a lookup cannot skip a record: it stops at it
                        raise FlowRuntimeError(record.message, "data")
                found.extend(page)
            self._cache = found
        return self._cache

    def _open_binary(self) -> IO[bytes]:
        if _UNFLUSHED:
            flush_buffered(self.path)
        try:
            return self.path.open("rb")
        except FileNotFoundError:
            raise FlowRuntimeError(f"file not found: {self.path}", "connector") from None
        except OSError as e:
            raise FlowRuntimeError(f"cannot read {self.path}: {e.strerror}", "connector") from None

    async def _pages(self) -> AsyncIterator[list[Value]]:
        if self.format == "csv":
            with self._open_binary() as fh:
                for rows in record_pages(fh, self.encoding, self.path.name, self.delimiter, self.rules.ragged, PAGE):
                    yield rows
        elif self.format == "jsonl":
            with self._open_binary() as fh:
                page: list[Value] = []
                for line in json_lines(fh, self.encoding, self.path.name):
                    page.append(line)
                    if len(page) >= PAGE:
                        yield page
                        page = []
                if page:
                    yield page
        elif self.format == "bytes":
            with self._open_binary() as fh:
                size = os.fstat(fh.fileno()).st_size
            yield [binary_value(self.path, size)]
        else:
            async for page in self._json_pages():
                yield page

    async def _json_pages(self) -> AsyncIterator[list[Value]]:
        """A JSON list streamed item by item (ijson; decimals exact); any other JSON value is one record."""
        import ijson  # type: ignore[import-untyped]

        with self._open_binary() as fh:
            source: Any = fh if codecs.lookup(self.encoding).name == "utf-8" else _AsUtf8(fh, self.encoding)
            start = source.peek(64)[:64]
            if start.startswith(codecs.BOM_UTF8):
                source.read(len(codecs.BOM_UTF8))
                start = start[len(codecs.BOM_UTF8):]
            if not start.lstrip().startswith(b"[") and start.strip():
                try:
                    yield [loads(source.read())]
                except JsonDataError as e:
                    raise FlowRuntimeError(f"bad JSON in {self.path.name}: {e}", "data") from None
                return
            guarded = _DigitGuard(_NestingGuard(source))
            count = 0
            try:
                try:
                    async for page in self._json_items(ijson.items(guarded, "item", use_float=False), start):
                        count += len(page)
                        yield page
                except _LongDigits:  # the C parser cannot read such a number: the Python one goes on from here
                    with self._open_binary() as again:
                        rest: Any = again if codecs.lookup(self.encoding).name == "utf-8" else \
                            _AsUtf8(again, self.encoding)
                        if rest.peek(3)[:3] == codecs.BOM_UTF8:
                            rest.read(3)
                        import ijson.backends.python as slow  # type: ignore[import-untyped]

                        items = slow.items(_NestingGuard(rest), "item", use_float=False)
                        async for page in self._json_items(itertools.islice(items, count, None), start):
                            yield page
            except _TooDeep:
                raise FlowRuntimeError(f"bad JSON in {self.path.name}: a record nests more than "
                                       f"{MAX_READ_DEPTH:,} levels deep", "data") from None

    async def _json_items(self, items: Iterator[Value], start: bytes) -> AsyncIterator[list[Value]]:
        import ijson

        page: list[Value] = []
        try:
            for item in items:
                page.append(item)
                if len(page) >= PAGE:
                    yield page
                    page = []
        except ijson.JSONError as e:
            if not start.strip():
                return
            raise FlowRuntimeError(f"bad JSON in {self.path.name}: {_ijson_problem(e)}", "data") from None
        except UnicodeDecodeError as e:
            raise FlowRuntimeError(f"bad JSON in {self.path.name}: not {self.encoding} text ({e.reason})",
                                   "data") from None
        except ArithmeticError:  # ijson's Decimal(): an exponent past decimal.MAX_EMAX
            raise FlowRuntimeError(f"bad JSON in {self.path.name}: {EXPONENT_PROBLEM}", "data") from None
        if page:
            yield page

    # ---- writing -------------------------------------------------------------------------------
    sends_now = True

    async def send(self, op: str, record: Value, args: list[Value], kwargs: dict[str, Value]) -> Value:
        return self.send_now(op, record, args, kwargs)

    def send_now(self, op: str, record: Value, args: list[Value], kwargs: dict[str, Value]) -> Value:
        if self.services.dry_run:  # (a REPL's :dry on applies to the connections it has open)
            self.services.log_dry_run(self.name, f"write to {self.path.name}: {self.services.mask(dumps(record))}")
            return record
        sep = self._plain_sep  # set once a CSV row was written, cleared when the disk filled up
        if sep is not None and type(record) is dict and len(record) == self._width:
            # the usual CSV row (csvrows.plain_row): its cells joined, straight to the buffer
            try:
                line = sep.join(self._cells(record))
            except (KeyError, TypeError):  # not the header's keys, not all text
                line = "\r"
            if line.count(sep) == self._seps and "\n" not in line and "\r" not in line and '"' not in line \
                    and not self._formula_at(sep + line) and (line or self._seps):
                try:
                    self._handle.write(line + "\n")
                except (OSError, UnicodeEncodeError) as e:
                    raise self._write_failed(e) from None
                self._cache = None
                if not self._dirty:
                    self._buffered()
                return record
        if self._full is not None:  # the disk filled up: no record more is written; the run ends at the page
            raise DiskFull(self._full)
        try:
            self._write(record)
        except (OSError, UnicodeEncodeError) as e:
            raise self._write_failed(e) from None
        return record

    def _write_failed(self, e: OSError | UnicodeEncodeError) -> FlowRuntimeError:
        """What a record's failed write raises."""
        if isinstance(e, UnicodeEncodeError):  # nothing of the record was written: it is encoded whole first
            return FlowRuntimeError(unencodable(e, self.encoding, self.path.name), "data")
        if e.errno in DISK_FULL:
            return self._disk_full(e, in_flight=True)
        if self._dirty:  # records before this one may be lost with the buffer: the next flush says so
            self._write_error = self._write_error or e.strerror
        return FlowRuntimeError(f"cannot write {self.path}: {e.strerror}", "connector")

    def _buffered(self) -> None:
        """The record is in the file's buffer: the run flushes it (see the module's docstring); with
        services that do not (an embedder's own), it is flushed now."""
        pending = getattr(self.services, "unflushed", None)
        if pending is None or self.format == "bytes":  # a binary file is flushed as it is written
            self.flush_writes()
            return
        if not self._dirty:
            self._dirty = True
            pending.add(self)
            _UNFLUSHED.add(self)

    def flush_quietly(self) -> None:
        try:
            self.flush_writes()
        except FlowRuntimeError:
            pass  # kept in _write_error: the writer's own run reports it

    def flush_writes(self) -> None:
        """Push the buffered records to the file; a write that failed since the last flush fails here,
        saying that records sent to this file since then may be missing."""
        _UNFLUSHED.discard(self)
        self._dirty = False
        if self._full is not None:
            raise DiskFull(self._full)
        if self._handle is not None and self._write_error is None:
            try:
                self._handle.flush()
            except OSError as e:
                if e.errno in DISK_FULL:
                    raise self._disk_full(e) from None
                self._write_error = e.strerror
        if self._write_error is not None:
            raise FlowRuntimeError(f"cannot write {self.path}: {self._write_error}; records sent to it since the "
                                   "last page may be missing from it", "connector")

    def _disk_full(self, error: OSError, in_flight: bool = False) -> DiskFull:
        """The disk (or a quota, or a file size limit) is full: said once, and every later write and flush
        of this file fails with the same message, so the run ends at the end of the page. The message
        counts the records sent to the file that a failed flush cut back (the one in flight, which
        fails and is kept, is not one of them)."""
        cut = getattr(self._handle, "cut_back", 0) - (1 if in_flight else 0)
        lost = (f"the {cut:,} record{'s' if cut != 1 else ''} sent to it since its last write that reached the disk "
                f"{'are' if cut != 1 else 'is'} not in it (counted as sent); "
                if cut > 0 else "")
        self._plain_sep = None  # every later write takes the way that says so
        self._full = (f"disk full writing {self.path} ({error.strerror}); {lost}the file was cut back to its last "
                      "whole record (no torn line); free some space and run again")
        return DiskFull(self._full)

    def _start(self) -> Any:
        if self._handle is None and self.format == "bytes":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("ab" if self.mode == "append" else "wb")
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            existing = self.mode == "append" and self.path.exists() and self.path.stat().st_size > 0
            if self.format == "csv" and existing:
                with self.path.open("rb") as fh:
                    self._header = header_of(fh, self.encoding, self.path.name, self.delimiter)
            if self.format == "json" and existing:
                self._prepare_json_append()
            self._handle = WholeRecords(self.path, self.mode == "append", self.encoding)
            if self.format == "json" and not existing:
                self._handle.write_frame("[")
                self._handle.flush()  # on the disk first: a flush of records cut back on a full disk keeps it
        return self._handle

    def _prepare_json_append(self) -> None:
        """The list's closing `]` (and the blanks around it) cut off in place, so records go on after the
        last one. The file is only shortened, never written again: rewritten whole, a kill -9 while it was
        written left it empty (a 90 MB list of 400,000 records: 0 bytes), and a file size limit cut it."""
        with self.path.open("r+b") as fh:
            end = _text_end(fh, fh.seek(0, os.SEEK_END))
            if _byte_before(fh, end) == b"]":
                body_end = _text_end(fh, end - 1)
            else:
                fh.seek(0)
                text = fh.read().decode("utf-8", "surrogatepass").rstrip()
                if not left_open(text):  # not a run killed while writing it (whole records, no closing ])
                    raise FlowRuntimeError(f"{self.path.name} does not hold a JSON list to append to", "data")
                body_end = end
            self._json_count = 0 if _byte_before(fh, body_end) == b"[" else 1
            fh.truncate(body_end)
            fh.flush()
            os.fsync(fh.fileno())

    def _write(self, record: Value) -> None:
        self._cache = None
        handle = self._handle if self._handle is not None else self._start()
        if self.format == "csv":
            self._write_csv(handle, record)
        elif self.format == "bytes":
            if not is_binary(record):
                raise FlowRuntimeError(f'a file with format: "bytes" takes bytes (a binary answer), got '
                                       f"{type_name(record)}", "data")
            if type(record) is Blob:
                with record.open() as source:
                    shutil.copyfileobj(source, handle, 1 << 20)
            else:
                handle.write(record)
        elif self.format == "jsonl":
            handle.write(self._json(record) + "\n")
        elif self.format == "json":
            handle.write(("," if self._json_count else "") + "\n" + self._json(record))
            self._json_count += 1
        if not self._dirty:
            self._buffered()

    def _json(self, record: Value) -> str:
        """A record as a line of the file: a bytes value in it fails the record (its `<N bytes>` text
        would stand in for the data)."""
        try:
            return dumps(record, binary=False)
        except JsonDataError as e:
            raise FlowRuntimeError(f"cannot write to {self.path.name}: {e}", "data") from None

    def _write_csv(self, handle: WholeRecords, record: Value) -> None:
        if type(record) is not dict:
            raise FlowRuntimeError(f"a CSV row must be an object, got {type_name(record)}", "data")
        if self._writer is None:
            self._start_csv(handle, record)
        header = self._header or []
        columns = self._columns
        row = [""] * len(header)
        extra = []
        for key, value in record.items():
            at = columns.get(key)
            if at is None:
                at = columns.get(escaped(key))
                if at is None:
                    extra.append(key)
                    continue
            row[at] = csv_cell(value)
        if extra:
            raise FlowRuntimeError(f"the record has fields that are not columns of {self.path.name}: "
                                   f"{', '.join(map(column_name, extra))} (columns: "
                                   f"{', '.join(map(column_name, header))})", "data")
        self._writer.writerow(row)

    def _start_csv(self, handle: WholeRecords, record: dict[str, Value]) -> None:
        """The writers of a CSV file (the header is written first, from the first record's keys, unless
        the file being appended to has one)."""
        writer = csv.writer(_LfRows(handle), delimiter=self.delimiter, lineterminator=ROW_END)
        if self._header is None:
            self._header = [escaped(k) for k in record]  # header cells are escaped like any cell
            self._columns = {k: i for i, k in enumerate(record)}
            writer.writerow(self._header)
            handle.records -= 1  # the header is not a record
            order = list(record)
        else:
            order = list(self._header)
        self._columns.update({cell: i for i, cell in enumerate(self._header)})
        self._writer = writer
        # the usual row is its cells joined (csvrows.plain_row): no writer, straight to the buffer
        self._width = len(order)
        self._seps = len(order) - 1
        if len(order) > 1:
            self._cells = operator.itemgetter(*order)
        elif order:
            key = order[0]
            self._cells = lambda r: (r[key],)
        self._formula_at = formula_after(self.delimiter)
        self._plain_sep = self.delimiter

    async def close(self) -> None:
        _UNFLUSHED.discard(self)
        self._dirty = False
        self._plain_sep = None
        if self._handle is not None:
            handle, self._handle = self._handle, None
            try:
                try:
                    if self.format == "json":
                        handle.write_frame("\n]\n")  # after a cut back too: the file stays one JSON list
                finally:
                    handle.close()
            except OSError as e:
                if self._full is None and e.errno in DISK_FULL:
                    raise self._disk_full(e) from None
                if self._full is None:
                    raise FlowRuntimeError(f"cannot write {self.path}: {e.strerror}", "connector") from None


def path_problem(raw: Value) -> str | None:
    """What open_file refuses in path: (for `flowlang check` too, of a constant)."""
    return None if type(raw) is str and raw else f"file needs path: a file name, got {type_name(raw)}"


def file_value_problem(key: str, value: Value) -> str | None:
    """A constant of file's configuration that the file would refuse when it opens (ConnectorSpec.value_problem)."""
    return path_problem(value) if key == "path" else text_option_problem(key, value)


def outside_problem(constants: Mapping[str, Value], given: set[str], base_dir: Path) -> tuple[str, str] | None:
    """A constant path that open_file refuses as outside the flow's folder, for `flowlang check`
    (ConnectorSpec.folder_problem); an allow_outside: that is not a constant leaves it to the run."""
    raw = constants.get("path")
    if type(raw) is not str or not raw or outside_left_to_run(constants, given):
        return None
    try:
        inside(base_dir, raw)
    except PathRefused as e:
        return "path", e.message
    return None


async def open_file(name: str, config: Mapping[str, Value], services: RunServices) -> Connection:
    raw = config.get("path")
    refused = path_problem(raw)
    if refused is not None:
        raise FlowRuntimeError(refused, "connector")
    assert isinstance(raw, str)
    allow_outside = config.get("allow_outside") is True
    try:
        path = inside(services.base_dir, raw, allow_outside=allow_outside)
    except PathRefused as e:
        raise FlowRuntimeError(e.message, "connector") from None
    fmt, mode, rules = format_options(raw, config)
    if is_pattern(raw):
        after = check_after(config.get("after") or "")

        def open_one(one: Path) -> FileConnection:
            try:
                inside(services.base_dir, str(one), allow_outside=allow_outside)
            except PathRefused as e:
                raise FlowRuntimeError(e.message, "connector") from None
            return FileConnection(name, FILE, one, fmt, "overwrite", services, rules)
        return PickupConnection(name, FILE, raw, after, services, open_one, fmt == "bytes",
                                LocalStorage(services.base_dir))
    if raw.endswith("/"):
        if fmt != "bytes":
            raise FlowRuntimeError(f'the folder {raw!r} takes files as format: "bytes" (records {{name, content}})',
                                   "connector")
        from flowlang.connectors.folder import FolderConnection

        return FolderConnection(name, FILE, LocalStorage(services.base_dir), str(path), services)
    if config.get("after") is not None:
        raise FlowRuntimeError('file after: is for a pick-up of several files: give path: a pattern such as '
                               '"in/*.csv"', "connector")
    if services.appending:  # a retry never erases what the runs before it wrote
        mode = "append"
    return FileConnection(name, FILE, path, fmt, mode, services, rules)


BLANKS = b" \t\r\n"


def _text_end(fh: IO[bytes], end: int) -> int:
    """Where the text before `end` ends without its trailing blanks (read back from `end` a block at a time)."""
    while end > 0:
        start = max(0, end - 4096)
        fh.seek(start)
        block = fh.read(end - start).rstrip(BLANKS)
        if block:
            return start + len(block)
        end = start
    return 0


def _byte_before(fh: IO[bytes], end: int) -> bytes:
    if end <= 0:
        return b""
    fh.seek(end - 1)
    return fh.read(1)


def left_open(text: str) -> bool:
    """Whether text is a JSON list of whole records without its closing `]` (a file sink pushes whole
    records, and writes the `]` when it closes: a killed run leaves such a list)."""
    if not text.startswith("["):
        return False
    try:
        return isinstance(loads(text + "]"), list)
    except JsonDataError:
        return False


def format_options(raw: str, config: Mapping[str, Value], kind: str = "file") -> tuple[str, str, TextRules]:
    """The format, mode and text rules (delimiter, encoding, ragged) a file connector's configuration
    gives (checked), for local and remote files alike."""
    fmt = config.get("format") or ("" if raw.endswith("/") else PurePosixPath(raw).suffix.lstrip(".").lower())
    if fmt == "ndjson":
        fmt = "jsonl"
    if fmt not in FORMATS:
        if config.get("format"):
            raise FlowRuntimeError(f'{kind} format must be "csv", "json", "jsonl" or "bytes", got '
                                   f"{to_text(config['format'])!r}", "connector")
        raise FlowRuntimeError(f"{kind} cannot tell the format of {raw!r}: give format: \"csv\", \"json\", "
                               "\"jsonl\" or \"bytes\"", "connector")
    mode = given(config, "mode", "overwrite")
    if mode not in ("overwrite", "append"):
        raise FlowRuntimeError(f'{kind} mode must be "overwrite" or "append", got {to_text(mode)!r}', "connector")
    delimiter = given(config, "delimiter", ",")
    if delimiter == "\\t":
        delimiter = "\t"
    if type(delimiter) is not str or len(delimiter) != 1:
        raise FlowRuntimeError(f'{kind} delimiter must be one character (a tab is "\\t")', "connector")
    if delimiter in '"\r\n':  # the CSV rules' own characters: rows written so could not be read back
        raise FlowRuntimeError(f"{kind} delimiter cannot be {delimiter!r}: CSV uses it for quoting or line ends",
                               "connector")
    encoding = given(config, "encoding", "utf-8")
    try:
        text_codec = codecs.lookup(str(encoding))._is_text_encoding
    except LookupError:
        raise FlowRuntimeError(f"{kind} encoding {to_text(encoding)!r} is not one Python knows (e.g. \"utf-8\", "
                               '"cp1252", "latin-1", "utf-16")', "connector") from None
    if not text_codec:  # rot13, base64, zlib: codecs, but not of text (a LookupError when a file is opened)
        raise FlowRuntimeError(f"{kind} encoding {to_text(encoding)!r} is not a text encoding (e.g. \"utf-8\", "
                               '"cp1252", "latin-1", "utf-16")', "connector")
    ragged = given(config, "ragged", "error")
    if ragged not in RAGGED:
        raise FlowRuntimeError(f'{kind} ragged must be "error" (a row with more or fewer cells than the header '
                               f'is a failed record) or "keep", got {to_text(ragged)!r}', "connector")
    return str(fmt), str(mode), TextRules(delimiter, str(encoding), str(ragged))


def given(config: Mapping[str, Any], key: str, default: str) -> Any:
    """A setting as given, its default only where it was not given (or null): `delimiter: ""` was taken
    for `,` and `mode: ""` for overwrite, without a word."""
    value = config.get(key)
    return default if value is None else value


def text_option_problem(key: str, value: Value, kind: str = "file") -> str | None:
    """What format_options would refuse in one of these keys written as a constant, for `flowlang
    check` (ConnectorSpec.value_problem); other keys (path, after) are judged when the file opens."""
    if key not in ("format", "mode", "delimiter", "encoding", "ragged") or value is None:
        return None
    try:
        format_options("records.csv", {key: value}, kind)
    except FlowRuntimeError as e:
        return e.message
    return None


def path_format_problem(constants: Mapping[str, Value], given: set[str], kind: str = "file") -> tuple[str, str] | None:
    """A constant path whose format its extension does not tell, with no format: given (x.xlsx), or a
    constant pick-up pattern without after: (or with an empty or null one), or an after: beside a path of
    one file, for `flowlang check`
    (ConnectorSpec.config_problem): every read and write of it would fail, the pattern's at its `use`."""
    path = constants.get("path")
    if isinstance(path, str) and is_pattern(path) and ("after" not in given or (
            "after" in constants and constants["after"] in (None, ""))):
        try:
            check_after(constants.get("after"))
        except FlowRuntimeError as e:
            return ("after" if "after" in given else "path"), e.message
    if (isinstance(path, str) and path and not is_pattern(path) and not path.endswith("/")
            and constants.get("after") is not None):
        return "after", (f'{kind} after: is for a pick-up of several files: give path: a pattern such as '
                         '"in/*.csv"')
    if "format" in given or not isinstance(path, str) or not path:
        return None
    try:
        format_options(path, {}, kind)
    except FlowRuntimeError as e:
        return "path", e.message
    return None


class _LfRows:
    """A CSV writer's rows, each ended by "\n": the writer ends them in "\r\n" (ROW_END), so that it
    quotes every cell with a carriage return in it (it quotes only for the characters of its line end)."""

    __slots__ = ("handle",)

    def __init__(self, handle: WholeRecords) -> None:
        self.handle = handle

    def write(self, row: str) -> int:
        return self.handle.write(row[:-2] + "\n")


NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')  # deleted: all but brackets and quotes


# as deep as JSON from an API may be (json.loads stops near Python's recursion limit); a record past 500
# levels is read, and kept cut at that depth in the error store if it fails
MAX_READ_DEPTH = 1000


class _TooDeep(Exception):
    """A JSON file that nests deeper than a value may (ijson's prefixes grow with the depth, so a few
    hundred kilobytes of brackets took gigabytes and the process was killed)."""


class _NestingGuard:
    """The bytes ijson reads, their nesting followed: past MAX_READ_DEPTH levels inside the file's list,
    _TooDeep is raised. Brackets count outside strings only; each chunk is reduced with bytes methods
    (escaped backslashes and quotes dropped, then all but brackets and quotes, split at the quotes), so
    following costs a fifth of ijson's own time, not a Python step per byte."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.depth = 0
        self.in_string = False
        self.carry = b""  # a backslash that ended the last chunk: it escapes the first byte of this one

    def read(self, n: int = -1) -> bytes:
        chunk: bytes = self.raw.read(n)
        if chunk:
            self._follow(chunk)
        return chunk

    def _follow(self, chunk: bytes) -> None:
        if self.carry:
            chunk = self.carry + chunk
        if b"\\" in chunk:
            chunk = chunk.replace(b"\\\\", b"").replace(b'\\"', b"")
            self.carry = b"\\" if chunk.endswith(b"\\") else b""
        else:
            self.carry = b""
        parts = chunk.translate(None, NOT_STRUCTURE).split(b'"')
        outside = b"".join(parts[1::2] if self.in_string else parts[0::2])
        if len(parts) % 2 == 0:  # an odd number of quotes: a string goes on into the next chunk
            self.in_string = not self.in_string
        brackets = outside.replace(b"{", b"[").replace(b"}", b"]")
        opens = brackets.count(b"[")
        limit = MAX_READ_DEPTH + 1
        if self.depth + opens > limit and self._peak(brackets, limit) > limit:
            raise _TooDeep
        self.depth += 2 * opens - len(brackets)

    def _peak(self, brackets: bytes, limit: int) -> int:
        """The deepest point of the chunk, or a bound above it: pairs `[]` are dropped round by round
        (a record nests a few levels, so a few rounds leave `]]..[[`), and the rest is walked only
        when that bound passes the limit."""
        rest, rounds = brackets, 0
        while b"[]" in rest and rounds <= limit:
            rest, rounds = rest.replace(b"[]", b""), rounds + 1
        if self.depth + rest.count(b"[") + rounds <= limit:
            return self.depth + rest.count(b"[") + rounds
        return max(itertools.accumulate((1 if b == 91 else -1 for b in brackets), initial=self.depth))


class _LongDigits(Exception):
    """A run of digits longer than a whole number may have: ijson's C parser crashes on one."""


class _DigitGuard:
    """The bytes ijson reads, watched for a run of more than MAX_INT_DIGITS digits (which may be a
    number): before such bytes reach the C parser, _LongDigits is raised."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.tail = b""

    def read(self, n: int = -1) -> bytes:
        chunk: bytes = self.raw.read(n)
        window = self.tail + chunk
        if LONG_DIGITS.search(window):
            raise _LongDigits
        self.tail = window[-MAX_INT_DIGITS:]
        return chunk


def _ijson_problem(error: Exception) -> str:
    """ijson's message, short and in words (its Python parser quotes the whole offending token)."""
    text = str(error)
    if "Unexpected symbol" in text and LONG_DIGITS.search(text.encode(errors="replace")):
        return f"a number has more than {MAX_INT_DIGITS:,} digits"
    if isinstance(error.args[0] if error.args else None, bytes):
        text = error.args[0].decode("utf-8", "replace")
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:300] + "..."


class _AsUtf8:
    """A binary file in another encoding, read as UTF-8 bytes (for ijson)."""

    def __init__(self, raw: IO[bytes], encoding: str) -> None:
        self.text = codecs.getreader(encoding)(raw)
        self.buffer = b""

    def peek(self, n: int) -> bytes:
        while len(self.buffer) < n:
            more = self.text.read(8192)
            if not more:
                break
            self.buffer += more.encode()
        return self.buffer

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            out = self.buffer + self.text.read().encode()
            self.buffer = b""
            return out
        self.peek(n)
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out


FILE = ConnectorSpec(
    name="file",
    title="CSV, JSON and JSON Lines files, and binary files",
    origin="builtin",
    config=(
        ConfigKey("path", required=True, description="the file, relative to the flow's folder; a pattern "
                  '("in/*.csv") picks up every file it matches'),
        ConfigKey("format", description='"csv", "json", "jsonl" (default: from the extension) or "bytes"'),
        ConfigKey("mode", description='"overwrite" (default: the file is replaced once per run; a retry or a '
                  'resumed run appends) or "append"'),
        ConfigKey("delimiter", description='the CSV delimiter (default ","; ";", "|", "\\t" for a tab)'),
        ConfigKey("encoding", description='the text encoding (default "utf-8", a byte order mark is skipped; '
                  '"cp1252", "latin-1", "utf-16", ...)'),
        ConfigKey("ragged", description='a CSV row with more or fewer cells than the header: "error" (default: '
                  'a failed record) or "keep" (missing cells null, extra ones in _extra)'),
        ConfigKey("allow_outside", description="true to use a file outside the flow's folder"),
        ConfigKey("after", description='for a pick-up pattern: the folder each file is moved to once all its '
                  'records succeeded (after: "archive/"), or "delete"'),
    ),
    operations={
        "read": OperationSpec("read", "the file's records, as a stream (CSV cells are strings)",
                              returns_stream=True),
        "find": OperationSpec("find", "the records whose fields equal the arguments (for lookup; the file "
                              "is read once per run)", keywords=None),
        "write": OperationSpec("write", "append one record (the default for send)", params=("record",),
                               changes_data=True, takes_batch=True),
        "list": OperationSpec("list", "the files a pick-up pattern matches: {name, path, size}"),
    },
    open=open_file,
    default_write="write",
    value_problem=file_value_problem,
    config_problem=path_format_problem,
    folder_problem=outside_problem,
    sends_to_writes_only=True,
)


def column_name(name: str) -> str:
    """A field's name in a message: quoted when it is empty or holds what would blur a list of names
    (a comma, a quote, a line break or a blank at an end), as is otherwise."""
    plain = name and name == name.strip() and not any(c in name for c in ',"\'\r\n\t')
    return name if plain else repr(name)


__all__ = ["FILE", "FileConnection", "TextRules", "format_options", "path_format_problem", "text_option_problem"]

