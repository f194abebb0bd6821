"""Masking rules: the cost of a long secret."""

from __future__ import annotations

import base64
import json
import random
import string
import tracemalloc

from flowlang.runtime.masking import Masker


def test_a_400_kb_secret_is_learned_in_proportion_and_masked_in_every_form() -> None:
    """A 400 KB secret (a key bundle) took 8 s and 826 MB of memory to learn: every 5-character window
    of its 12 forms (4.7 million) was indexed with a list and a tuple each, and its forms compiled into
    one regular expression of 10 MB. Long forms are now looked for as text and a long secret's pieces
    from 32 characters (one window in 28 indexed): about 70 MB."""
    rng = random.Random(7)
    body = "".join(rng.choice(string.ascii_letters + string.digits + "+/") for _ in range(400_000))
    secret = json.dumps({"private_key": "-----BEGIN PRIVATE KEY-----\n" + body + "\n-----END PRIVATE KEY-----\n"})
    masker = Masker()
    tracemalloc.start()
    try:
        masker.add(secret)
        assert masker.mask("nothing here") == "nothing here"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 250_000_000, f"{peak:,} bytes"
    raw = secret.encode()
    for form in (secret, json.dumps(secret)[1:-1], raw.hex(), base64.b64encode(raw).decode(),
                 base64.urlsafe_b64encode(raw).decode()):
        assert masker.mask(f"echo {form} end") == "echo *** end"
    for k in (1, 2):  # base64 of the secret inside a longer encoded text, at each alignment
        encoded = base64.b64encode(b"x" * k + raw + b"y").decode()
        assert len(masker.mask(encoded)) < 20
    piece = body[200_000:200_032]  # a piece of 32 characters (LONG_FRAGMENT)
    assert masker.mask(f"near '{piece}': syntax error") == "near '***': syntax error"
    assert masker.mask(f"line 1 {base64.b64encode(raw).decode()[1000:1076]}") == "line 1 ***"
