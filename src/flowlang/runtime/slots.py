"""Slots: at most N holders at once (requests on a connection's wire, iterations of a `parallel`
loop), the others waiting in the order they came. Taking a free slot is a plain call, not a
coroutine: asyncio.Semaphore's acquire makes a coroutine and a generator on every take (two
coroutines with `async with`), and every await of a request passes through each coroutine on its way."""

from __future__ import annotations

import asyncio
from collections import deque


class Slots:
    """Up to `size` holders at once; `take_now()` or else `await take()`, then `release()` once."""

    def __init__(self, size: int) -> None:
        self.free = size
        self.waiters: deque[asyncio.Future[None]] = deque()

    def take_now(self) -> bool:
        """Take a slot if one is free and nobody waits for one (first come, first served)."""
        if self.free > 0 and not self.waiters:
            self.free -= 1
            return True
        return False

    async def take(self) -> None:
        """Wait for a slot (after take_now said no). A waiter cancelled as a slot was handed to it
        passes the slot on, so none is lost."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # it was handed a slot it will not use
            else:
                try:
                    self.waiters.remove(waiter)
                except ValueError:
                    pass
            raise

    def owe(self) -> None:
        """Count a slot as taken again without waiting: a holder that gave its slot back while it
        waited, cut off before it could take one again, still releases one on its way out."""
        self.free -= 1

    def release(self) -> None:
        """Give the slot back: to the first waiter still waiting, else to the free ones."""
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free += 1
