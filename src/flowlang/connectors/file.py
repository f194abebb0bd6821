"""The `file` connector: CSV, JSON and JSON Lines files, read as record streams and written
record by record (folders are created; CSV cells are escaped against formula injection)."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import IO, Any

from flowlang.connectors.base import ConfigKey, Connection, ConnectorSpec, OperationSpec, RunServices
from flowlang.connectors.matching import matches
from flowlang.errors import FlowRuntimeError
from flowlang.runtime.jsoncodec import JsonDataError, dumps, loads
from flowlang.runtime.values import RecordStream, Value, to_text, type_name

FORMATS = ("csv", "json", "jsonl")
PAGE = 1000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Value) -> str:
    """A value as a CSV cell; text that a spreadsheet would run as a formula gets a leading '."""
    if value is None:
        return ""
    t = type(value)
    if t is dict or t is list:
        return dumps(value)
    text = to_text(value)
    if text.startswith(FORMULA_STARTS) and not _numeric(text):
        return "'" + text
    return text


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip() == text and text.lower() not in ("nan", "inf", "-inf", "+inf", "infinity", "-infinity")


class FileConnection(Connection):
    def __init__(self, name: str, spec: ConnectorSpec, path: Path, fmt: str, mode: str, services: RunServices,
                 delimiter: str) -> None:
        super().__init__(name, spec)
        self.path = path
        self.format = fmt
        self.mode = mode
        self.services = services
        self.delimiter = delimiter
        self._handle: IO[str] | None = None
        self._writer: Any = None
        self._header: list[str] | None = None
        self._json_count = 0
        self._cache: list[Value] | None = None

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
            records: list[Value] = []
            async for page in self._pages():
                records.extend(page)
            self._cache = records
        return self._cache

    def _open_read(self) -> IO[str]:
        try:
            return self.path.open(encoding="utf-8-sig", newline="")
        except FileNotFoundError:
            raise FlowRuntimeError(f"file not found: {self.path}", "connector") from None
        except OSError as e:
            raise FlowRuntimeError(f"cannot read {self.path}: {e.strerror}", "connector") from None

    async def _pages(self) -> AsyncIterator[list[Value]]:
        if self.format == "csv":
            with self._open_read() as fh:
                reader = csv.DictReader(fh, delimiter=self.delimiter)
                page: list[Value] = []
                try:
                    for row in reader:
                        page.append({k: (v if v is not None else "") for k, v in row.items() if k is not None})
                        if len(page) >= PAGE:
                            yield page
                            page = []
                except csv.Error as e:
                    raise FlowRuntimeError(f"bad CSV in {self.path.name} at line {reader.line_num}: {e}",
                                           "data") from None
                if page:
                    yield page
        elif self.format == "jsonl":
            with self._open_read() as fh:
                page = []
                for number, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        page.append(loads(line))
                    except JsonDataError as e:
                        raise FlowRuntimeError(f"bad JSON on line {number} of {self.path.name}: {e}",
                                               "data") from None
                    if len(page) >= PAGE:
                        yield page
                        page = []
                if page:
                    yield page
        else:
            with self._open_read() as fh:
                text = fh.read()
            try:
                data = loads(text) if text.strip() else []
            except JsonDataError as e:
                raise FlowRuntimeError(f"bad JSON in {self.path.name}: {e}", "data") from None
            records = data if type(data) is list else [data]
            for i in range(0, len(records), PAGE):
                yield records[i : i + PAGE]

    # ---- writing -------------------------------------------------------------------------------
    async def send(self, op: str, record: Value, args: list[Value], kwargs: dict[str, Value]) -> Value:
        if self.services.dry_run:
            self.services.log_dry_run(self.name, f"write to {self.path.name}: {self.services.mask(dumps(record))}")
            return record
        try:
            self._write(record)
        except OSError as e:
            raise FlowRuntimeError(f"cannot write {self.path}: {e.strerror}", "connector") from None
        return record

    def _start(self) -> IO[str]:
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            existing = self.mode == "append" and self.path.exists() and self.path.stat().st_size > 0
            if self.format == "csv" and existing:
                with self.path.open(encoding="utf-8-sig", newline="") as fh:
                    self._header = next(csv.reader(fh, delimiter=self.delimiter), None)
            if self.format == "json" and existing:
                self._prepare_json_append()
            self._handle = self.path.open("a" if self.mode == "append" else "w", encoding="utf-8", newline="")
            if self.format == "json" and not existing:
                self._handle.write("[")
        return self._handle

    def _prepare_json_append(self) -> None:
        text = self.path.read_text(encoding="utf-8").rstrip()
        if not text.endswith("]"):
            raise FlowRuntimeError(f"{self.path.name} does not hold a JSON list to append to", "data")
        body = text[:-1].rstrip()
        self._json_count = 0 if body.endswith("[") else 1
        self.path.write_text(body, encoding="utf-8")

    def _write(self, record: Value) -> None:
        self._cache = None
        handle = self._start()
        if self.format == "jsonl":
            handle.write(dumps(record) + "\n")
        elif self.format == "json":
            handle.write(("," if self._json_count else "") + "\n" + dumps(record))
            self._json_count += 1
        else:
            self._write_csv(handle, record)
        handle.flush()

    def _write_csv(self, handle: IO[str], record: Value) -> None:
        if type(record) is not dict:
            raise FlowRuntimeError(f"a CSV row must be an object, got {type_name(record)}", "data")
        if self._writer is None:
            self._writer = csv.writer(handle, delimiter=self.delimiter, lineterminator="\n")
            if self._header is None:
                self._header = list(record)
                self._writer.writerow(self._header)
        header = self._header or []
        extra = [k for k in record if k not in header]
        if extra:
            raise FlowRuntimeError(f"the record has fields that are not columns of {self.path.name}: "
                                   f"{', '.join(extra)} (columns: {', '.join(header)})", "data")
        self._writer.writerow([csv_cell(record.get(k)) for k in header])

    async def close(self) -> None:
        if self._handle is not None:
            if self.format == "json":
                self._handle.write("\n]\n")
            self._handle.close()
            self._handle = None


