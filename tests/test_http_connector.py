"""The http connector against a real server on 127.0.0.1: requests, lookups, sends, path encoding,
pagination, retries, rate limits, auth, errors, dry runs and redirects."""

from __future__ import annotations

import base64
import logging
import socket
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from typing import Any

import pytest

import flowlang
from fakeapi import FakeApi, RateLimited, Request, paged

ORDERS = [{"id": i, "total": Decimal(f"{i}.50")} for i in range(1, 6)]


def run(text: str, api: FakeApi, **kw: Any) -> flowlang.Result:
    flow = flowlang.compile(text, name="t.flow", bindings=())
    return flow.run(env={"API": api.url}, **kw)


def test_call_lookup_send_and_404_is_null() -> None:
    with FakeApi({"orders": ORDERS[:2], "customers": [{"id": 7, "email": "a@x"}]}) as api:
        result = run("""
use api = http(base_url: env.API)
call api.get("/orders") as orders
for each o in orders
  lookup api.get("/customers", query: {email: "a@x"}) as c
  send {order: o.id, customer: c.id} to api.post("/invoices") as created
  emit created
end
lookup api.get('/customers/{id}', id: 999) as nobody
emit {nobody: nobody}
""", api)
        assert result.ok, result.error
        assert result.outputs == [{"order": 1, "customer": 7, "id": 1001}, {"order": 2, "customer": 7, "id": 1002},
                                  {"nobody": None}]
        assert api.count("GET", "/customers") == 1  # the identical lookup is answered from the cache
        assert api.requests[-2].body == {"order": 2, "customer": 7}
        assert api.requests[-2].headers["content-type"] == "application/json"


def test_decimals_travel_exactly() -> None:
    with FakeApi({"prices": [{"id": 1, "amount": Decimal("0.10")}]}) as api:
        result = run('use api = http(base_url: env.API)\ncall api.get("/prices/1") as p\n'
                     'send {total: p.amount * 3} to api.post("/totals")\nemit p.amount + 0.20', api)
        assert result.outputs == [Decimal("0.30")]
        assert api.requests[-1].raw == b'{"total":0.30}'


def test_datetimes_go_out_in_iso_8601_on_their_own_clock_and_dates_and_durations_too() -> None:
    """What docs/connectors.md says a datetime becomes in a query, a JSON body and a form: its instant
    in ISO 8601 on its own clock (Z for UTC, six fraction digits when it has a fraction; the + of an
    offset %-encoded in a query), a date as YYYY-MM-DD, a duration in ISO 8601."""
    with FakeApi() as api:
        api.route("GET", r"^/q$", lambda req: (200, {}, {}))
        api.route("POST", r"^/[bf]$", lambda req: (200, {}, {}))
        result = run('use api = http(base_url: env.API)\n'
                     'let d = to_zone("2024-11-03T06:30:00.5Z", "Asia/Kolkata")\n'
                     'let v = {since: d, utc: datetime("2024-11-03T06:30:00Z"), day: date(d), lag: minutes(10)}\n'
                     'call api.get("/q", query: v) as q\ncall api.post("/b", body: v) as b\n'
                     'call api.post("/f", form: v) as f\n', api)
        assert result.ok, result.error
        query, body, form = (r.raw if r.method == "POST" else r.query_string.encode() for r in api.requests)
    sent = ("since=2024-11-03T12%3A00%3A00.500000%2B05%3A30&utc=2024-11-03T06%3A30%3A00Z&day=2024-11-03"
            "&lag=PT10M")
    assert query.decode() == sent and form.decode() == sent
    assert body == (b'{"since":"2024-11-03T12:00:00.500000+05:30","utc":"2024-11-03T06:30:00Z",'
                    b'"day":"2024-11-03","lag":"PT10M"}')


def test_path_values_are_one_encoded_segment() -> None:
    with FakeApi({"customers": []}) as api:
        run("""
use api = http(base_url: env.API)
let cid = "a/b?c#d"
lookup api.get("/customers/{cid}") as one
lookup api.get('/customers/{id}/x', id: "x y") as two
""", api)
        paths = [r.path for r in api.requests]
        assert paths == ["/customers/a%2Fb%3Fc%23d", "/customers/x%20y/x"]


@pytest.mark.parametrize("value", [".", ".."])
def test_dot_segments_are_encoded_not_followed(value: str) -> None:
    with FakeApi({"customers": []}) as api:
        run(f"""
use api = http(base_url: env.API)
let cid = "{value}"
lookup api.get("/customers/{{cid}}/orders") as one
lookup api.get('/customers/{{id}}/orders', id: "{value}") as two
""", api)
        encoded = "%2E" * len(value)
        assert [r.path for r in api.requests] == [f"/customers/{encoded}/orders"] * 2


def test_unknown_template_argument_is_an_error() -> None:
    with FakeApi() as api:
        # a path known only as the run goes (a constant one is a check error: tests/test_newcomer_mistakes.py)
        result = run('use api = http(base_url: env.API)\nlet p = "/x"\ncall api.get(p, idd: 1)', api)
        assert result.error is not None and "has no {idd} to fill" in result.error.message
        assert api.requests == []


@pytest.mark.parametrize(("style", "pages", "requests"), [
    ('{style: "page", size: 2, records: "data"}', "page", 3),
    ('{style: "page", records: "data", total_pages: "total_pages"}', "page", 3),
    ('{style: "offset", size: 2, records: "items"}', "offset", 3),
    ('{style: "offset", size: 2, records: "items", total: "total"}', "offset", 3),
    ('{style: "cursor", cursor: "next_cursor", size_param: "limit", size: 2, records: "results"}', "cursor", 3),
    ('{style: "link"}', "link", 3),
    ('{style: "next_url", next: "next", records: "records"}', "next_url", 3),
])
def test_pagination_styles(style: str, pages: str, requests: int) -> None:
    with FakeApi() as api:
        api.route("GET", "/orders", lambda req: paged(ORDERS, req, pages, api.url))
        result = run(f'use api = http(base_url: env.API)\ncall api.get("/orders", pages: {style}) as s\n'
                     "for each o in s\n  emit o.id\nend\n", api)
        assert result.outputs == [1, 2, 3, 4, 5], result.error
        assert api.count("GET", "/orders") == requests


@pytest.mark.parametrize("pages", ['{style: "offset", size: 5, records: "items", total: "total"}',
                                   '{style: "page", size: 5, records: "data", total_pages: "total_pages"}'])
def test_an_api_that_caps_the_page_size_loses_no_record_when_its_total_counts_more(pages: str) -> None:
    # the flow asks for 5 a page, the API gives at most 2 (as many APIs cap their limit) and counts the
    # rest in its total: before, the first short page ended the list (2 of 5 records sent, no error),
    # and offset + 5 would have skipped records 3 to 5
    def capped(req: Request) -> tuple[int, dict[str, str], Any]:
        req.query.update({k: str(min(int(req.query[k]), 2)) for k in ("limit", "per_page") if k in req.query})
        return paged(ORDERS, req, "offset" if "offset" in pages else "page", api.url)

    with FakeApi() as api:
        api.route("GET", "/orders", capped)
        api.route("POST", "/copies", lambda req: (201, {}, {}))
        result = run(f'use api = http(base_url: env.API)\ncall api.get("/orders", pages: {pages}) as s\n'
                     'for each o in s\n  send o to api.post("/copies")\nend\n', api)
        assert result.ok, result.error
        assert sorted(r.body["id"] for r in api.requests if r.path == "/copies") == [1, 2, 3, 4, 5]
        assert api.count("GET", "/orders") == 3


def test_a_link_header_is_read_by_its_rel_values() -> None:
    # RFC 8288: rel may hold several values (`rel="next last"` on the page before the last one): before, that
    # next link was not seen and the list ended there, losing page 3 unsaid; `rel="nextpage"` was taken for
    # next, and `title="next"` of a rel="last" link too
    def page(req: Request) -> tuple[int, dict[str, str], Any]:
        n = int(req.query.get("page", 1))
        links = {1: f'<{api.url}/o?page=9>; rel="nextpage", <{api.url}/o?page=2>; rel="next"',
                 2: f'<{api.url}/o?page=1>; rel="prev first", <{api.url}/o?page=3>; rel="next last"',
                 3: f'<{api.url}/o?page=1>; rel="first"; title="next", <{api.url}/o?page=9>; rel=last'}
        return 200, {"Link": links.get(n, "")}, [{"id": n}]

    with FakeApi() as api:
        api.route("GET", "/o", page)
        result = run('use api = http(base_url: env.API)\ncall api.get("/o", pages: {style: "link"}) as s\n'
                     "for each o in s\n  emit o.id\nend\n", api)
        assert result.outputs == [1, 2, 3], result.error
        assert [r.query.get("page") for r in api.requests] == [None, "2", "3"]


RUNAWAY = {
    # the last page again and again, whatever page is asked for
    "page": ('{style: "page", size: 2, records: "data", has_more: "more"}',
             lambda req: {"data": [{"id": min(int(req.query["page"]), 3)}, {"id": -min(int(req.query["page"]), 3)}],
                          "more": True},
             "holds the same records as page 3"),
    "cursor": ('{style: "cursor", cursor: "next", records: "data"}',
               lambda req: {"data": [{"id": req.query.get("cursor", "start")}], "next": "c7"}, "the cursor 'c7' twice"),
    "next_url": ('{style: "next_url", next: "next", records: "data"}',
                 lambda req: {"data": [{"id": req.query.get("p", "0")}], "next": "/orders?p=9"},
                 "as the next page again"),
}


