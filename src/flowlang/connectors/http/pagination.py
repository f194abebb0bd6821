"""Pagination of list endpoints: the page, offset, cursor, link and next_url styles. Pages are
fetched when the loop needs them, so memory does not grow with the number of records."""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any
from urllib.parse import urljoin

from flowlang.connectors.http.client import HttpClient
from flowlang.connectors.http.urls import (
    host_of,
    query_names,
    shown_host,
    with_query,
    with_secret_fields,
    without_secrets,
)
from flowlang.diagnostics import closest
from flowlang.errors import FlowRuntimeError, PagesRepeated
from flowlang.runtime.builtins.collections import path_get
from flowlang.runtime.jsoncodec import dumps
from flowlang.runtime.masking import cut, mask_value
from flowlang.runtime.operators import OperatorError, as_int
from flowlang.runtime.values import RecordStream, to_text, truthy, type_name

STYLES = ("page", "offset", "cursor", "link", "next_url")
MAX_PAGES = 10_000  # the default page cap of one list request; `max_pages` raises it
SNIPPET = 300  # characters of an answer shown in an error
# one link-value of a Link header (RFC 8288): <target>, then its parameters (a quoted value may hold ; and ,)
LINK_PARAM = r'\s*;\s*([^;,=\s]+)(?:\s*=\s*(?:"([^"]*)"|([^;,]*)))?'
LINK_VALUE = re.compile(rf"<([^>]*)>((?:{LINK_PARAM})*)")
LINK_PARAMS = re.compile(LINK_PARAM)


def next_link(header: str) -> str | None:
    """The target of the link whose rel is (or, as rel="next last", includes) next, or None."""
    for link in LINK_VALUE.finditer(header):
        for param in LINK_PARAMS.finditer(link.group(2)):
            if param.group(1).lower() == "rel":
                value = param.group(2) if param.group(2) is not None else (param.group(3) or "")
                if "next" in value.lower().split():
                    return link.group(1)
                break  # a link's first rel is its rel (RFC 8288 3.3)
    return None


@dataclass(frozen=True)
class PageSpec:
    """The `pages:` argument (or `pagination` of a connector file)."""

    style: str
    records: str | None = None
    page_param: str = "page"
    size_param: str | None = None
    size: int | None = None
    start: int = 1
    total_pages: str | None = None
    offset_param: str = "offset"
    limit_param: str = "limit"
    total: str | None = None
    cursor_param: str = "cursor"
    cursor: str | None = None
    cursor_field: str | None = None  # the next cursor is this field of the page's last record (Stripe)
    next: str | None = None
    has_more: str | None = None
    max_pages: int = MAX_PAGES


PAGE_KEYS = tuple(f.name for f in fields(PageSpec))


INT_KEYS = ("size", "start", "max_pages")
MAX_PAGE_SIZE = 100_000  # records a page: a page is held whole in memory, and APIs cap theirs at 100 to 10,000
MAX_PAGE_CAP = 100_000_000  # max_pages: at 100 records a page, ten billion records
MAX_START = 10**15  # the first page's number (or offset) as the http settings bound their numbers
# (lowest, highest, why the highest): a size of 0 read no record, of -5 lost 5 a page, and size = 10^23 made
# every page 'shorter than size', so a list stopped after its first page, without a word
BOUNDS = {
    "size": (1, MAX_PAGE_SIZE, "a page is read whole into memory, and no API answers pages that large "
                               "(most cap them at 100 to 10,000)"),
    "max_pages": (1, MAX_PAGE_CAP, "it is the cap that stops an API that answers pages without end"),
    "start": (0, MAX_START, "it is the number of the first page"),
}


def bound_problem(key: str, number: int) -> str | None:
    """What is wrong with a whole number given to size, max_pages or start (None: nothing)."""
    lowest, highest, why = BOUNDS[key]
    if number < lowest:
        kind = "a positive whole number" if lowest == 1 else "a whole number, 0 or more"
        return f"{key} must be {kind}, got {number}"
    if number > highest:
        return f"{key} must be at most {highest:,}, got {number:,}: {why}"
    return None


PARAM_KEYS = ("page_param", "size_param", "offset_param", "limit_param", "cursor_param")
UNKNOWN = object()  # a value known only at run time (page_problems checks its key, not the value)


