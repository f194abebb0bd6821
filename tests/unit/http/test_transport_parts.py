"""The HTTP transport's small parts on their own: the request slots (at most N at once, first come
first served, no slot lost to a cancelled waiter), the parsed-URL cache (the URL sent is exactly the
one a full parse gives) and the base URL prefix that admits a URL without parsing it."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from flowlang.connectors.http.transport import Transport, sendable
from flowlang.connectors.http.urls import base_prefix, origin_of
from flowlang.runtime.slots import Slots


async def hold(slots: Slots, name: str, log: list[str], busy: list[int], peak: list[int],
               release: asyncio.Event) -> None:
    if not slots.take_now():
        await slots.take()
    try:
        busy[0] += 1
        peak[0] = max(peak[0], busy[0])
        log.append(name)
        await release.wait()
    finally:
        busy[0] -= 1
        slots.release()


def test_slots_bound_the_holders_and_serve_waiters_in_order() -> None:
    async def main() -> tuple[list[str], int, int]:
        slots = Slots(3)
        log: list[str] = []
        busy, peak = [0], [0]
        release = asyncio.Event()
        tasks = [asyncio.create_task(hold(slots, f"t{i}", log, busy, peak, release)) for i in range(10)]
        for _ in range(5):
            await asyncio.sleep(0)
        assert log == ["t0", "t1", "t2"]  # three at once, the rest wait
        release.set()
        await asyncio.gather(*tasks)
        return log, peak[0], slots.free

    log, peak, free = asyncio.run(main())
    assert log == [f"t{i}" for i in range(10)]  # in the order they came
    assert peak == 3
    assert free == 3  # every slot came back


def test_a_cancelled_waiter_loses_no_slot() -> None:
    async def main() -> int:
        slots = Slots(1)
        assert slots.take_now()
        waiting = asyncio.create_task(slots.take())
        handed = asyncio.create_task(slots.take())
        await asyncio.sleep(0)
        waiting.cancel()  # cancelled while it waits: it leaves the queue
        await asyncio.sleep(0)
        slots.release()  # handed to the second waiter
        await asyncio.sleep(0)
        assert handed.done() and not handed.cancelled()
        third = asyncio.create_task(slots.take())
        await asyncio.sleep(0)
        slots.release()  # handed to the third, which is cancelled before it runs: it passes the slot on
        third.cancel()
        await asyncio.gather(third, return_exceptions=True)
        assert slots.take_now()  # the slot third was handed is free again
        slots.release()
        return slots.free

    assert asyncio.run(main()) == 1


QUERY_TEXT = st.text(alphabet="abcXYZ019_.~-+=&%/?:@!$'()*,;[] #ü\\", max_size=20)
PATHS = st.sampled_from(["http://127.0.0.1:8080/customers", "https://h.example/a/b", "http://h/p#frag",
                         "http://h/", "http://u:p@h:81/x", "http://h/p%20q"])


@given(PATHS, QUERY_TEXT)
def test_the_url_sent_is_what_a_full_parse_gives(head: str, query: str) -> None:
    transport = Transport(timeout=5, verify=True)
    transport._url = URL  # set when the session is made
    for url in (f"{head}?{query}", head, f"{head}?"):
        for _ in range(2):  # parsed, then from the cache
            # what a request line cannot carry (a space, ü) is %-encoded first (sendable), the rest as written
            assert str(transport.target(url)) == str(URL(sendable(url), encoded=True))


@pytest.mark.parametrize(("base", "url", "same"), [
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080/x?id=1", True),
    ("http://127.0.0.1:8080/api/", "http://127.0.0.1:8080/other", True),
    ("http://127.0.0.1:8080", "http://127.0.0.1:80800/x", False),
    ("https://api.example.com", "https://api.example.com.evil.test/x", False),
    ("https://api.example.com", "http://api.example.com/x", False),
])
def test_the_base_prefix_admits_exactly_its_own_authority(base: str, url: str, same: bool) -> None:
    prefix = base_prefix(base)
    assert prefix is not None
    assert url.startswith(prefix) is same
    if same:
        assert origin_of(url) == origin_of(base)


@pytest.mark.parametrize("base", ["http://u:p@h/", "http://h?x", "http://h#f", "ftp://h/", "http:/h", "http:///x"])
def test_no_prefix_for_a_base_that_is_not_plain(base: str) -> None:
    assert base_prefix(base) is None