@pytest.mark.parametrize("style", RUNAWAY)
def test_runaway_pagination_stops_with_an_error(style: str) -> None:
    pages, answer, message = RUNAWAY[style]
    with FakeApi() as api:
        api.route("GET", "/orders", lambda req: (200, {}, answer(req)))
        api.route("POST", "/copies", lambda req: (201, {}, req.body))
        result = run(f'use api = http(base_url: env.API)\ncall api.get("/orders", pages: {pages}) as s\n'
                     "for each o in s\n  send o to api.post(\"/copies\")\nend\n", api)
        assert result.status == "failed" and result.error is not None
        assert message in result.error.message and "pagination stops here" in result.error.message
        assert result.error.location == "t.flow:3:15"  # the loop's `in s`: the page was fetched there
        assert api.count("GET", "/orders") <= 5
        copies = [r.body["id"] for r in api.requests if r.path == "/copies"]
        assert len(copies) == len({str(c) for c in copies})  # counted at the receiver: no duplicate sent


def test_an_error_of_a_later_page_names_the_loop_that_read_it() -> None:
    """A page fetched while a loop reads the stream (a next page on another host, a record list that
    is not a list) fails with the place of the loop's `in ...`, in a parallel loop too."""
    with FakeApi() as api:
        api.route("GET", "/away", lambda req: (200, {}, {"data": [{"id": 1}],
                                                        "next": api.url.replace("127.0.0.1", "localhost") + "/x"}))
        api.route("GET", "/odd", lambda req: (200, {}, {"data": [{"id": 1}], "next": "2"} if not req.query
                                              else {"data": {"id": 2}, "next": None}))
        for path, pages, message in [
                ("/away", '{style: "next_url", next: "next", records: "data"}', "is on another host"),
                ("/odd", '{style: "cursor", cursor: "next", records: "data"}', "is object, not a list")]:
            for parallel in ("", " parallel 2"):
                result = run(f'use api = http(base_url: env.API, headers: {{"X-Key": "k"}})\n'
                             f'call api.get("{path}", pages: {pages}) as s\n'
                             f"for each o in s{parallel}\n  emit o.id\nend\n", api)
                assert result.error is not None and message in result.error.message
                assert result.error.location == "t.flow:3:15", (path, parallel, result.error.render())
                assert result.outputs == [1]  # the record before finished (a parallel loop's too)


@pytest.mark.parametrize("style", ["link", "next_url"])
@pytest.mark.parametrize("nxt", ["http://[::1/orders?page=2", "//[zz/orders?page=2"])
def test_a_next_page_url_that_is_not_a_url_is_a_data_error_after_the_page(style: str, nxt: str) -> None:
    """An API's broken next link ('Invalid IPv6 URL' to urlsplit) was "internal error (ValueError: Invalid
    IPv6 URL); this is a bug in flowlang", and a relative one ('//[zz/...') lost the records of the page
    that gave it. The page's records are used, then the list stops, the URL not shown."""
    with FakeApi() as api:
        if style == "link":
            api.route("GET", "/orders", lambda req: (200, {"Link": f'<{nxt}>; rel="next"'}, [{"id": 1}, {"id": 2}]))
            pages = '{style: "link"}'
        else:
            api.route("GET", "/orders", lambda req: (200, {}, {"data": [{"id": 1}, {"id": 2}], "next": nxt}))
            pages = '{style: "next_url", next: "next", records: "data"}'
        result = run(f'use api = http(base_url: env.API)\ncall api.get("/orders", pages: {pages}) as s\n'
                     "for each o in s\n  emit o.id\nend\n", api)
        assert result.outputs == [1, 2]
        assert result.error is not None and result.error.kind == "data", result.error
        assert result.error.message == (f"the next page of {api.url}/orders is not a URL (Invalid IPv6 URL); "
                                        "pagination stops here")
        assert result.error.location == "t.flow:3:15"


def test_a_next_page_on_another_host_is_named_without_its_password() -> None:
    with FakeApi() as api:
        away = api.url.replace("http://", "http://ann:pa55word@")
        api.route("GET", "/orders", lambda req: (200, {}, {"data": [{"id": 1}], "next": away + "/orders?p=2"}))
        result = run('use api = http(base_url: env.API)\n'
                     'call api.get("/orders", pages: {style: "next_url", next: "next", records: "data"}) as s\n'
                     "for each o in s\n  emit o.id\nend\n", api)
        assert result.outputs == [1] and result.error is not None
        assert "is on another host (http://***@127.0.0.1:" in result.error.message
        assert "pa55word" not in result.error.message and "ann" not in result.error.message


@pytest.mark.parametrize("pages", [
    '{style: "cursor", cursor_param: "starting_after", cursor_field: "id", has_more: "has_more", records: "data"}',
    '{style: "cursor", cursor_param: "starting_after", cursor: "data.-1.id", has_more: "has_more", records: "data"}'])
def test_has_more_true_without_a_next_cursor_is_an_error_not_the_end(pages: str) -> None:
    """Stripe-like: the last record of a page lacks the id the next page starts after, while has_more
    says there is more. Before, the list silently ended there (the records after it lost)."""
    with FakeApi() as api:
        api.route("GET", "/s", lambda req: (200, {}, {"data": [{"id": "a"}, {"name": "no id"}], "has_more": True})
                  if not req.query.get("starting_after") else (200, {}, {"data": [{"id": "z"}], "has_more": False}))
        result = run(f'use api = http(base_url: env.API)\ncall api.get("/s", pages: {pages}) as s\n'
                     "for each o in s\n  emit o\nend\n", api)
        assert result.outputs == [{"id": "a"}, {"name": "no id"}]  # the page's records, then the error
        assert result.error is not None and "has_more" in result.error.message
        assert "no next cursor" in result.error.message and result.error.location == "t.flow:3:15"


@pytest.mark.parametrize("pages, which", [
    ('{style: "page", size: 2, has_more: "has_more", records: "data"}', "page 2 is empty"),
    ('{style: "page", has_more: "has_more", records: "data", total_pages: "pages"}', "page 2 is empty"),
    ('{style: "offset", size: 2, has_more: "has_more", records: "data"}', "the page at offset 2 is empty"),
    ('{style: "offset", has_more: "has_more", records: "data"}', "the page at offset 2 is empty")])
def test_has_more_true_on_an_empty_page_is_an_error_not_the_end(pages: str, which: str) -> None:
    """The page and offset styles: the second page is empty while has_more says there are more. Before,
    the list silently ended there (the records the API says are left lost unseen)."""
    with FakeApi() as api:
        def listing(req: Request) -> tuple[int, dict[str, str], Any]:
            first = req.query.get("page", "1") == "1" and req.query.get("offset", "0") == "0"
            return 200, {}, {"data": [{"id": "a"}, {"id": "b"}] if first else [], "has_more": True, "pages": 3}
        api.route("GET", "/s", listing)
        result = run(f'use api = http(base_url: env.API)\ncall api.get("/s", pages: {pages}) as s\n'
                     "for each o in s\n  emit o\nend\n", api)
        assert result.outputs == [{"id": "a"}, {"id": "b"}]  # the first page's records, then the error
        assert result.error is not None and "has_more: true" in result.error.message, result.error
        assert which in result.error.message and result.error.location == "t.flow:3:15"
        assert api.count("GET", "/s") == 2  # no request after the empty page


@pytest.mark.parametrize("pages, which", [
    ('{style: "link", has_more: "has_more", records: "data"}', 'no Link header with rel="next"'),
    ('{style: "next_url", next: "next", has_more: "has_more", records: "data"}', "'next' is missing or empty")])
def test_has_more_true_without_a_next_page_is_an_error_not_the_end(pages: str, which: str) -> None:
    """The link and next_url styles: the second page says has_more but gives no next page. Before, the
    list silently ended there."""
    with FakeApi() as api:
        def listing(req: Request) -> tuple[int, dict[str, str], Any]:
            if req.query.get("p") == "2":
                return 200, {}, {"data": [{"id": "c"}], "has_more": True}
            return 200, {"Link": f'<{api.url}/s?p=2>; rel="next"'}, {"data": [{"id": "a"}], "has_more": True,
                                                                    "next": f"{api.url}/s?p=2"}
        api.route("GET", "/s", listing)
        result = run(f'use api = http(base_url: env.API)\ncall api.get("/s", pages: {pages}) as s\n'
                     "for each o in s\n  emit o\nend\n", api)
        assert result.outputs == [{"id": "a"}, {"id": "c"}]  # both pages' records, then the error
        assert result.error is not None and "has_more: true" in result.error.message, result.error
        assert which in result.error.message and result.error.location == "t.flow:3:15"
        assert api.count("GET", "/s") == 2


@pytest.mark.parametrize("pages", [
    '{style: "cursor", cursor: "next_cursor", size_param: "limit", size: 2, records: "results", has_more: "hasMore"}',
    '{style: "page", size: 2, records: "data", has_more: "meta.more"}'])
def test_a_has_more_path_the_answer_does_not_have_is_an_error_not_the_end(pages: str) -> None:
    """has_more names a field the answer lacks (misspelt, or the API calls it otherwise): before, it was
    read as false, so the list ended after its first page and the run exited 0 with 2 of 5 records."""
    style = "cursor" if "cursor" in pages else "page"
    with FakeApi() as api:
        api.route("GET", "/orders", lambda req: paged(ORDERS, req, style, api.url))
        result = run(f'use api = http(base_url: env.API)\ncall api.get("/orders", pages: {pages}) as s\n'
                     "for each o in s\n  emit o.id\nend\n", api)
        assert result.outputs == []  # the first page is not taken either: its has_more cannot be read
        assert result.error is not None, result.outputs
        path = "hasMore" if style == "cursor" else "meta.more"
        assert f"has no '{path}' (has_more:), so it cannot say whether more pages follow" in result.error.message
        assert result.error.location == "t.flow:3:15"
        assert api.count("GET", "/orders") == 1


