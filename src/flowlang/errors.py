"""The FlowError family: every error flowlang raises to its callers. All are pickle-safe."""

from __future__ import annotations

from typing import Any

from flowlang.diagnostics import BROKEN_TEXT, Diagnostic, is_broken_text, render_all, render_block
from flowlang.source import Source, Span


def _restore(cls: type[FlowError], state: dict[str, Any]) -> FlowError:
    err = cls.__new__(cls)
    Exception.__init__(err, state.get("message", ""))
    err.__dict__.update(state)
    return err


class FlowError(Exception):
    """Base of every error flowlang raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (type(self), dict(self.__dict__)))

    def render(self) -> str:
        return f"error: {self.message}"


class ScriptError(FlowError):
    """A mistake in a script, found before anything runs."""

    def __init__(self, diagnostics: list[Diagnostic] | tuple[Diagnostic, ...]) -> None:
        self.diagnostics = tuple(diagnostics)
        first = self.diagnostics[0].headline() if self.diagnostics else "invalid script"
        super().__init__(first)

    def render(self) -> str:
        return render_all(self.diagnostics)


class FlowSyntaxError(ScriptError):
    """The text is not valid flowlang. `incomplete` is true when more input could complete it."""

    def __init__(self, diagnostics: list[Diagnostic] | tuple[Diagnostic, ...], incomplete: bool = False) -> None:
        super().__init__(diagnostics)
        self.incomplete = incomplete


class CheckError(ScriptError):
    """The script parses, but names, connectors, operations or arguments are wrong."""


class UsageError(FlowError):
    """The flow was started wrongly: a missing or unknown parameter, a bad option or input file."""


class StoreError(FlowError):
    """The state folder or its database cannot be used (permissions, a full disk, a damaged file)."""


class LockedError(FlowError):
    """Another run of the same flow holds the lock."""


class FlowRuntimeError(FlowError):
    """An error while a flow runs, with the place in the script where it happened.

    `kind` is what `on error as e` sees as `e.kind`: fail, type, value, http, connector, data,
    limit, name or internal.
    """

    def __init__(
        self,
        message: str,
        kind: str = "value",
        *,
        status: int | None = None,
        body: Any = None,
        source: Source | None = None,
        span: Span | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.body = body
        self.source = source
        self.span = span

    # the request was sent and may have reached the destination, and repeating it could make a duplicate:
    # no answer said it did not arrive (a timeout or a connection lost after sending, a gateway's 502, 503
    # or 504 to a POST without an idempotency key). A `send ... once` keeps its key pending then.
    uncertain = False
    # the record fails and the run ends too: every later record would fail alike (DiskFull,
    # CredentialsRefused)
    ends_run = False

    def located(self, source: Source, span: Span) -> FlowRuntimeError:
        """Attach a position unless the error already has one (the innermost place wins)."""
        if self.span is None:
            self.source = source
            self.span = span
        return self

    @property
    def line(self) -> int | None:
        if self.source is None or self.span is None:
            return None
        return self.source.line_col(self.span.start)[0]

    @property
    def location(self) -> str | None:
        if self.source is None or self.span is None:
            return None
        return self.source.location(self.span)

    def render(self) -> str:
        if self.source is None or self.span is None:
            return f"error: {self.message}"
        return render_block(f"{self.location}: error: {self.message}", self.source, self.span)


class LimitError(FlowRuntimeError):
    """A run went past one of its limits (loop iterations, recursion, value size, time)."""

    def __init__(self, message: str, **kw: Any) -> None:
        super().__init__(message, "limit", **kw)


class DiskFull(FlowRuntimeError):
    """No room to write a file (a full disk, a quota, a file size limit): the record being written fails
    and the run ends (every later write would fail alike); the file holds whole records only."""

    ends_run = True

    def __init__(self, message: str) -> None:
        super().__init__(message, "connector")


class OutOfMemory(LimitError):
    """The process could get no more memory (`ulimit -v`, a container's limit, the machine's) while a
    statement built a value: the record fails at that statement's line, and the run goes on when the
    memory came back (else it ends; outside a loop the run fails)."""

    def __init__(self, message: str = "", source: Source | None = None, span: Span | None = None) -> None:
        super().__init__(message or "out of memory: the process could get no more memory while this built a value "
                         "(a limit such as ulimit -v or a container's, or the machine's memory)",
                         source=source, span=span)


# Room that the handling of a MemoryError needs (keeping the failed record, logging, recording the job):
# address space held by an anonymous mapping never written to, so it costs no RAM, given back when the
# memory runs out and taken again once it came back.
MEMORY_RESERVE_BYTES = 16 * 1024 * 1024
_reserve: list[Any] = []


def keep_memory_reserve() -> bool:
    """Hold the reserve (again); False when there is no room for it: the memory did not come back."""
    if _reserve:
        return True
    import mmap

    try:
        _reserve.append(mmap.mmap(-1, MEMORY_RESERVE_BYTES))
    except (OSError, MemoryError, ValueError):
        return False
    return True


def out_of_memory(err: MemoryError) -> OutOfMemory:
    """The MemoryError as an OutOfMemory at the innermost place of the flow its traceback shows (a
    compiled statement or call keeps its place as a `where`, or `self.where`; a generated expression
    as the global `_where`), with the reserve given
    back. The traceback and the exceptions chained to it are dropped: their frames hold the partly
    built value, and the memory it takes is what the failed record must now be kept with."""
    while _reserve:
        _reserve.pop().close()
    source: Source | None = None
    span: Span | None = None
    tb = err.__traceback__
    while tb is not None:
        place = _place_in(tb.tb_frame.f_locals) or _place_in({"where": tb.tb_frame.f_globals.get("_where")})
        if place is not None:
            source, span = place
        tb = tb.tb_next
    err.__traceback__ = None
    context = err.__context__
    while context is not None:
        context.__traceback__ = None
        context = context.__context__
    err.__context__ = None
    return OutOfMemory(source=source, span=span)


def _place_in(names: dict[str, Any]) -> tuple[Source, Span] | None:
    for holder in (names.get("where"), getattr(names.get("self"), "where", None)):
        source, span = getattr(holder, "source", None), getattr(holder, "span", None)
        if isinstance(source, Source) and isinstance(span, Span):
            return source, span
    return None


class Interrupted(FlowRuntimeError):
    """The run was asked to stop (SIGTERM, Ctrl-C): in-flight records finished, no new ones started."""

    def __init__(self, message: str = "stopped on request; in-flight records finished") -> None:
        super().__init__(message, "interrupted")


class ResumeRefused(FlowRuntimeError):
    """`--resume` of a loop that now reads another request than its checkpoint was taken on: the run
    fails, and is not one to resume (the same refusal would come again)."""


class PagesRepeated(FlowRuntimeError):
    """An API that gives a page, a cursor or a next URL again: pagination stops, and the run is not one to
    resume (its checkpoint is the repeated page's request, so a resume would read the pages again)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"{message} (--resume would read the repeated pages again, so this run is not one to "
                         "resume)", "data")


