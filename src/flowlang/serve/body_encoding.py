"""A delivery's body as its Content-Encoding says, unzipped by serve itself after its signature was
checked on the bytes as they came (SERVE.md: the raw bytes, before anything is parsed). aiohttp's own
decompression is off (service.py), so it does no work on a body nobody has vouched for, and what it
unzips is bounded by the webhook's max_body."""

from __future__ import annotations

import zlib

READ = {"gzip", "deflate"}  # what aiohttp would have unzipped, less what it cannot here
NOT_READ = {"br", "zstd"}  # aiohttp's other codings: they need a library flowlang does not install
BAD = "its body does not match its Content-Length, chunked or compressed encoding"


class Refused(Exception):
    """The body cannot be taken: the status to answer and why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def decoded(body: bytes, encoding: str | None, limit: int) -> bytes:
    """`body` unzipped per `encoding` (a Content-Encoding header's value), at most `limit` bytes of it; a
    coding aiohttp never read (none, `identity`, a name of the sender's own) leaves it as it came, as
    before. Refused: 400 for bytes that are not what the header says, 413 past the limit, 415 for br and
    zstd."""
    coding = (encoding or "").strip().lower()
    if coding in NOT_READ:
        raise Refused(415, f"Content-Encoding: {coding} is not read here (gzip and deflate are; or send the body "
                           "as it is)")
    if coding not in READ or not body:
        return body
    out = bytearray()
    rest = body
    while True:  # a gzip body may be several members one after another
        if coding == "deflate" and rest[:1] and rest[0] & 0x0F != 8:
            wbits = -zlib.MAX_WBITS  # a raw deflate stream, without the zlib header, as some senders send it
        else:
            wbits = 16 + zlib.MAX_WBITS if coding == "gzip" else zlib.MAX_WBITS
        unzip = zlib.decompressobj(wbits)
        try:
            out += unzip.decompress(rest, limit + 1 - len(out))
        except zlib.error:
            raise Refused(400, BAD) from None
        if len(out) > limit or unzip.unconsumed_tail:
            raise Refused(413, f"the body is larger than max_body ({limit:,} bytes) once unzipped")
        if not unzip.eof:
            raise Refused(400, BAD)
        rest = unzip.unused_data
        if coding != "gzip" or not rest:
            return bytes(out)