def test_a_has_more_that_is_null_ends_the_list() -> None:
    with FakeApi() as api:
        api.route("GET", "/s", lambda req: (200, {}, {"data": [{"id": 1}], "has_more": None}))
        result = run('use api = http(base_url: env.API)\ncall api.get("/s", pages: {style: "page", records: "data", '
                     'has_more: "has_more"}) as s\nfor each o in s\n  emit o\nend\n', api)
        assert result.ok, result.error
        assert result.outputs == [{"id": 1}] and api.count("GET", "/s") == 1


def test_an_empty_page_past_total_pages_ends_the_list_even_with_has_more() -> None:
    with FakeApi() as api:
        api.route("GET", "/s", lambda req: (200, {}, {"data": [{"id": 1}] if req.query["page"] == "1" else [],
                                                      "has_more": True, "pages": 2}))
        result = run('use api = http(base_url: env.API)\ncall api.get("/s", pages: {style: "page", records: "data", '
                     'has_more: "has_more", total_pages: "pages"}) as s\nfor each o in s\n  emit o\nend\n', api)
        assert result.ok, result.error
        assert result.outputs == [{"id": 1}] and api.count("GET", "/s") == 2


def test_the_page_cap_defaults_to_10000_and_a_flow_can_set_it() -> None:
    from flowlang.connectors.http.pagination import page_spec

    assert page_spec({"style": "page"}).max_pages == 10_000
    assert page_spec({"style": "page", "max_pages": 50_000}).max_pages == 50_000
    with FakeApi() as api:
        api.route("GET", "/orders", lambda req: (200, {}, {"data": [{"id": int(req.query["page"])}], "more": True}))
        result = run('use api = http(base_url: env.API)\n'
                     'call api.get("/orders", pages: {style: "page", records: "data", has_more: "more", max_pages: 4})'
                     " as s\nfor each o in s\n  emit o.id\nend\n", api)
        assert result.outputs == [1, 2, 3, 4]
        assert result.error is not None and "more than 4 pages" in result.error.message
        assert "max_pages" in result.error.message
        assert api.count("GET", "/orders") == 4


def test_a_list_of_exactly_max_pages_pages_is_read_whole() -> None:
    """A list whose last page was page max_pages failed 'gave more than 4 pages' after its records were
    used (the cap was tested before the page was known to be the last), so a flow that set max_pages to
    the pages it expects failed every run, and `max_pages: 1` on a one-page answer said 'more than 1 pages'."""
    with FakeApi() as api:
        api.route("GET", "/orders", lambda req: (200, {}, {"data": [{"id": int(req.query["page"])}],
                                                         "more": int(req.query["page"]) < 4}))
        text = ('use api = http(base_url: env.API)\ncall api.get("/orders", pages: {{style: "page", records: "data", '
                'has_more: "more", max_pages: {}}}) as s\nfor each o in s\n  emit o.id\nend\n')
        exact = run(text.format(4), api)
        assert exact.ok and exact.outputs == [1, 2, 3, 4], exact.error
        one = run(text.format(1), api)
        assert one.error is not None and "gave more than 1 page;" in one.error.message, one.error


def test_pages_are_fetched_lazily() -> None:
    with FakeApi() as api:
        api.route("GET", "/orders", lambda req: paged(ORDERS, req, "page", api.url))
        result = run('use api = http(base_url: env.API)\n'
                     'call api.get("/orders", pages: {style: "page", size: 2, records: "data"}) as s\n'
                     "for each o in s\n  if o.id == 2\n    stop\n  end\nend\n", api)
        assert result.ok
        assert api.count("GET", "/orders") == 1


def test_iterating_again_fetches_again() -> None:
    with FakeApi() as api:
        api.route("GET", "/orders", lambda req: paged(ORDERS, req, "link", api.url))
        run('use api = http(base_url: env.API)\ncall api.get("/orders", pages: {style: "link"}) as s\n'
            "for each o in s\n  emit o.id\nend\nfor each o in s\n  emit o.id\nend\n", api)
        assert api.count("GET", "/orders") == 6


def test_bad_pages_argument() -> None:
    with FakeApi() as api:  # known only at run time: the run says what is wrong
        result = run('use api = http(base_url: env.API)\nlet p = {style: "pages"}\ncall api.get("/o", pages: p) as s\n'
                     "for each o in s\n  emit o\nend\n", api)
        assert result.error is not None and "style must be one of page, offset" in result.error.message
        assert "did you mean 'page'?" in result.error.message
    with pytest.raises(flowlang.ScriptError) as refused:  # written as a literal: refused by check
        flowlang.compile('use api = http(base_url: "http://x")\ncall api.get("/o", pages: {style: "pages"}) as s\n',
                         name="f.flow")
    assert "f.flow:2:35: error: pages: style must be one of" in refused.value.render()


ORDERS_12 = [{"id": i} for i in range(1, 13)]


@pytest.mark.parametrize(("given", "said"), [
    # before: each ran to exit 0 having read part of the list or none of it: size 0 read no record
    # (0 of 12), size -5 read 7, has_more: true (a path written as a flag) stopped after the first page
    ("size: 0", "pages: size must be a positive whole number, got 0"),
    ("size: -5", "pages: size must be a positive whole number, got -5"),
    ("max_pages: 0", "pages: max_pages must be a positive whole number, got 0"),
    # before: taken; size 10^23 (sent as per_page=100000000000000000000000) made the first page of 5
    # 'shorter than size', so the list stopped there: 5 of 12 read, exit 0
    ("size: 100000000000000000000000", "pages: size must be at most 100,000, got 100,000,000,000,000,000,000,000: "
                                       "a page is read whole into memory, and no API answers pages that large"),
    ("size: 1e23", "pages: size must be at most 100,000, got 100,000,000,000,000,000,000,000"),
    ("max_pages: 1000000000000", "pages: max_pages must be at most 100,000,000, got 1,000,000,000,000"),
    ("start: -1", "pages: start must be a whole number, 0 or more, got -1"),
    ("has_more: true", "pages: has_more must be a text (the dotted path of a field in the answer), got boolean"),
    ("records: 5", "pages: records must be a text (the dotted path of a field in the answer), got number"),
    ("total_pages: 3", "pages: total_pages must be a text (the dotted path of a field in the answer), got number"),
    ("page_param: 2", "pages: page_param must be a text (the name of a query parameter), got number"),
])
def test_a_page_size_that_is_not_positive_or_a_path_that_is_not_a_text_is_refused(given: str, said: str) -> None:
    fields = {"style": '"page"', "size": "5", "records": '"data"', **dict([given.split(": ")])}
    pages = "{" + ", ".join(f"{k}: {v}" for k, v in fields.items()) + "}"
    with FakeApi() as api:
        api.route("GET", "/orders", lambda req: paged(ORDERS_12, req, "page", api.url))
        for how in ("literal", "computed"):  # check refuses the literal; the run the value it computes
            text = (f'use api = http(base_url: env.API)\ncall api.get("/orders", pages: {pages}) as s\n'
                    if how == "literal" else
                    f'use api = http(base_url: env.API)\nlet p = {pages}\ncall api.get("/orders", pages: p) as s\n')
            text += "for each o in s\n  emit o.id\nend\n"
            if how == "literal":
                with pytest.raises(flowlang.ScriptError) as refused:
                    flowlang.compile(text, name="f.flow", bindings=())
                assert said in refused.value.render()
            else:
                result = run(text, api)
                assert result.error is not None and said in result.error.message, (result.outputs, result.error)
                assert result.outputs == []
        assert api.requests == []


def flaky(times: int, status: int = 503, headers: dict[str, str] | None = None) -> Any:
    seen: dict[str, int] = {}

    def handler(req: Request) -> tuple[int, dict[str, str], Any]:
        seen[req.path] = seen.get(req.path, 0) + 1
        if seen[req.path] <= times:
            return status, headers or {}, {"error": "busy"}
        return 200, {}, {"ok": True}
    return handler


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retries_then_succeeds(status: int) -> None:
    with FakeApi() as api:
        api.route("*", "/flaky", flaky(2, status, {"Retry-After": "0"} if status == 429 else None))
        result = run('use api = http(base_url: env.API)\ncall api.get("/flaky") as r\nemit r', api)
        assert result.outputs == [{"ok": True}]
        assert api.count("GET", "/flaky") == 3


def test_gives_up_after_the_attempts() -> None:
    with FakeApi() as api:
        api.route("*", "/down", flaky(100))
        result = run('use api = http(base_url: env.API, retry: 2)\ncall api.get("/down")', api)
        assert result.error is not None and result.error.status == 503
        assert "answered 503 Service Unavailable (after 2 attempts): " in result.error.message
        assert api.count("GET", "/down") == 2


