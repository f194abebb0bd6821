"""Benchmark: what masking secrets costs a line of output. `flowlang run` masks every output line and
log message when the run knows a secret. Masks N JSON lines of a typical record with (a) a canary
secret of 80 characters and (b) a PEM private key of ~1,700 characters (an SFTP key, a service
account's), each against the same masker with whole secrets only (pieces of 9 characters or more
not looked for), measured in the same run. Prints microseconds a line and the ratio.

    python benchmarks/masking.py [--lines N] [--repeat R]
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import time

from flowlang.runtime import masking
from flowlang.runtime.masking import Masker


def canary() -> str:
    return "tok_" + "Zq7'\"\\x/é中😀+ &<b>%41 " * 3 + "Rk3v9Wm2Lp8Tx5Qn"


def pem_key(rng: random.Random) -> str:
    lines = [base64.b64encode(rng.randbytes(48)).decode() for _ in range(26)]
    return "-----BEGIN PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END PRIVATE KEY-----\n"


def lines(n: int, rng: random.Random) -> list[str]:
    return [json.dumps({"id": i, "email": f"user{i}@example.com", "total": f"{rng.randint(1, 99999) / 100}",
                        "note": "lorem ipsum dolor sit amet " * rng.randint(1, 6)}) for i in range(n)]


def per_line(secret: str, texts: list[str], pieces: bool, repeat: int) -> float:
    masker = Masker()
    masker.add(secret)
    saved = masking._fragment_forms
    if not pieces:
        masking._fragment_forms = lambda value: set()  # whole secrets and their encodings only
    try:
        masker.mask("warm up: compile the patterns")
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            for text in texts:
                masker.mask(text)
            best = min(best, time.perf_counter() - start)
    finally:
        masking._fragment_forms = saved
    return best / len(texts) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(7)
    texts = lines(args.lines, rng)
    print(f"lines: {args.lines:,} of {sum(map(len, texts)) // len(texts)} characters on average")
    for name, secret in (("canary, 80 characters", canary()), ("PEM key, 1,700 characters", pem_key(rng))):
        whole = per_line(secret, texts, False, args.repeat)
        both = per_line(secret, texts, True, args.repeat)
        print(f"{name}: {both:.1f} us a line with pieces, {whole:.1f} us whole secrets only; "
              f"ratio {both / whole:.2f}")


if __name__ == "__main__":
    main()