class HttpError(FlowRuntimeError):
    """An HTTP answer that is an error, or a 2xx answer that is not what was promised."""

    def __init__(self, message: str, *, status: int | None, method: str, url: str, body: Any = None) -> None:
        super().__init__(message, "http", status=status, body=body)
        self.method = method
        self.url = url


class CredentialsRefused(HttpError):
    """A connection whose every request of the run so far was answered 401 (a revoked or wrong token):
    the record being sent fails, and the run ends rather than send every later record to the same
    refusal (under a rate limit, hours of them)."""

    ends_run = True


class LedgerKeyChanged(FlowRuntimeError):
    """A `send ... once` (or `if changed`) whose key is made by another expression than the ledger's entries
    for its destination were (the loop's `key` was added or changed since): no entry would match, and every
    record sent before would be sent again. The record fails and the run ends before that send sends anything."""

    ends_run = True

    def __init__(self, message: str) -> None:
        super().__init__(message, "connector")


class InternalError(FlowError):
    """A bug in flowlang itself; the message asks to report it."""


def internal_error(err: BaseException) -> FlowRuntimeError:
    """An exception flowlang did not expect, as a run error of kind `internal` (the original is its
    __cause__, for --debug): a failed record or a failed run, never an exception that escapes a run.
    Lone surrogates that reach an encoder (a URL, a header, a hash of the text) are the data's fault;
    a MemoryError is the run's memory running out (OutOfMemory), not a bug."""
    if isinstance(err, MemoryError):
        return out_of_memory(err)
    if isinstance(err, UnicodeEncodeError) and is_broken_text(err):
        error = FlowRuntimeError(f"cannot encode {err.object[err.start:err.end]!r} as {err.encoding} text: "
                                 f"{BROKEN_TEXT}", "data")
        error.__cause__ = err
        return error
    error = FlowRuntimeError(f"internal error ({type(err).__name__}: {err}); this is a bug in flowlang, "
                             "please report it", "internal")
    error.__cause__ = err
    return error


class MissingSecretError(FlowRuntimeError):
    """A secret no provider has. Outside a loop it ends the run as a usage mistake (exit 2: set the
    secret and run again); inside one it fails the record (kept, to retry once it is set)."""