def test_an_error_after_a_rate_limit_refusal_counts_the_refusal_apart() -> None:
    """A 429 spends none of `retry`; a POST answered 429, then 500 (not retried: a POST) failed 'answered 500
    Internal Server Error (after 2 attempts)', which reads as a 500 retried (found by an operator's trial of a
    batch send against a local API that answers 429 with Retry-After, then 500). The refusal is said apart."""
    def answers(*statuses: int) -> Any:
        left = list(statuses)

        def handler(req: Request) -> tuple[int, dict[str, str], Any]:
            status = left.pop(0) if left else 200
            return status, {"Retry-After": "0"} if status == 429 else {}, {"error": "boom"}
        return handler

    with FakeApi() as api:
        api.route("POST", "/items", answers(429, 500))
        api.route("GET", "/down", answers(429, 503, 503))
        posted = run('use api = http(base_url: env.API, retry: 2)\nsend {id: 1} to api.post("/items")', api)
        assert posted.error is not None and api.count("POST", "/items") == 2
        assert "answered 500 Internal Server Error (after 2 attempts, 1 refused for the rate limit): " \
            in posted.error.message, posted.error.message
        got = run('use api = http(base_url: env.API, retry: 2)\ncall api.get("/down")', api)
        assert got.error is not None and api.count("GET", "/down") == 3
        assert "answered 503 Service Unavailable (after 3 attempts, 1 refused for the rate limit): " \
            in got.error.message, got.error.message


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_client_errors_are_not_retried(status: int) -> None:
    with FakeApi() as api:
        api.route("*", "/bad", flaky(100, status))
        result = run('use api = http(base_url: env.API)\ntry\n  call api.get("/bad")\non error as e\n'
                     "  emit [e.status, e.kind]\nend\n", api)
        assert result.outputs == [[status, "http"]]
        assert api.count("GET", "/bad") == 1


def test_post_is_not_retried_after_a_503_but_is_after_a_429() -> None:
    with FakeApi() as api:
        api.route("*", "/p503", flaky(1, 503))
        api.route("*", "/p429", flaky(1, 429, {"Retry-After": "0"}))
        result = run('use api = http(base_url: env.API)\ntry\n  send {a: 1} to api.post("/p503")\n'
                     "on error as e\n  emit e.status\nend\nsend {a: 1} to api.post(\"/p429\") as r\nemit r\n", api)
        assert result.outputs == [503, {"ok": True}]
        assert api.count("POST", "/p503") == 1
        assert api.count("POST", "/p429") == 2


def test_post_with_an_idempotency_key_is_retried_with_the_same_key() -> None:
    with FakeApi() as api:
        api.route("*", "/pay", flaky(2, 503))
        result = run('use api = http(base_url: env.API)\nsend {a: 1} to api.post("/pay", idempotency_key: "k-1")'
                     " as r\nemit r", api)
        assert result.outputs == [{"ok": True}]
        keys = [r.headers.get("idempotency-key") for r in api.requests]
        assert keys == ["k-1", "k-1", "k-1"]


def test_retry_after_seconds_and_http_date_are_honoured() -> None:
    with FakeApi() as api:
        api.route("*", "/seconds", flaky(1, 429, {"Retry-After": "1"}))
        seen: list[int] = []

        def by_date(req: Request) -> tuple[int, dict[str, str], Any]:
            seen.append(1)
            if len(seen) == 1:
                when = format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
                return 429, {"Retry-After": when}, {"error": "later"}
            return 200, {}, {"ok": True}
        api.route("*", "/date", by_date)
        run('use api = http(base_url: env.API)\ncall api.get("/seconds")\ncall api.get("/date")', api)
        times: dict[str, list[float]] = {}
        for r in api.requests:
            times.setdefault(r.path, []).append(r.at)
        assert times["/seconds"][1] - times["/seconds"][0] >= 0.95  # the retry comes no earlier
        assert times["/date"][1] - times["/date"][0] >= 0.9  # (an HTTP date has whole seconds)


def test_a_retry_after_with_a_fraction_is_waited_for() -> None:
    """`Retry-After: 0.6` (seconds with a fraction, outside RFC 9110 but sent by some servers) was read as
    no wait: the request went again after the backoff (0.1-0.2 s) and was refused again. It is waited for."""
    from flowlang.connectors.http.retry import retry_after_seconds

    assert [retry_after_seconds(v) for v in ("1.5", " 2 ", "\u00b2", "1e3", "-1")] == [1.5, 2.0, None, None, None]
    with FakeApi() as api:
        api.route("*", "/x", flaky(1, 429, {"Retry-After": "0.6"}))
        run('use api = http(base_url: env.API)\ncall api.get("/x")', api)
        first, second = (r.at for r in api.requests)
        assert second - first >= 0.55


def test_retry_after_above_the_cap_fails_at_once() -> None:
    with FakeApi() as api:
        api.route("*", "/later", flaky(1, 429, {"Retry-After": "3600"}))
        started = time.monotonic()
        result = run('use api = http(base_url: env.API)\ncall api.get("/later")', api)
        assert result.error is not None and "asks to wait 3600s" in result.error.message
        assert time.monotonic() - started < 5
        assert api.count("GET", "/later") == 1


def test_github_rate_limit_answers_are_waited_for_then_retried() -> None:
    """GitHub answers a spent rate limit with 403 (or 429) and X-RateLimit-Remaining: 0 plus the
    reset time as epoch seconds, and its secondary limit with 403 and Retry-After: each is a refusal
    before any work, waited for and retried (a POST too); a plain 403 still is not."""
    with FakeApi() as api:
        def reset_soon(req: Request) -> tuple[int, dict[str, str], Any]:
            return 403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + 1)}, \
                {"message": "API rate limit exceeded"}
        seen: dict[str, int] = {}

        def once(status: int, handler: Any) -> Any:
            def answer(req: Request) -> tuple[int, dict[str, str], Any]:
                seen[req.path] = seen.get(req.path, 0) + 1
                return handler(req) if seen[req.path] == 1 else (200, {}, {"ok": req.path})
            return answer
        api.route("*", "/primary", once(403, reset_soon))
        api.route("*", "/primary429", once(429, lambda req: (429, {"X-RateLimit-Remaining": "0",
                                                                   "X-RateLimit-Reset": str(int(time.time()) + 1)},
                                                            {"message": "API rate limit exceeded"})))
        api.route("*", "/secondary", once(403, lambda req: (403, {"Retry-After": "0"},
                                                            {"message": "secondary rate limit"})))
        api.route("*", "/forbidden", flaky(100, 403, {"X-RateLimit-Remaining": "4999"}))
        result = run('use api = http(base_url: env.API)\ncall api.get("/primary") as a\nemit a\n'
                     'call api.get("/primary429") as b\nemit b\n'
                     'send {a: 1} to api.post("/secondary") as c\nemit c\n'
                     'try\n  call api.get("/forbidden")\non error as e\n  emit e.status\nend\n', api)
        assert result.outputs == [{"ok": "/primary"}, {"ok": "/primary429"}, {"ok": "/secondary"}, 403]
        assert [api.count("GET", "/primary"), api.count("GET", "/primary429"), api.count("POST", "/secondary"),
                api.count("GET", "/forbidden")] == [2, 2, 2, 1]
        times = [r.at for r in api.requests if r.path == "/primary429"]
        assert times[1] - times[0] >= 0.5  # waited for the reset (whole seconds), not a 0.2 s backoff


def test_a_403_that_only_names_a_rate_limit_is_a_plain_refusal() -> None:
    """A 403 whose message held the words 'rate limit' was taken for a GitHub secondary rate limit: a
    permission refusal ('Only admins may change the rate limit settings') was waited on and sent again
    for 120 s (19 requests) before its record failed. Only a message that says a rate limit was gone
    over counts ('API rate limit exceeded', 'You have exceeded a secondary rate limit', 'rate limited')."""
    with FakeApi() as api:
        api.route("*", "/settings", lambda req: (403, {}, {"message": "Only admins may change rate limit settings"}))
        seen: list[int] = []

        def limited(req: Request) -> tuple[int, dict[str, str], Any]:
            seen.append(1)
            return (403, {}, {"message": "You are being rate limited"}) if len(seen) == 1 else (200, {}, {"ok": 1})
        api.route("*", "/limited", limited)
        result = run('use api = http(base_url: env.API)\nfor each p in ["/settings", "/limited"]\n'
                     '  call api.get(p) as r\n  emit r\nend\n', api)
        assert result.outputs == [{"ok": 1}] and api.count("GET", "/settings") == 1
        assert result.errors[0].message.startswith(f"GET {api.url}/settings answered 403 Forbidden")


def test_a_429_with_retry_after_holds_every_request_of_the_connection() -> None:
    """A 429's Retry-After held back only the request it answered: in a parallel loop the next records' requests
    went out during the wait and were refused too, each spending an attempt (a newcomer's 200 orders at
    parallel 8 against an API allowing 5 a second: 29 records failed 'answered 429 ... (after 5 attempts)').
    Every request of the connection now waits for it, as for a spent X-RateLimit-Remaining: 0."""
    with FakeApi() as api:
        refused: list[float] = []

        def limited(req: Request) -> tuple[int, dict[str, str], Any]:
            if req.body == {"n": 0} and not refused:
                refused.append(time.monotonic())
                return 429, {"Retry-After": "1"}, {"error": "slow down"}
            if req.body == {"n": 1}:
                time.sleep(0.3)  # the slot it frees goes to record 2 while record 0 still waits
            return 201, {}, {"ok": True}
        api.route("POST", "/orders", limited)
        result = run('use api = http(base_url: env.API)\nfor each n in range(4) parallel 2\n'
                     '  send {n: n} to api.post("/orders")\nend\n', api)
        assert result.ok, result.error
        later = [r for r in api.requests if r.at > refused[0] and r.body != {"n": 1}]
        assert sorted(r.body["n"] for r in later) == [0, 2, 3]
        assert min(r.at for r in later) - refused[0] >= 0.9  # none went out while the API asked to wait


