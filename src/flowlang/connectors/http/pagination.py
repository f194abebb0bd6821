"""Pagination of list endpoints: the page, offset, cursor, link and next_url styles. Pages are
fetched when the loop needs them, so memory does not grow with the number of records."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urljoin

from flowlang.connectors.http.client import HttpClient
from flowlang.connectors.http.urls import host_of, query_names, with_query
from flowlang.errors import FlowRuntimeError
from flowlang.runtime.builtins.collections import path_get
from flowlang.runtime.operators import OperatorError, as_int
from flowlang.runtime.values import RecordStream, to_text, truthy, type_name

STYLES = ("page", "offset", "cursor", "link", "next_url")
LINK_NEXT = re.compile(r'<([^>]*)>\s*;[^,]*?\brel\s*=\s*"?next"?', re.IGNORECASE)


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
    max_pages: int = 1_000_000


PAGE_KEYS = tuple(f.name for f in fields(PageSpec))


def page_spec(value: Any) -> PageSpec:
    """Validate a pages: object; unknown keys and styles are errors that list what is allowed."""
    if isinstance(value, PageSpec):
        return value
    if not isinstance(value, Mapping):
        raise FlowRuntimeError(f"pages: must be an object like {{style: \"page\", size: 100}}, got "
                               f"{type_name(value)}", "connector")
    unknown = [k for k in value if k not in PAGE_KEYS]
    if unknown:
        raise FlowRuntimeError(f"pages: has no key {', '.join(repr(k) for k in unknown)} (keys: "
                               f"{', '.join(PAGE_KEYS)})", "connector")
    style = value.get("style")
    if style not in STYLES:
        raise FlowRuntimeError(f"pages: style must be one of {', '.join(STYLES)}, got {style!r}", "connector")
    args: dict[str, Any] = {}
    for key, raw in value.items():
        if raw is None:
            continue
        if key in ("size", "start", "max_pages"):
            try:
                args[key] = as_int(raw, f"pages: {key}")
            except OperatorError as e:
                raise FlowRuntimeError(e.message, "connector") from None
        else:
            args[key] = to_text(raw)
    if style == "cursor" and not args.get("cursor") and not args.get("cursor_field"):
        raise FlowRuntimeError('pages: style "cursor" needs cursor: the path of the next cursor in the answer '
                               '(or cursor_field: the field of the last record that is the next cursor)',
                               "connector")
    if style == "next_url" and not args.get("next"):
        raise FlowRuntimeError('pages: style "next_url" needs next: the path of the next URL in the answer',
                               "connector")
    return PageSpec(**args)


def records_of(body: Any, path: str | None, url: str) -> list[Any]:
    """The record list of one page."""
    found = path_get(body, path) if path else body
    if found is None:
        return []
    if isinstance(found, list):
        return found
    if isinstance(found, dict) and not path:
        keys = ", ".join(list(found)[:8])
        raise FlowRuntimeError(f"the answer of {url} is an object, not a list: say where its records are with "
                               f"records: (its fields: {keys})", "data")
    raise FlowRuntimeError(f"records: {path!r} of the answer of {url} is {type_name(found)}, not a list", "data")


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
        return RecordStream(self.pages, label)

    async def fetch(self, url: str) -> tuple[Any, dict[str, str]]:
        answer = await self.client.request(self.method, url, headers=self.headers, changes_data=False)
        return answer.value, (answer.response.headers if answer.response else {})

    def shown(self) -> str:
        return self.client.services.mask(self.url)

    async def pages(self) -> AsyncIterator[list[Any]]:
        spec = self.spec
        pager = {"page": self._numbered, "offset": self._offset, "cursor": self._cursor, "link": self._link,
                 "next_url": self._next_url}[spec.style]
        count = 0
        async for page in pager():
            count += 1
            yield page
            if count >= spec.max_pages:
                raise FlowRuntimeError(f"{self.shown()} gave more than {spec.max_pages} pages (max_pages)", "limit")

    def _sized(self, query: dict[str, Any], default_param: str) -> dict[str, Any]:
        if self.size is not None and not self.size_given:
            query[self.spec.size_param or default_param] = self.size
        return query

    def _short(self, records: list[Any], body: Any) -> bool:
        """The last page: `has_more` false in the body, or (without has_more) an empty or short page."""
        more = self._more(body)
        if more is not None:
            return not more or not records
        return not records or (self.size is not None and len(records) < self.size)

    def _more(self, body: Any) -> bool | None:
        """The body's `has_more` field (a missing or null one means no more pages), or None without one."""
        if not self.spec.has_more:
            return None
        return truthy(path_get(body, self.spec.has_more))

    async def _numbered(self) -> AsyncIterator[list[Any]]:
        page = self.spec.start
        while True:
            query = self._sized({**self.query, self.spec.page_param: page}, "per_page")
            body, _ = await self.fetch(with_query(self.url, query))
            records = records_of(body, self.spec.records, self.shown())
            yield records
            total = path_get(body, self.spec.total_pages) if self.spec.total_pages else None
            if self._short(records, body) or (isinstance(total, int) and page >= total):
                return
            page += 1

    async def _offset(self) -> AsyncIterator[list[Any]]:
        offset = 0
        while True:
            query = self._sized({**self.query, self.spec.offset_param: offset}, self.spec.limit_param)
            body, _ = await self.fetch(with_query(self.url, query))
            records = records_of(body, self.spec.records, self.shown())
            yield records
            total = path_get(body, self.spec.total) if self.spec.total else None
            offset += self.size if self.size is not None else len(records)
            if self._short(records, body) or (isinstance(total, int) and offset >= total):
                return

    async def _cursor(self) -> AsyncIterator[list[Any]]:
        cursor: Any = None
        seen: set[str] = set()
        while True:
            query = self._sized(dict(self.query), "limit")
            if cursor not in (None, ""):
                query[self.spec.cursor_param] = cursor
            body, _ = await self.fetch(with_query(self.url, query))
            records = records_of(body, self.spec.records, self.shown())
            yield records
            if self.spec.cursor_field:
                cursor = path_get(records[-1], self.spec.cursor_field) if records else None
            else:
                cursor = path_get(body, self.spec.cursor or "")
            if cursor in (None, "") or self._more(body) is False:
                return
            key = to_text(cursor)
            if key in seen:
                raise FlowRuntimeError(f"{self.shown()} gave the cursor {key!r} twice; stopping", "data")
            seen.add(key)

    async def _follow(self, first: str, next_of: Any) -> AsyncIterator[list[Any]]:
        url = first
        seen = {url}
        origin = host_of(first)
        while True:
            body, headers = await self.fetch(url)
            yield records_of(body, self.spec.records, self.shown())
            nxt = next_of(body, headers)
            if not nxt or self._more(body) is False:
                return
            nxt = to_text(nxt)
            if not nxt.startswith(("http://", "https://")):
                nxt = urljoin(url, nxt)
            if host_of(nxt) != origin:
                raise FlowRuntimeError(f"the next page of {self.shown()} is on another host ({host_of(nxt)}); "
                                       "not following it with this connection's credentials", "data")
            if nxt in seen:
                raise FlowRuntimeError(f"{self.shown()} links to a page it already gave; stopping", "data")
            seen.add(nxt)
            url = nxt

    def _link(self) -> AsyncIterator[list[Any]]:
        def next_of(body: Any, headers: dict[str, str]) -> str | None:
            m = LINK_NEXT.search(headers.get("link", ""))
            return m.group(1) if m else None
        return self._follow(with_query(self.url, self._sized(dict(self.query), "per_page")), next_of)

    def _next_url(self) -> AsyncIterator[list[Any]]:
        def next_of(body: Any, headers: dict[str, str]) -> Any:
            return path_get(body, self.spec.next or "")
        return self._follow(with_query(self.url, self._sized(dict(self.query), "per_page")), next_of)