@dataclass(frozen=True)
class PageProblem:
    """What is wrong with a pages: object: at a key (on_value: under its value), or of the whole."""

    message: str
    key: str | None = None
    on_value: bool = False
    hint: str | None = None


def page_problems(value: Mapping[str, Any]) -> list[PageProblem]:
    """Every problem of a pages: object (the one rule: page_spec at run time, the checker on a literal);
    values that are UNKNOWN are not judged."""
    problems = []
    meant_keys = set()  # a misspelt key counts as given below: one mistake, one problem
    for key in value:
        if key not in PAGE_KEYS:
            meant = closest(key, PAGE_KEYS)
            if meant is not None:
                meant_keys.add(meant)
            problems.append(PageProblem(f"pages: has no key {key!r}", key, False,
                                        f"did you mean '{meant}'?" if meant else f"keys: {', '.join(PAGE_KEYS)}"))
    style = value.get("style")
    if style is None:
        problems.append(PageProblem(f"pages: needs style: one of {', '.join(STYLES)}"))
    elif style is not UNKNOWN and style not in STYLES:
        meant = closest(style, STYLES) if isinstance(style, str) else None
        problems.append(PageProblem(f"pages: style must be one of {', '.join(STYLES)}, got {style!r}", "style", True,
                                    f"did you mean '{meant}'?" if meant else None))
    for key in INT_KEYS:
        raw = value.get(key)
        if raw is not None and raw is not UNKNOWN:
            try:
                number = as_int(raw, f"pages: {key}")
            except OperatorError as e:
                problems.append(PageProblem(e.message, key, True))
                continue
            problem = bound_problem(key, number)
            if problem is not None:
                problems.append(PageProblem(f"pages: {problem}", key, True))
    for key, raw in value.items():  # a path or a name: has_more: true stopped a list after its first page
        if key in PAGE_KEYS and key != "style" and key not in INT_KEYS and raw is not None and raw is not UNKNOWN \
                and not isinstance(raw, str):
            what = "the name of a query parameter" if key in PARAM_KEYS else "the dotted path of a field in the answer"
            problems.append(PageProblem(f"pages: {key} must be a text ({what}), got {type_name(raw)}", key, True,
                                        f'for example {key}: "{key}"' if key == "has_more" else None))
    given = {k for k, v in value.items() if v is not None} | meant_keys
    if style == "cursor" and not given & {"cursor", "cursor_field"}:
        problems.append(PageProblem('pages: style "cursor" needs cursor: the path of the next cursor in the answer '
                                    '(or cursor_field: the field of the last record that is the next cursor)',
                                    "style", True))
    if style == "next_url" and "next" not in given:
        problems.append(PageProblem('pages: style "next_url" needs next: the path of the next URL in the answer',
                                    "style", True))
    return problems


def page_spec(value: Any) -> PageSpec:
    """Validate a pages: object; unknown keys and styles are errors that list what is allowed."""
    if isinstance(value, PageSpec):
        return value
    if not isinstance(value, Mapping):
        raise FlowRuntimeError(f"pages: must be an object like {{style: \"page\", size: 100}}, got "
                               f"{type_name(value)}", "connector")
    problems = page_problems(value)
    if problems:
        first = problems[0]
        raise FlowRuntimeError(first.message + (f"; {first.hint}" if first.hint else ""), "connector")
    args: dict[str, Any] = {}
    for key, raw in value.items():
        if raw is None:
            continue
        args[key] = as_int(raw, f"pages: {key}") if key in INT_KEYS else to_text(raw)
    return PageSpec(**args)