@pytest.mark.parametrize("rate_limit", ["", ', rate_limit: "20/second"'])
def test_a_429_with_retry_after_holds_the_requests_already_waiting_for_the_pace(rate_limit: str) -> None:
    """Once a refusal had set the connection's pace, the requests of a parallel loop waited for their turn
    under it past the Retry-After check, so a later 429's Retry-After held none of them: against an API
    refusing every 10th request with Retry-After: 3, 60 records at parallel 8 sent 48 requests during the
    waits (at 0.4 s, 0.8 s, 1.3 s, 2.5 s into each), each refused again (124 requests, 78 s). Every request of
    the connection waits for the Retry-After, those already waiting for the pace (or the rate_limit) too."""
    with FakeApi() as api:
        refused: list[float] = []

        def limited(req: Request) -> tuple[int, dict[str, str], Any]:
            n = req.body["n"]
            if n in (2, 8) and len(refused) < (1 if n == 2 else 2):
                if n == 8:
                    time.sleep(0.2)  # the requests sent before this answer arrive meanwhile, on a busy machine too
                refused.append(time.monotonic())
                return 429, {"Retry-After": "1" if n == 2 else "2"}, {"error": "slow down"}
            return 201, {}, {"ok": True}
        api.route("POST", "/orders", limited)
        result = run(f'use api = http(base_url: env.API{rate_limit})\nfor each n in range(16) parallel 4\n'
                     '  send {n: n} to api.post("/orders")\nend\n', api)
        assert result.ok, result.error
        assert len(refused) == 2
        during = [r.body["n"] for r in api.requests if refused[1] + 0.3 < r.at < refused[1] + 1.9]
        assert during == []  # none went out while the API asked to wait
        assert sorted(r.body["n"] for r in api.requests) == sorted([*range(16), 2, 8])


@pytest.mark.parametrize(("rate_limit", "retry_after"), [(', rate_limit: "50/second"', None), ("", None), ("", "1")])
def test_an_api_stricter_than_the_flow_takes_every_record_once_and_none_fails(rate_limit: str,
                                                                              retry_after: str | None) -> None:
    """A flow sending faster than its API allows (rate_limit 50/second, or none at parallel 20, against 10 a
    second) had each refused request retried on its own: its attempts ran out (40 records: 1 failed at
    rate_limit 50/second, 10 without one, 'answered 429 ... (after 5 attempts)'), and the refused requests
    came back together (45 and, with Retry-After: 1, 29 requests in a second after the first). A refusal
    now slows the whole connection (its pace, shared by the parallel requests) and spends no attempt."""
    limited = RateLimited(10, retry_after)
    with FakeApi() as api:
        api.route("POST", "/orders", limited)
        result = run(f"use api = http(base_url: env.API{rate_limit})\nfor each n in range(40) parallel 20\n"
                     '  send {n: n} to api.post("/orders")\nend\n', api)
    assert result.ok and result.errors == [], [e.message for e in result.errors]
    assert limited.taken == {n: 1 for n in range(40)}  # every record once, none twice
    assert limited.most_in_a_second(after=1.0) <= 20, limited.most_in_a_second(after=1.0)  # no storm of retries


def test_rate_limit_refusals_spend_no_attempt_and_other_failures_keep_their_limit() -> None:
    seen: list[int] = []

    def handler(req: Request) -> tuple[int, dict[str, str], Any]:
        seen.append(1)
        return (429, {"Retry-After": "0"}, {"error": "slow down"}) if len(seen) <= 2 else (503, {}, {"error": "down"})
    with FakeApi() as api:
        api.route("GET", "/x", handler)
        result = run('use api = http(base_url: env.API, retry: 3)\ncall api.get("/x")', api)
    assert result.error is not None and result.error.status == 503, result.error
    assert len(seen) == 5  # 2 refusals for the rate limit, then the 3 attempts `retry` allows


def test_a_flow_whose_first_request_is_refused_soon_goes_at_the_apis_speed_again() -> None:
    """A refusal with little before it (the run's first request, the API's limit spent by the run before)
    tells nothing of the API's rate: the pace starts at 0.8 a second and grows fast until the next refusal
    measures it (growing a fifth a second, 100 records took 16 s against an API taking 50 a second)."""
    limited = RateLimited(50)
    seen: list[int] = []

    def first_refused(req: Request) -> tuple[int, dict[str, str], Any]:
        seen.append(1)
        return (429, {"Retry-After": "1"}, {"error": "spent"}) if len(seen) == 1 else limited(req)
    with FakeApi() as api:
        api.route("POST", "/orders", first_refused)
        started = time.monotonic()
        result = run("use api = http(base_url: env.API)\nfor each n in range(100)\n"
                     '  send {n: n} to api.post("/orders")\nend\n', api)
    assert result.ok and limited.taken == {n: 1 for n in range(100)}
    assert time.monotonic() - started < 10  # 4.5 s: the 1 s asked, about 1 s to find the pace, 2 s at 50 a second


def test_an_api_that_refuses_every_request_is_not_hammered_and_its_records_fail_kept() -> None:
    """An API that refuses every request for its rate limit, without a Retry-After: the connection's pace falls,
    and once none was taken for max_retry_wait the records fail, kept, saying so; those after them fail unsent
    (one request every 10 s goes, to see whether the API takes them again)."""
    limited = RateLimited(0)
    with FakeApi() as api:
        api.route("POST", "/orders", limited)
        started = time.monotonic()
        result = run("use api = http(base_url: env.API, max_retry_wait: 2)\nfor each n in range(30) parallel 10\n"
                     '  send {n: n} to api.post("/orders")\nend\n', api)
    assert time.monotonic() - started < 8
    assert len(result.errors) == 30 and limited.taken == {}
    said = sorted({e.message.split(": ", 1)[-1][:60] for e in result.errors})
    assert any("refused for the rate limit; the API has taken none of this connection's requests for" in e.message
               for e in result.errors), said
    assert any("not sent: the API has refused every request of this connection for its rate limit" in e.message
               for e in result.errors), said
    assert len(limited.arrivals) <= 25, len(limited.arrivals)  # 30 records at 5 attempts each were 150 requests


def test_a_rate_limit_reset_in_epoch_milliseconds_is_waited_for() -> None:
    """X-RateLimit-Reset given in epoch milliseconds (as some APIs send it) was read as seconds: 'asks to
    wait 1794615243863s', more than the cap, so the record failed. It is a time like epoch seconds."""
    with FakeApi() as api:
        seen: list[float] = []

        def limited(req: Request) -> tuple[int, dict[str, str], Any]:
            seen.append(time.monotonic())
            if len(seen) == 1:
                return 429, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time() * 1000) + 800)}, \
                    {"message": "slow down"}
            return 200, {}, {"ok": True}
        api.route("GET", "/items", limited)
        result = run('use api = http(base_url: env.API)\ncall api.get("/items") as a\nemit a\n', api)
        assert result.ok, result.error
        assert result.outputs == [{"ok": True}] and len(seen) == 2
        assert 0.4 <= seen[1] - seen[0] < 5


def test_a_rate_limit_reset_beyond_the_cap_fails_at_once_saying_when() -> None:
    with FakeApi() as api:
        api.route("*", "/spent", flaky(100, 403, {"X-RateLimit-Remaining": "0",
                                                  "X-RateLimit-Reset": str(int(time.time()) + 3000)}))
        result = run('use api = http(base_url: env.API)\ncall api.get("/spent")', api)
        assert result.error is not None and result.error.status == 403
        assert "asks to wait 29" in result.error.message or "asks to wait 30" in result.error.message
        assert api.count("GET", "/spent") == 1


def test_rate_limit_spaces_requests_without_a_burst() -> None:
    stamps: list[float] = []
    with FakeApi() as api:
        def handler(req: Request) -> tuple[int, dict[str, str], Any]:
            stamps.append(time.monotonic())
            return 200, {}, {"ok": True}
        api.route("GET", "/r", handler)
        run('use api = http(base_url: env.API, rate_limit: "20/second")\n'
            "for each i in range(0, 8) parallel 8\n  call api.get(\"/r\")\nend\n", api)
    assert len(stamps) == 8
    # 20/second: one request every 50 ms (8 requests span 350 ms; without the limit they all arrive
    # within a few ms). Arrival times at the server carry the machine's scheduling jitter, so the
    # test counts arrivals per 150 ms window (3 slots) with slack instead of the smallest gap.
    most_in_a_window = max(sum(1 for t in stamps if start <= t < start + 0.15) for start in stamps)
    assert most_in_a_window <= 5
    # the first request also opens the connection, so measure from the second: 6 intervals of 50 ms
    assert stamps[-1] - stamps[1] >= 0.25


def test_bearer_basic_and_api_key_auth() -> None:
    with FakeApi() as api:
        api.route("GET", "/who", lambda req: (200, {}, {"auth": req.headers.get("authorization"),
                                                         "key": req.headers.get("x-key"), "q": req.query}))
        result = run("""
use a = http(base_url: env.API, auth: bearer("t0ken"))
use b = http(base_url: env.API, auth: basic("u", "p4ss"))
use c = http(base_url: env.API, auth: api_key("X-Key", "k3y"))
use d = http(base_url: env.API, auth: api_key("api_key", "k3y", in: "query"))
call a.get("/who") as ra
call b.get("/who") as rb
call c.get("/who") as rc
call d.get("/who") as rd
emit [ra.auth, rb.auth, rc.key, rd.q]
""", api)
        basic = "Basic " + base64.b64encode(b"u:p4ss").decode()
        assert result.outputs == [["Bearer t0ken", basic, "k3y", {"api_key": "k3y"}]]