async def open_file(name: str, config: Mapping[str, Value], services: RunServices) -> Connection:
    raw = config.get("path")
    if type(raw) is not str or not raw:
        raise FlowRuntimeError(f"file needs path: a file name, got {type_name(raw)}", "connector")
    path = Path(raw)
    if not path.is_absolute():
        path = services.base_dir / path
    inside = path.resolve().is_relative_to(services.base_dir.resolve())
    if not inside and config.get("allow_outside") is not True:
        raise FlowRuntimeError(f"the file {raw!r} is outside the flow's folder ({services.base_dir}); "
                               "write allow_outside: true to use it", "connector")
    fmt = config.get("format") or path.suffix.lstrip(".").lower()
    if fmt == "ndjson":
        fmt = "jsonl"
    if fmt not in FORMATS:
        raise FlowRuntimeError(f"file cannot tell the format of {raw!r}: give format: \"csv\", \"json\" or "
                               "\"jsonl\"", "connector")
    mode = config.get("mode") or "overwrite"
    if mode not in ("overwrite", "append"):
        raise FlowRuntimeError(f'file mode must be "overwrite" or "append", got {to_text(mode)!r}', "connector")
    delimiter = config.get("delimiter") or ","
    if type(delimiter) is not str or len(delimiter) != 1:
        raise FlowRuntimeError("file delimiter must be one character", "connector")
    return FileConnection(name, FILE, path, str(fmt), str(mode), services, delimiter)


FILE = ConnectorSpec(
    name="file",
    title="CSV, JSON and JSON Lines files",
    origin="builtin",
    config=(
        ConfigKey("path", required=True, description="the file, relative to the flow's folder"),
        ConfigKey("format", description='"csv", "json" or "jsonl" (default: from the extension)'),
        ConfigKey("mode", description='"overwrite" (default: the file is replaced once per run) or "append"'),
        ConfigKey("delimiter", description='the CSV delimiter (default ",")'),
        ConfigKey("allow_outside", description="true to use a file outside the flow's folder"),
    ),
    operations={
        "read": OperationSpec("read", "the file's records, as a stream (CSV cells are strings)",
                              returns_stream=True),
        "find": OperationSpec("find", "the records whose fields equal the arguments (for lookup; the file "
                              "is read once per run)", keywords=None),
        "write": OperationSpec("write", "append one record (the default for send)", params=("record",),
                               changes_data=True, takes_batch=True),
    },
    open=open_file,
    default_write="write",
)

__all__ = ["FILE", "csv_cell"]