def records_of(body: Any, path: str | None, url: str, mask: Callable[[str], str] = str) -> list[Any]:
    """The record list of one answer (a page, or the answer of a list operation): the body, or the
    list at the dotted `records` path. Anything else (an error object in a 200 answer, a path the
    answer does not have) is an error with the URL and the start of the answer, never records made
    of an object's keys or an empty list that hides the answer."""
    if body is None or body == "":
        return []
    found = path_get(body, path) if path else body
    if isinstance(found, list):
        return found
    if found is None and path and has_path(body, path):
        return []  # the path is there and null: no records
    shown = cut(dumps(mask_value(body, mask)), SNIPPET, mask)
    if not path:
        hint = (f"; if its records are in a field, say where with records: (its fields: "
                f"{', '.join(list(found)[:8])})") if isinstance(found, dict) else ""
        raise FlowRuntimeError(f"the answer of {url} is {type_name(found)}, not a list of records{hint}: {shown}",
                               "data")
    if found is None:
        raise FlowRuntimeError(f"the answer of {url} has no {path!r} (records:), so it holds no list of records: "
                               f"{shown}", "data")
    raise FlowRuntimeError(f"records: {path!r} of the answer of {url} is {type_name(found)}, not a list: {shown}",
                           "data")


def empty_answer(body: Any, status: int, url: str) -> str | None:
    """What is wrong with a list request's 2xx answer that has no body, or None: 204 No Content is a list
    of no records; any other (a 200 cut off, a proxy's empty answer) is no list at all, and reading it as
    none lost the list unseen."""
    if (body is None or body == "") and status != 204:
        return (f"{url} answered {status} with an empty body, not a list of records (an API with no records "
                "answers [] or 204 No Content)")
    return None


def has_path(value: Any, path: str) -> bool:
    """Whether a dotted path names a field that is there (even if null)."""
    *parents, last = path.split(".")
    holder = path_get(value, ".".join(parents)) if parents else value
    return type(holder) is dict and last in holder


def checkpoint_int(start: dict[str, Any], name: str) -> int:
    try:
        return as_int(start.get(name), f"a checkpoint's {name}")
    except OperatorError as e:
        raise FlowRuntimeError(e.message, "data") from None