def test_oauth2_token_is_cached_and_refreshed_once_after_a_401() -> None:
    tokens = iter(["tok-1", "tok-2", "tok-3"])
    with FakeApi() as api:
        state = {"valid": ""}

        def token(req: Request) -> tuple[int, dict[str, str], Any]:
            assert "grant_type=client_credentials" in req.raw.decode()
            state["valid"] = next(tokens)
            return 200, {}, {"access_token": state["valid"], "expires_in": 3600}

        def data(req: Request) -> tuple[int, dict[str, str], Any]:
            if req.headers.get("authorization") != f"Bearer {state['valid']}":
                return 401, {}, {"error": "expired"}
            return 200, {}, {"ok": True}
        api.route("POST", "/token", token)
        api.route("GET", "/data", data)
        result = run("""
use api = http(base_url: env.API, auth: oauth2_client_credentials(env.API + "/token", "id", "s3cret"))
call api.get("/data") as one
call api.get("/data") as two
emit [one.ok, two.ok]
""", api)
        assert result.outputs == [[True, True]]
        assert api.count("POST", "/token") == 1
        state["valid"] = "rotated-by-server"
        result = run('use api = http(base_url: env.API, auth: oauth2_client_credentials(env.API + "/token", "id", '
                     '"s3cret"))\ncall api.get("/data") as x\nemit x', api)
        assert result.ok


@pytest.mark.parametrize(("answer", "said"), [
    ((401, {}, {"error": "invalid_client", "error_description": "client secret X was wrong"}),
     "answered 401 without an access_token: invalid_client (client secret *** was wrong)"),
    ((400, {}, {"error": "invalid_scope"}), "answered 400 without an access_token: invalid_scope"),
    ((200, {"Content-Type": "text/html"}, b"<html>login</html>"),
     "answered 200 without an access_token: <html>login</html>"),
    ((200, {}, {"token": "t", "expires": 5}), "answered 200 without an access_token (the answer has token, expires)"),
])
def test_a_token_endpoint_that_gives_no_token_says_why(answer: tuple[int, dict[str, str], Any], said: str) -> None:
    # before, each was only "the OAuth2 token endpoint answered 401 without an access_token": RFC 6749's
    # error and error_description (or the page it answered) were dropped
    with FakeApi() as api:
        def token(req: Request) -> tuple[int, dict[str, str], Any]:
            status, headers, body = answer
            if isinstance(body, dict) and "error_description" in body:  # it echoes the client secret
                body = {**body, "error_description": body["error_description"].replace("X", "s3cret-9")}
            return status, headers, body
        api.route("POST", "/token", token)
        result = run('use api = http(base_url: env.API, auth: oauth2_client_credentials(env.API + "/token", "id", '
                     'secret.CS))\ncall api.get("/data")', api, secrets={"CS": "s3cret-9"})
        assert result.error is not None and api.count("GET", "/data") == 0
        assert result.error.message == f"the OAuth2 token endpoint {said}"


def test_error_message_has_status_method_masked_url_and_body() -> None:
    with FakeApi() as api:
        api.route("GET", "/missing", lambda req: (404, {}, {"error": "no such thing"}))
        result = run('use api = http(base_url: env.API, auth: api_key("key", secret.KEY, in: "query"))\n'
                     'call api.get("/missing")', api, secrets={"KEY": "sup3r-secret"})
        assert result.error is not None
        message = result.error.message
        assert "GET" in message and "404" in message and "no such thing" in message and "/missing" in message
        assert "sup3r-secret" not in message and "key=***" in message


def test_a_2xx_answer_that_is_not_json_is_a_clear_error() -> None:
    with FakeApi() as api:
        api.route("GET", "/garbage", lambda req: (200, {}, b"<html>oops"))
        result = run('use api = http(base_url: env.API)\ncall api.get("/garbage")', api)
        assert result.error is not None
        assert "answered 200 with a body that is not valid JSON" in result.error.message
        assert "<html>oops" in result.error.message


def test_timeout() -> None:
    with FakeApi() as api:
        api.route("GET", "/slow", lambda req: (time.sleep(2), (200, {}, {}))[1])
        result = run('use api = http(base_url: env.API, timeout: 0.3, retry: 1)\ncall api.get("/slow")', api)
        assert result.error is not None and "timeout" in result.error.message


def test_dry_run_reads_but_does_not_write(caplog: pytest.LogCaptureFixture) -> None:
    with FakeApi({"orders": ORDERS[:2]}) as api, caplog.at_level(logging.INFO, logger="flowlang"):
        result = run('use api = http(base_url: env.API, auth: bearer(secret.T))\ncall api.get("/orders") as os\n'
                     'for each o in os\n  send {o: o.id, t: secret.T} to api.post("/invoices")\nend\n', api,
                     dry_run=True, secrets={"T": "tok-123"})
        assert result.ok
        assert api.count("POST", "/invoices") == 0 and api.count("GET", "/orders") == 1
        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert "POST " + api.url + "/invoices" in logged and '"t":"***"' in logged
        assert "tok-123" not in logged


def test_redirect_to_another_host_drops_credentials() -> None:
    with FakeApi() as other, FakeApi() as api:
        other.route("GET", "/landing", lambda req: (200, {}, {"auth": req.headers.get("authorization"),
                                                                 "key": req.headers.get("x-api-key")}))
        target = other.url.replace("127.0.0.1", "localhost") + "/landing"
        api.route("GET", "/go", lambda req: (302, {"Location": target}, None))
        result = run('use api = http(base_url: env.API, auth: bearer("t0k"), headers: {"X-Api-Key": "k"})\n'
                     'call api.get("/go") as r\nemit r', api)
        assert result.outputs == [{"auth": None, "key": None}], result.error


def test_a_redirect_to_a_location_that_is_no_url_fails_the_record_unshown() -> None:
    """An API redirecting to 'http://[::1<its echo of the key>' failed the record with "internal error
    (ValueError: Invalid IPv6 URL); this is a bug in flowlang". The record fails with what was wrong,
    the next goes on, and the Location (which may carry the credential) is not shown."""
    with FakeApi() as api:
        api.route("GET", "/go/1", lambda req: (302, {"Location": "http://[::1" + req.headers["x-key"]}, None))
        api.route("GET", "/go/2", lambda req: (200, {}, {"ok": True}))
        result = run('use api = http(base_url: env.API, headers: {"X-Key": secret.K}, retry: 1)\n'
                     'for each n in [1, 2]\n  call api.get("/go/{n}") as r\n  emit r\nend\n', api,
                     secrets={"K": "Rk3v9Wm2Lp8Tx5Qn"})
    assert result.outputs == [{"ok": True}]
    assert [e.message for e in result.errors] == [
        f"GET {api.url}/go/1 failed: a 302 redirect to a Location that is not a URL (Invalid IPv6 URL)"]
    assert api.count("GET", "/go/1") == 1


def test_a_redirect_loop_is_not_tried_again() -> None:
    """A Location that leads back to itself failed 'more than 5 redirects' only after 5 attempts: 30
    requests and 3 s of backoff for an answer that is the same each time. It fails at the first."""
    with FakeApi() as api:
        api.route("GET", "/loop", lambda req: (302, {"Location": "/loop"}, None))
        result = run('use api = http(base_url: env.API)\ncall api.get("/loop") as r\n', api)
    assert result.error is not None and result.error.message == f"GET {api.url}/loop: more than 5 redirects"
    assert api.count("GET", "/loop") == 6


@pytest.mark.parametrize(("location", "said"), [
    ("http://127.0.0.1:99999/x", "a 302 redirect to a Location that is not a URL (Port out of range 0-65535)"),
    ("http://127.0.0.1:abc/x", "a 302 redirect to a Location that is not a URL (Port could not be cast"),
    ("http://a..b/x", "cannot connect: the host is not a valid DNS name (encoding with 'idna' codec failed"),
    ("http://" + "a" * 70 + ".example/x", "cannot connect: the host is not a valid DNS name")])
def test_a_redirect_to_a_port_or_host_no_request_can_reach_fails_the_record(location: str, said: str) -> None:
    """A Location whose port is past 65535 or not a number, or whose host name the idna codec refuses
    (an empty label, one past 63 characters), was "internal error (ValueError: Port out of range
    0-65535)" or "(UnicodeError: encoding with 'idna' codec failed ...)"; the record fails with what
    was wrong and the next goes on."""
    with FakeApi() as api:
        api.route("GET", "/go/1", lambda req: (302, {"Location": location}, None))
        api.route("GET", "/go/2", lambda req: (200, {}, {"ok": True}))
        result = run('use api = http(base_url: env.API, retry: 1)\n'
                     'for each n in [1, 2]\n  call api.get("/go/{n}") as r\n  emit r\nend\n', api)
    assert result.outputs == [{"ok": True}]
    assert [e.kind for e in result.errors] == ["http"], result.errors
    assert said in result.errors[0].message and "internal" not in result.errors[0].message


@pytest.mark.parametrize(("url", "said"), [
    ("http://[::1/x", "GET: the URL given is not a URL (Invalid IPv6 URL); nothing was sent"),
    ("http://127.0.0.1:99999/x", "GET: the URL given is not a URL (Port out of range 0-65535); nothing was sent")])
def test_a_full_url_from_the_data_that_is_no_url_fails_its_record(url: str, said: str) -> None:
    """A path given as a full URL from the data ('http://[::1/x') was an internal error."""
    with FakeApi({"orders": [{"id": 1}]}) as api:
        result = run('use api = http(base_url: env.API)\n'
                     f'for each u in ["{url}", env.API + "/orders/1"]\n  lookup api.get(u) as r\n  emit r.id\nend\n',
                     api)
    assert result.outputs == [1]
    assert [e.message for e in result.errors] == [said]


