"""When to try an HTTP request again, and how long to wait (exponential backoff with jitter,
Retry-After in seconds or as an HTTP date, the reset of a spent rate limit, with a cap)."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRY_STATUSES = frozenset({429, 502, 503, 504})
NEVER_RETRY = frozenset({400, 401, 403, 404, 409, 422})
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # in all, the first one included
    base_delay: float = 0.2  # seconds before the second attempt; doubles each time
    max_delay: float = 10.0
    retry_after_cap: float = 120.0  # a longer Retry-After fails at once instead of waiting

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """The wait after failed attempt number `attempt` (1-based), with jitter in [50%, 100%]."""
        delay = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return float(delay * (0.5 + (rng or random).random() / 2))


DELAY_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date), or None. Seconds with a
    fraction (`1.5`, as some servers write them, outside RFC 9110) are waited for too: read as none, the
    request went again after the backoff's 0.2 s and was refused again."""
    if not value:
        return None
    text = value.strip()
    if DELAY_SECONDS.fullmatch(text):  # ASCII digits: str.isdigit() takes '²', which float() refuses
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


EPOCH_FROM = 1_000_000_000  # an X-RateLimit-Reset this large is a time (epoch seconds), else seconds to wait
EPOCH_MS_FROM = 1_000_000_000_000  # ...and this large, epoch milliseconds (as some APIs send it): year 33658 in seconds


# a 403's message that says the request went over a rate limit ("API rate limit exceeded for user ID 1",
# "You have exceeded a secondary rate limit", "You are being rate limited"), not one that names a rate
# limit only ("Only admins may change the rate limit settings": a permission refusal, which was waited on
# and sent again for 120 s, 19 requests)
RATE_LIMIT_WORDS = re.compile(
    rb"secondary rate[ -]?limit|rate[ -]?limit(?:s|ing)?\s+(?:was\s+|has\s+been\s+)?(?:exceeded|reached|hit)"
    rb"|(?:exceeded|reached|hit|over)\s+(?:(?:a|an|the|your|its|this)\s+)?(?:[\w-]+\s+)?rate[ -]?limit"
    rb"|rate[ -]?limited", re.IGNORECASE)


def rate_limited(status: int, headers: Mapping[str, str], body: bytes = b"") -> bool:
    """A refusal for going over a rate limit, made before any work: 429, or a 403 that says so the
    way GitHub's do (Retry-After, X-RateLimit-Remaining: 0, or, for a secondary rate limit that
    GitHub sends without either, a message that says "rate limit"). Any other 403 is a plain refusal."""
    if status == 429:
        return True
    return status == 403 and (bool(headers.get("retry-after"))
                              or headers.get("x-ratelimit-remaining", "").strip() == "0"
                              or RATE_LIMIT_WORDS.search(body[:2000]) is not None)


SECONDARY_LIMIT = re.compile(rb"secondary rate limit", re.IGNORECASE)
SECONDARY_WAIT = 60.0  # GitHub: without retry-after, "wait for at least one minute before retrying"


def rate_limit_wait(headers: Mapping[str, str], now: float | None = None, body: bytes = b"") -> float | None:
    """Seconds an answer asks to wait: its Retry-After, else, when X-RateLimit-Remaining is 0, the
    time until X-RateLimit-Reset (epoch seconds, as GitHub sends it, epoch milliseconds, or seconds from
    now), else a minute for a GitHub secondary rate limit said in the message alone (GitHub asks for at
    least one); None when it says nothing usable."""
    wait = retry_after_seconds(headers.get("retry-after"))
    if wait is None and headers.get("x-ratelimit-remaining", "").strip() != "0" \
            and SECONDARY_LIMIT.search(body[:2000]) is not None:
        return SECONDARY_WAIT
    if wait is not None or headers.get("x-ratelimit-remaining", "").strip() != "0":
        return wait
    try:
        reset = float(headers.get("x-ratelimit-reset", "").strip())
    except ValueError:
        return None
    if reset != reset or reset < 0 or reset == float("inf"):
        return None
    if reset >= EPOCH_MS_FROM:
        reset /= 1000
    if reset >= EPOCH_FROM:
        return max(0.0, reset - (time.time() if now is None else now))
    return reset


def may_retry_status(status: int, method: str, idempotent_key: bool,
                     headers: Mapping[str, str] | None = None, body: bytes = b"") -> bool:
    """A response status worth another attempt. A rate-limit refusal (429, or a 403 that says it is
    one) means the request was refused before any work, so it is retried for every method;
    502/503/504 only for idempotent requests (or with a key). An answer with Stripe-Should-Retry is
    taken at its word: true (a 409 for an idempotency key whose first request is still running, a
    lock timeout) is retried, false is not."""
    if status >= 400 and headers is not None:
        advice = headers.get("stripe-should-retry", "").strip().lower()
        if advice in ("true", "false"):
            return advice == "true"
    if status == 429 or (status == 403 and headers is not None and rate_limited(status, headers, body)):
        return True
    if status in RETRY_STATUSES:
        return method in IDEMPOTENT or idempotent_key
    return False


def repeat_may_duplicate(method: str, idempotent_key: bool) -> bool:
    """Whether sending the request again could do its work twice (a POST or PATCH without a key)."""
    return method not in IDEMPOTENT and not idempotent_key


def may_retry_error(sent: bool, method: str, idempotent_key: bool) -> bool:
    """A connection error or timeout: retried when the request surely did not reach the server, or
    when repeating it is harmless."""
    return not sent or method in IDEMPOTENT or idempotent_key