class Paginator:
    """Fetches the pages of one list request."""

    def __init__(self, client: HttpClient, method: str, url: str, query: Mapping[str, Any] | None,
                 headers: Mapping[str, Any] | None, spec: PageSpec) -> None:
        self.client = client
        self.method = method
        self.url = url
        self.query = dict(query or {})
        self.headers = headers
        self.spec = spec
        self.size = spec.size
        self.size_given = False
        given = query_names(url).get(self.size_name())
        if given is not None:  # the flow's own page size replaces the connector's default
            self.size_given = True
            self.size = int(given) if given.isdigit() and int(given) > 0 else None

    def size_name(self) -> str:
        defaults = {"page": "per_page", "offset": self.spec.limit_param, "cursor": "limit"}
        return self.spec.size_param or defaults.get(self.spec.style, "per_page")

    def stream(self, label: str) -> RecordStream:
        return RecordStream(self.pages, label, self.cursor_pages, self.source())

    def source(self) -> str:
        """The request this stream reads (masked): a checkpoint is only resumed against the same one."""
        query = self._sized(dict(self.query), self.size_name())
        return self.client.services.mask(f"{self.method} {with_query(self.url, query)}")

    async def fetch(self, url: str) -> tuple[Any, dict[str, str]]:
        answer = await self.client.request(self.method, url, headers=self.headers, changes_data=False)
        empty = empty_answer(answer.value, answer.response.status, self.shown()) if answer.response else None
        if empty is not None:
            raise FlowRuntimeError(f"{empty}; pagination stops here", "data")
        return answer.value, (answer.response.headers if answer.response else {})

    def shown(self) -> str:
        return self.client.services.mask(self.url)

    async def pages(self) -> AsyncIterator[list[Any]]:
        async for records, _, _ in self.cursor_pages(None):
            yield records

    async def cursor_pages(self, start: Any) -> AsyncIterator[tuple[list[Any], Any, Any]]:
        """The pages from `start` (a cursor this paginator gave, or None for the first page), each with
        the cursor of its request and of the next page's (None after the last)."""
        spec = self.spec
        pager = {"page": self._numbered, "offset": self._offset, "cursor": self._cursor, "link": self._link,
                 "next_url": self._next_url}[spec.style]
        if start is not None and not (type(start) is dict and set(start) <= {"page", "offset", "cursor", "url"}):
            raise FlowRuntimeError(f"the checkpoint of {self.shown()} is not a cursor of this list: {start!r}", "data")
        count = 0
        seen: dict[bytes, int] = {}  # digest of a page's records -> its number
        async for page in pager(start):
            count += 1
            if page[0]:
                digest = hashlib.blake2b(dumps(page[0]).encode(), digest_size=16).digest()
                first = seen.setdefault(digest, count)
                if first != count:
                    raise PagesRepeated(f"{self.shown()}: page {count} holds the same records as page {first}; "
                                        "the API repeats a page, so pagination stops here")
            yield page
            if count >= spec.max_pages and page[2] is not None:  # a next page to fetch (the last page is no excess)
                raise FlowRuntimeError(f"{self.shown()} gave more than {spec.max_pages} "
                                       f"page{'s' if spec.max_pages != 1 else ''}; stopping (raise the "
                                       "cap with max_pages: in pages: or the connector's pagination)", "limit")

    def _sized(self, query: dict[str, Any], default_param: str) -> dict[str, Any]:
        if self.size is not None and not self.size_given:
            query[self.spec.size_param or default_param] = self.size
        return query

    def _short(self, records: list[Any], body: Any, counted_more: bool = False) -> bool:
        """The last page: `has_more` false in the body, or (without has_more) an empty or short page. A
        short page is not the last while the answer's total (`total`, `total_pages`) counts more
        (`counted_more`): an API that caps the page size below `size` answers every page short."""
        more = self._more(body)
        if more is not None:
            return not more or not records
        return not records or (self.size is not None and len(records) < self.size and not counted_more)

    def _more(self, body: Any) -> bool | None:
        """The body's `has_more` field (a null one means no more pages), or None without one. A field the
        answer does not have is an error: read as false, a misspelt path ended every list after its first
        page, losing the rest without a word."""
        path = self.spec.has_more
        if not path:
            return None
        if not has_path(body, path):
            shown = cut(dumps(mask_value(body, self.client.services.mask)), SNIPPET, self.client.services.mask)
            raise FlowRuntimeError(f"the answer of {self.shown()} has no {path!r} (has_more:), so it cannot say "
                                   f"whether more pages follow; pagination stops here: {shown}", "data")
        return truthy(path_get(body, path))

    def _check_empty(self, records: list[Any], body: Any, which: str) -> None:
        """An empty page while `has_more` is true: the page and offset styles cannot go on (an empty page
        ends them, and the offset would not move), and ending quietly would lose the records the API says
        are left, so the read fails after the records already read (as a cursor style without a next cursor)."""
        if not records and self._more(body):
            raise FlowRuntimeError(f"{self.shown()}: the answer says there are more records ({self.spec.has_more}: "
                                   f"true) but {which} is empty; pagination stops here", "data")

    async def _numbered(self, start: Any) -> AsyncIterator[tuple[list[Any], Any, Any]]:
        page = self.spec.start if start is None else checkpoint_int(start, "page")
        while True:
            query = self._sized({**self.query, self.spec.page_param: page}, "per_page")
            body, _ = await self.fetch(with_query(self.url, query))
            records = records_of(body, self.spec.records, self.shown(), self.client.services.mask)
            total, bad = whole_total(body, self.spec.total_pages, "total_pages", records)
            done = isinstance(total, int) and page >= total
            last = self._short(records, body, isinstance(total, int) and not done) or done
            yield records, {"page": page}, None if last else {"page": page + 1}
            if bad is not None:
                raise FlowRuntimeError(f"{self.shown()}: {bad}; pagination stops here", "data")
            if not done:
                self._check_empty(records, body, f"page {page}")
            if last:
                return
            page += 1

    async def _offset(self, start: Any) -> AsyncIterator[tuple[list[Any], Any, Any]]:
        offset = 0 if start is None else checkpoint_int(start, "offset")
        while True:
            query = self._sized({**self.query, self.spec.offset_param: offset}, self.spec.limit_param)
            body, _ = await self.fetch(with_query(self.url, query))
            records = records_of(body, self.spec.records, self.shown(), self.client.services.mask)
            total, bad = whole_total(body, self.spec.total, "total", records)
            at = offset
            # the records it gave: an API that caps the page size below `size` gives fewer, and
            # offset + size would skip the rest of them
            offset += len(records) if records or self.size is None else self.size
            done = isinstance(total, int) and offset >= total
            last = self._short(records, body, isinstance(total, int) and not done) or done
            yield records, {"offset": at}, None if last else {"offset": offset}
            if bad is not None:
                raise FlowRuntimeError(f"{self.shown()}: {bad}; pagination stops here", "data")
            if not done:
                self._check_empty(records, body, f"the page at offset {at}")
            if last:
                return

    async def _cursor(self, start: Any) -> AsyncIterator[tuple[list[Any], Any, Any]]:
        cursor: Any = None if start is None else start.get("cursor")
        seen: set[str] = set()
        while True:
            query = self._sized(dict(self.query), "limit")
            if cursor not in (None, ""):
                query[self.spec.cursor_param] = cursor
            body, _ = await self.fetch(with_query(self.url, query))
            records = records_of(body, self.spec.records, self.shown(), self.client.services.mask)
            at = cursor
            if self.spec.cursor_field:
                cursor = path_get(records[-1], self.spec.cursor_field) if records else None
            else:
                cursor = path_get(body, self.spec.cursor or "")
            more = self._more(body)
            last = cursor in (None, "") or no_cursor(cursor) or more is False
            if not last and (type(cursor) is bool or not isinstance(cursor, (str, int, Decimal))):
                # true or an object: no cursor (true was sent as cursor=true, an object as its JSON text)
                yield records, {"cursor": at}, None
                where = f"the field {self.spec.cursor_field!r} of the page's last record" if self.spec.cursor_field \
                    else f"the answer's cursor ({self.spec.cursor!r})"
                raise FlowRuntimeError(f"{self.shown()}: {where} is {type_name(cursor)} "
                                       f"{self.client.services.mask(dumps(cursor))[:80]!r}, not a text or a number; "
                                       "pagination stops here", "data")
            yield records, {"cursor": at}, None if last else {"cursor": cursor}
            if last and more:  # the API says there is more, but not where: ending here would lose it unseen
                where = f"the field {self.spec.cursor_field!r} of the page's last record" if self.spec.cursor_field \
                    else f"{self.spec.cursor!r}"
                raise FlowRuntimeError(f"{self.shown()}: the answer says there are more records ({self.spec.has_more}: "
                                       f"true) but gives no next cursor ({where} is missing or empty); "
                                       "pagination stops here", "data")
            if last:
                return
            key = to_text(cursor)
            if key in seen:
                raise PagesRepeated(f"{self.shown()} gave the cursor {key!r} twice; the API repeats a "
                                    "cursor, so pagination stops here")
            seen.add(key)

    async def _follow(self, first: str, next_of: Any, start: Any) -> AsyncIterator[tuple[list[Any], Any, Any]]:
        origin = host_of(first)
        url = first
        if start is not None:
            url = to_text(start.get("url"))
            host = self._host(url, "the checkpoint of")
            if host != origin:  # a checkpoint is data in the store: never follow it elsewhere
                raise FlowRuntimeError(f"the checkpoint of {self.shown()} points at another host ({shown_host(host)}); "
                                       "not following it with this connection's credentials", "data")
            url = self._with_secret_params(url)
        seen = {url}
        while True:
            body, headers = await self.fetch(url)
            records = records_of(body, self.spec.records, self.shown(), self.client.services.mask)
            nxt = next_of(body, headers)
            more = self._more(body)
            last = not nxt or more is False
            if not last and type(nxt) is not str:  # a number, an object: no URL (17 was followed to /17)
                yield records, {"url": self._kept(url)}, None
                raise FlowRuntimeError(f"{self.shown()}: the answer's next page ({self.spec.next!r}) is "
                                       f"{type_name(nxt)} {self.client.services.mask(to_text(nxt))[:80]!r}, not a URL; "
                                       "pagination stops here", "data")
            if not last:
                nxt = to_text(nxt)
                if not nxt.startswith(("http://", "https://")):
                    with contextlib.suppress(ValueError):  # "//[zz/x": said by _host below, once the page is used
                        nxt = urljoin(url, nxt)
            # a checkpoint keeps these: never a secret the URL holds (an api_key=... the API repeats)
            yield records, {"url": self._kept(url)}, None if last else {"url": self._kept(nxt)}
            if last and more:  # the API says there is more, but not where: ending here would lose it unseen
                where = "no Link header with rel=\"next\"" if self.spec.style == "link" else \
                    f"{self.spec.next!r} is missing or empty"
                raise FlowRuntimeError(f"{self.shown()}: the answer says there are more records ({self.spec.has_more}: "
                                       f"true) but gives no next page ({where}); pagination stops here", "data")
            if last:
                return
            host = self._host(nxt, "the next page of")
            if host != origin:
                raise FlowRuntimeError(f"the next page of {self.shown()} is on another host ({shown_host(host)}); "
                                       "not following it with this connection's credentials", "data")
            if nxt in seen:
                raise PagesRepeated(f"{self.shown()} gives {self.client.services.mask(nxt)} as the next page "
                                    "again; the API repeats a next URL, so pagination stops here")
            seen.add(nxt)
            url = nxt

    def _kept(self, url: str) -> str:
        try:
            return without_secrets(url, self.client.services.mask)
        except ValueError:  # not a URL ("//[zz/x"): said by _host once its page is used; masked meanwhile
            return self.client.services.mask(url)

    def _with_secret_params(self, url: str) -> str:
        """A checkpoint's URL with the request's own parameters that hold a secret put back (a checkpoint
        keeps none: _kept); the auth's are put back by the client on every request."""
        request = with_query(self.url, self.query) if self.query else self.url
        return with_secret_fields(url, request, self.client.services.mask)

    def _host(self, url: str, whose: str) -> str:
        """The scheme and host of a next page's URL; one urlsplit cannot read ("http://[::1", an API's
        broken Link header) stops the list with a data error, the URL not shown (it may hold a token)."""
        try:
            host = host_of(url)
        except ValueError as e:  # was an internal error, and a relative one lost the page it came with
            raise FlowRuntimeError(f"{whose} {self.shown()} is not a URL ({e}); pagination stops here",
                                   "data") from None
        scheme = host.partition("://")[0]
        if scheme not in ("http", "https"):  # javascript:, file:, ftp: was said to be 'another host'
            raise FlowRuntimeError(f"{whose} {self.shown()} is a {scheme[:20]}: URL, not an http(s) one; "
                                   "pagination stops here", "data")
        return host

    def _link(self, start: Any) -> AsyncIterator[tuple[list[Any], Any, Any]]:
        def next_of(body: Any, headers: dict[str, str]) -> str | None:
            return next_link(headers.get("link", ""))
        return self._follow(with_query(self.url, self._sized(dict(self.query), "per_page")), next_of, start)

    def _next_url(self, start: Any) -> AsyncIterator[tuple[list[Any], Any, Any]]:
        def next_of(body: Any, headers: dict[str, str]) -> Any:
            return path_get(body, self.spec.next or "")
        return self._follow(with_query(self.url, self._sized(dict(self.query), "per_page")), next_of, start)