@pytest.mark.parametrize("token_url", ["http://[::1/token", "http://127.0.0.1:99999/token"])
def test_an_oauth2_token_url_that_is_no_url_is_refused_at_the_use(token_url: str) -> None:
    with FakeApi() as api:
        result = run(f'use api = http(base_url: env.API, auth: oauth2_client_credentials("{token_url}", "id", '
                     'secret.S))\ncall api.get("/x") as r\n', api, secrets={"S": "s3cr3t-Value"})
        assert result.error is not None and result.error.location == "t.flow:1:41", result.error
        assert result.error.message.startswith("auth: the OAuth2 token_url: not a valid URL (")
        assert api.requests == []


def test_parallel_overlaps_requests_and_keeps_order() -> None:
    with FakeApi() as api:
        api.route("GET", r"/item/(\d+)", lambda req: (time.sleep(0.05), (200, {}, {"n": int(req.match[1])}))[1])
        result = run("use api = http(base_url: env.API)\nfor each i in range(0, 30) parallel 10\n"
                     "  call api.get('/item/{i}', i: i) as r\n  emit r.n\nend\n", api)
        assert result.outputs == list(range(30))
        assert 1 < api.state.max_in_flight <= 10


def test_identical_lookups_in_flight_are_made_once() -> None:
    with FakeApi() as api:
        api.route("GET", "/c", lambda req: (time.sleep(0.1), (200, {}, [{"id": 1}]))[1])
        result = run("use api = http(base_url: env.API)\nfor each i in range(0, 10) parallel 10\n"
                     "  lookup api.get(\"/c\") as c\n  emit c.id\nend\n", api)
        assert result.outputs == [1] * 10
        assert api.count("GET", "/c") == 1


def test_an_identical_lookup_in_flight_that_fails_fails_every_record_that_waited_for_it() -> None:
    with FakeApi() as api:
        api.route("GET", "/c", lambda req: (time.sleep(0.1), (400, {}, {"error": "no"}))[1])
        result = run("use api = http(base_url: env.API)\nfor each i in range(0, 5) parallel 5\n"
                     "  lookup api.get(\"/c\") as c\n  emit c.id\nend\n", api)
        assert result.outputs == []
        assert len(result.errors) == 5  # each record kept as failed, none lost
        assert all("answered 400" in e.message for e in result.errors)
        assert api.count("GET", "/c") == 1


def test_lookups_whose_arguments_differ_in_type_are_not_answered_from_one_cache_entry() -> None:
    with FakeApi() as api:
        api.route("GET", "/c", lambda req: (200, {}, [{"q": req.query.get("id"), "n": api.count("GET", "/c")}]))
        result = run("""
use api = http(base_url: env.API)
for each v in [1, "1", true, "true", 1.0, 1, {a: 1, b: 2}, {b: 2, a: 1}, {a: 1, b: 2}, [1], ["1"]]
  lookup api.get("/c", query: {id: v}) as c
  emit c.n
end
""", api)
        assert result.ok, result.errors[:1] or result.error
        # 1 and "1" and 1.0 (and true and "true") are one URL here but different lookups; a repeat is cached
        assert result.outputs == [1, 2, 3, 4, 5, 1, 6, 7, 6, 8, 9]
        assert api.count("GET", "/c") == 9


def test_a_flow_that_changes_a_looked_up_value_does_not_change_the_next_lookup_of_it() -> None:
    with FakeApi() as api:
        api.route("GET", "/c", lambda req: (200, {}, [{"name": "x", "tags": ["a"], "address": {"city": "C"}}]))
        result = run("""
use api = http(base_url: env.API)
for each i in [1, 2]
  lookup api.get("/c") as c
  emit [c.name, c.tags, c.address.city]
  let c.name = "changed"
  let c.address.city = "D"
end
""", api)
        assert result.ok, result.errors[:1] or result.error
        assert result.outputs == [["x", ["a"], "C"], ["x", ["a"], "C"]]
        assert api.count("GET", "/c") == 1


def test_requests_ask_for_json_unless_their_headers_ask_for_something_else() -> None:
    with FakeApi() as api:
        api.route("GET", "/c", lambda req: (200, {}, {"accept": req.headers.get("accept")}))
        result = run("""
use api = http(base_url: env.API)
call api.get("/c") as plain
call api.get("/c", headers: {Accept: "text/csv"}) as named
call api.get("/c", headers: {accept: "text/csv"}) as lower
emit [plain.accept, named.accept, lower.accept]
""", api)
        assert result.outputs == [["application/json", "text/csv", "text/csv"]], result.error


def test_an_answer_past_max_response_bytes_fails_after_decompression() -> None:
    import gzip

    bomb = gzip.compress(b" " * 1_500_000 + b"[]")  # 1.5 MB of JSON from a few KB on the wire
    with FakeApi() as api:
        api.route("GET", "/bomb", lambda req: (200, {"Content-Encoding": "gzip"}, bomb))
        api.route("GET", "/fine", lambda req: (200, {"Content-Encoding": "gzip"}, gzip.compress(b'{"a": 1}')))
        result = run("use api = http(base_url: env.API, max_response_bytes: 1000000)\n"
                     'call api.get("/fine") as fine\nemit fine.a\ncall api.get("/bomb") as b\nemit b\n', api)
        assert result.outputs == [1]
        assert result.error is not None and "more than 1000000 bytes" in result.error.message
        assert "max_response_bytes" in result.error.message and f"{api.url}/bomb" in result.error.message
        assert api.count("GET", "/bomb") == 1  # not retried: it would be as big again
        default = run('use api = http(base_url: env.API)\ncall api.get("/bomb") as b\nemit len(b)\n', api)
        assert default.outputs == [0], default.error  # 1.5 MB is under the default of 100,000,000 bytes
        assert "read, after decompression)" in result.error.message  # read until past the limit, then stopped
        # refused by its Content-Length before a byte of it is read: the message says nothing was read
        api.route("GET", "/big", lambda req: (200, {}, b"[" + b" " * 2_000_000 + b"]"))
        big = run("use api = http(base_url: env.API, max_response_bytes: 1000000)\n"
                  'call api.get("/big") as b\nemit b\n', api)
        assert big.error is not None and ("more than 1000000 bytes (its Content-Length is 2000002; nothing of it "
                                          "was read)") in big.error.message, big.error


def test_parallel_beyond_the_connection_pool_waits_for_a_slot_not_for_the_timeout() -> None:
    with FakeApi() as api:
        # 6 rounds of 2 (the pool) at 0.3 s: the last ones would wait 1.5 s in the pool, past the timeout
        api.route("POST", "/orders", lambda req: (time.sleep(0.3), (201, {}, req.body))[1])
        result = run("use api = http(base_url: env.API, timeout: 1, max_connections: 2)\n"
                     "for each i in range(0, 12) parallel 12\n"
                     '  send {n: i} to api.post("/orders") as r\nend\n', api)
        assert result.ok, result.errors[:1] or result.error
        assert result.stats.sent == 12
        sent = [r.body["n"] for r in api.requests if r.path == "/orders"]
        assert sorted(sent) == list(range(12))  # each once, counted at the server
        assert api.state.max_in_flight <= 2


def test_a_next_cursor_of_zero_ends_the_list() -> None:
    """Twitter-style lists end with next_cursor: 0. It was followed (the first page read again) and the
    read failed with 'the API repeats a page'. A cursor of 0 or "0" now ends the list, each record once."""
    with FakeApi() as api:
        pages = {None: ([1, 2], 1500), "1500": ([3, 4], 1400), "1400": ([5], 0)}

        def listing(req: Request) -> tuple[int, dict[str, str], Any]:
            records, after = pages[req.query.get("cursor")]
            return 200, {}, {"users": [{"id": n} for n in records], "next_cursor": after}
        api.route("GET", "/followers", listing)
        for quoted in (False, True):
            if quoted:
                pages["1400"] = ([5], "0")  # type: ignore[assignment]
            before = api.count("GET", "/followers")
            result = run('use api = http(base_url: env.API)\ncall api.get("/followers", pages: {style: "cursor", '
                         'cursor: "next_cursor", records: "users"}) as users\nfor each u in users\n  emit u.id\nend\n',
                         api)
            assert result.ok, result.error
            assert result.outputs == [1, 2, 3, 4, 5]
            assert api.count("GET", "/followers") - before == 3


@pytest.mark.parametrize(("timeout", "said"), [
    ("1e400", "timeout: the number is too large (at most 1,000,000,000,000,000)"),  # before: internal error
    ("0", "timeout: must be a positive number of seconds, got 0"),  # before: sent with no time limit at all
    ("-1", "timeout: must be a positive number of seconds, got -1"),
])
def test_a_request_timeout_no_timer_takes_fails_at_the_call_before_it_is_sent(timeout: str, said: str) -> None:
    with FakeApi() as api:
        api.route("GET", "/x", lambda req: (200, {}, {"ok": True}))
        flow = flowlang.compile(f'use api = http(base_url: "{api.url}")\nlet t = {timeout}\n'
                                'call api.get("/x", timeout: t) as r\n', name="t.flow")
        result = flow.run()
        assert result.error is not None and result.error.message == said
        assert "internal" not in result.error.message and api.requests == []


@pytest.mark.parametrize(("cursor", "said"), [
    (True, "is boolean 'true', not a text or a number"),
    ({"after": 2}, "is object '{\"after\":2}', not a text or a number"),
    (["x"], "is list '[\"x\"]', not a text or a number"),
])
def test_a_next_cursor_that_is_no_text_or_number_stops_the_list(cursor: Any, said: str) -> None:
    """A next cursor of true was sent as 'cursor=true' (an object as its JSON text), which no API gave
    as a cursor: the list ends with an error after the records of the page that gave it."""
    with FakeApi() as api:
        api.route("GET", "/c", lambda req: (200, {}, {"data": [{"id": 1}, {"id": 2}], "next": cursor}))
        result = run('use api = http(base_url: env.API)\ncall api.get("/c", pages: {style: "cursor", cursor: "next", '
                     'records: "data"}) as s\nfor each o in s\n  emit o.id\nend\n', api)
        assert result.error is not None and f"the answer's cursor ('next') {said}; pagination stops here" \
            in result.error.message, result.error
        assert result.outputs == [1, 2] and len(api.requests) == 1