def whole_total(body: Any, path: str | None, key: str, records: list[Any]) -> tuple[int | None, str | None]:
    """The answer's count at `path` (total or total_pages) as a whole number: a number, or a text of
    digits (APIs that give their counts as text, "250"); else None and what it holds instead (a total
    of "lots" was ignored, and the list read on to the page cap; one of -1, or 0 beside the page's
    records, ended the list after its first page, the rest never read)."""
    if not path:
        return None, None
    value = path_get(body, path)
    if value is None:
        return None, None
    count: int | None = None
    if type(value) is int:
        count = value
    elif isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        count = int(value)
    elif type(value) is str and value.strip().isdigit():
        count = int(value.strip())
    if count is None:
        return None, f"the answer's {key} ({path!r}) is {type_name(value)} {to_text(value)[:40]!r}, not a whole number"
    if count < 0:
        return None, f"the answer's {key} ({path!r}) is {count}, not a count of 0 or more"
    if count == 0 and records:
        return None, (f"the answer's {key} ({path!r}) is 0, but its page holds {len(records)} "
                      f"record{'s' if len(records) != 1 else ''}")
    return count, None


def no_cursor(cursor: Any) -> bool:
    """A next cursor of 0 (or "0") says there is none, as Twitter-style APIs end a list: following it
    would read the first page again."""
    return (type(cursor) is int and cursor == 0) or cursor == "0" or (isinstance(cursor, Decimal) and cursor == 0)