@pytest.mark.parametrize(("answer", "pages", "said"), [
    ({"data": [{"id": 1}, {"id": 2}], "pages": -1}, '{style: "page", size: 2, total_pages: "pages"',
     "the answer's total_pages ('pages') is -1, not a count of 0 or more"),
    ({"data": [{"id": 1}, {"id": 2}], "pages": 0}, '{style: "page", size: 2, total_pages: "pages"',
     "the answer's total_pages ('pages') is 0, but its page holds 2 records"),
    ({"data": [{"id": 1}, {"id": 2}], "pages": 2.5}, '{style: "page", size: 2, total_pages: "pages"',
     "the answer's total_pages ('pages') is number '2.5', not a whole number"),
    ({"data": [{"id": 1}, {"id": 2}], "n": -5}, '{style: "offset", size: 2, total: "n"',
     "the answer's total ('n') is -5, not a count of 0 or more"),
    ({"data": [{"id": 1}, {"id": 2}], "n": 0}, '{style: "offset", size: 2, total: "n"',
     "the answer's total ('n') is 0, but its page holds 2 records"),
])
def test_a_total_that_is_no_count_stops_the_list_with_an_error(answer: Any, pages: str, said: str) -> None:
    """total_pages: -1 or 0 (with records on the page) ended the list after page 1 with exit 0, the pages
    after it never read and nothing said; so did a total of -5 or 0. It is an error now, after the records of
    the page that said it, as a total of "lots" is."""
    with FakeApi() as api:
        api.route("GET", "/p", lambda req: (200, {}, answer))
        result = run(f'use api = http(base_url: env.API)\ncall api.get("/p", pages: {pages}, records: "data"}}) as s\n'
                     "for each o in s\n  emit o.id\nend\n", api)
        assert result.status == "failed" and result.error is not None, result.error
        assert f"{said}; pagination stops here" in result.error.message, result.error.message
        assert result.outputs == [1, 2] and len(api.requests) == 1


@pytest.mark.parametrize("pages", [', pages: {style: "page", size: 2}', ', pages: {style: "cursor", cursor: "next"}'])
def test_a_list_answered_200_with_an_empty_body_is_an_error_not_zero_records(pages: str) -> None:
    """A 200 with no body to a paginated list request was taken as a list of no records: the run said
    'read 0' and exit 0 (an API's answer cut off, a proxy's empty answer). It is an error saying so; 204 No
    Content is still no records."""
    with FakeApi() as api:
        api.route("GET", "/e", lambda req: (200, {}, None))
        api.route("GET", "/none", lambda req: (204, {}, None))
        result = run(f'use api = http(base_url: env.API)\ncall api.get("/e"{pages}) as s\n'
                     "for each o in s\n  emit o\nend\n", api)
        assert result.status == "failed" and result.error is not None
        assert "answered 200 with an empty body, not a list of records" in result.error.message, result.error.message
        none = run(f'use api = http(base_url: env.API)\ncall api.get("/none"{pages}) as s\n'
                   "for each o in s\n  emit o\nend\n", api)
        assert none.ok and none.outputs == [], none.error


def test_a_next_url_of_another_scheme_is_said_so_not_another_host() -> None:
    """A next URL of 'javascript:alert(1)' was refused as 'on another host (javascript://)'; it is no web
    address at all, and the message says that."""
    with FakeApi() as api:
        api.route("GET", "/n", lambda req: (200, {}, {"data": [{"id": 1}], "next": "javascript:alert(1)"}))
        result = run('use api = http(base_url: env.API)\ncall api.get("/n", pages: {style: "next_url", next: "next", '
                     'records: "data"}) as s\nfor each o in s\n  emit o.id\nend\n', api)
        assert result.error is not None
        assert "another host" not in result.error.message, result.error.message
        assert "the next page of" in result.error.message and "is a javascript: URL, not an http(s) one" in \
            result.error.message, result.error.message
        assert result.outputs == [1] and len(api.requests) == 1


def test_a_busy_oauth2_token_endpoint_is_asked_again() -> None:
    """A token endpoint that answered 503 (or 429) with Retry-After failed every record waiting for the
    token at once, 'the OAuth2 token endpoint answered 503 without an access_token' (the retries applied
    to an endpoint that could not be reached only). It is asked again as any request is (Retry-After
    honoured), and the records go through; a 400 (invalid_client) is not asked again."""
    with FakeApi() as api:
        asked: list[int] = []

        def token(req: Request) -> tuple[int, dict[str, str], Any]:
            asked.append(1)
            if len(asked) <= 2:
                return (503 if len(asked) == 1 else 429), {"Retry-After": "0"}, {"error": "busy"}
            return 200, {}, {"access_token": "tok-1", "expires_in": 3600}
        api.route("POST", "/token", token)
        api.route("POST", "/items", lambda req: (201, {}, {"auth": req.headers.get("authorization")}))
        api.route("POST", "/bad-token", lambda req: (400, {}, {"error": "invalid_client"}))
        text = ('use api = http(base_url: env.API,\n'
                '               auth: oauth2_client_credentials(env.API + "/{}", "id", "secret-1"))\n'
                'for each i in [1, 2]\n  send {{i: i}} to api.post("/items") as r\n  emit r.auth\nend\n')
        result = run(text.format("token"), api)
        assert result.ok and len(result.outputs) == 2, result.errors
        assert len(asked) == 3 and api.count("POST", "/items") == 2
        refused = run(text.format("bad-token"), api)
        assert len(refused.errors) == 2 and api.count("POST", "/bad-token") == 2


def test_a_token_endpoint_that_refuses_the_client_ends_the_run() -> None:
    """A wrong client secret made the token endpoint answer 401 invalid_client to the token request of
    every record: a run of 30 records asked 30 times and failed 30 records, 'partial', where 401 answers
    of the API itself end the run at the 10th. A token refusal (400, 401) counts the same: the run ends
    at the 10th, the 10 records kept for flowlang retry."""
    with FakeApi() as api:
        api.route("POST", "/token", lambda req: (401, {}, {"error": "invalid_client"}))
        result = run('use api = http(base_url: env.API, auth: oauth2_client_credentials(env.API + "/token", "id", '
                     '"wrong-secret"))\nfor each i in range(0, 30)\n  send {i: i} to api.post("/items")\nend\n', api)
        assert result.status == "failed" and len(result.errors) == 10, result.status
        assert result.error is not None and "its client credentials are refused" in result.error.message
        assert api.count("POST", "/token") == 10 and api.count("POST", "/items") == 0


def test_a_bytes_value_never_stands_in_as_its_text_in_a_path_a_header_or_a_key() -> None:
    """A bytes value (a binary answer) in a path template or an interpolated path, a header or an
    idempotency key was sent as its text '<6 bytes>' (GET /items/%3C6%20bytes%3E, 'X-Doc: <6 bytes>',
    one key for every such record), where a query, a form and a JSON body refuse it. Each fails its
    record before anything is sent; an interpolated path's error is at its place (it had none)."""
    with FakeApi() as api:
        api.route("GET", "/doc", lambda req: (200, {"Content-Type": "application/octet-stream"}, b"\x00\x01\xffabc"))
        api.route("*", "/items.*", lambda req: (200, {}, {"ok": True}))
        result = run('use api = http(base_url: env.API)\ncall api.get("/doc") as b\n'
                     'for each w in [1, 2, 3, 4]\n  if w == 1\n    call api.get(\'/items/{x}\', x: b) as r\n  end\n'
                     '  if w == 2\n    call api.get("/items/{b}") as r\n  end\n'
                     '  if w == 3\n    call api.get("/items", headers: {"X-Doc": b}) as r\n  end\n'
                     '  if w == 4\n    call api.post("/items", idempotency_key: b) as r\n  end\nend\n', api)
        assert len(result.errors) == 4 and api.count("GET", "/doc") == 1 and len(api.requests) == 1
        assert [e.message.split(":")[0] for e in result.errors] == [
            f"a bytes value (6 bytes) cannot be written as {w}" for w in
            ("a path segment", "a path segment", "an HTTP header", "an idempotency key")]
        assert result.errors[1].location == "t.flow:8:18", result.errors[1].location


def test_an_api_that_stays_away_fails_each_later_record_at_its_first_try(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host that could not be reached (refused, or no answer) was tried 5 times with backoff for every
    record: 40 records were 88 s, 10,000 a night of retrying a host that is down, where a database that
    stays away fails each later record at its first try once it has not answered for 30 s. So does an
    API now (AWAY_AFTER, 30 s; 0.3 s here): the records fail, kept for flowlang retry, saying so."""
    from flowlang.connectors.http import client

    monkeypatch.setattr(client, "AWAY_AFTER", 0.3)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the with ends: nothing listens there
    flow = flowlang.compile(f'use api = http(base_url: "http://127.0.0.1:{port}")\n'
                            'for each i in range(0, 6)\n  call api.get("/x") as r\nend\n', name="t.flow", bindings=())
    started = time.monotonic()
    result = flow.run()
    assert len(result.errors) == 6 and time.monotonic() - started < 4
    assert all("(the API has not answered for " in e.message and "attempts" not in e.message
               for e in result.errors[1:]), [e.message for e in result.errors]
