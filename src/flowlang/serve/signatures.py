"""Webhook signature checks: each preset (GitHub, Shopify, Stripe, Slack, Standard Webhooks, generic HMAC,
a token, basic auth) as its provider documents it, on the raw body bytes, compared in constant time,
with a timestamp tolerance where the provider signs a timestamp; several schemes (or secrets) are tried
for a rotation. Also: which header carries the delivery id, and which headers are credentials to mask."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from flowlang.check.triggers import VerifyScheme

Headers = Mapping[str, str]  # lower-cased names


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str = ""
    delivery_id: str | None = None  # from a header; presets whose id is in the body name its field instead
    id_field: str | None = None


DENY_MISSING = "missing signature"


def _mac(algorithm: str, key: bytes, content: bytes) -> bytes:
    return hmac.new(key, content, getattr(hashlib, algorithm)).digest()


def wire(text: str) -> bytes:
    """A header's text as the bytes sent: aiohttp reads a header's bytes as UTF-8, those that are none
    (b"\xff") as lone surrogates (surrogateescape), which encode() refused: a 500 for any such header."""
    return text.encode("utf-8", "surrogateescape")


def _same(expected: bytes | str, given: bytes | str) -> bool:
    a = wire(expected) if isinstance(expected, str) else expected
    b = wire(given) if isinstance(given, str) else given
    return hmac.compare_digest(a, b)


def _timestamp_ok(value: str, now: float, tolerance: int) -> tuple[bool, str]:
    try:
        moment = int(value.strip())
    except ValueError:
        return False, "the signature timestamp is not a number"
    if abs(now - moment) > tolerance:
        return False, f"the signature timestamp is more than {tolerance}s away from now"
    return True, ""


class Scheme:
    """A verify scheme with its secret values."""

    def __init__(self, spec: VerifyScheme, secrets: tuple[str, ...]) -> None:
        self.spec = spec
        self.preset = spec.preset
        self.secrets = secrets
        self.options = spec.options

    @property
    def credential_headers(self) -> set[str]:
        """The headers this scheme reads a signature or a credential from (masked when stored)."""
        return {h.lower() for h in SIGNATURE_HEADERS.get(self.preset, ())} | (
            {str(self.options["header"]).lower()} if "header" in self.options else set())

    def id_header(self) -> str | None:
        custom = str(self.options.get("id_header") or "")
        return custom.lower() or ID_HEADERS.get(self.preset)

    def verify(self, headers: Headers, body: bytes, now: float) -> Verdict:
        verdict = getattr(self, "_" + self.preset)(headers, body, now)
        assert isinstance(verdict, Verdict)
        if not verdict.ok:
            return verdict
        header = self.id_header()
        return Verdict(True, "", headers.get(header) if header else None, ID_FIELDS.get(self.preset))

    # ---- presets ---------------------------------------------------------------------------
    def _github(self, headers: Headers, body: bytes, now: float) -> Verdict:
        given = headers.get("x-hub-signature-256")
        if not given:
            return Verdict(False, DENY_MISSING + " (X-Hub-Signature-256)")
        for key in self.secrets:
            if _same("sha256=" + _mac("sha256", wire(key), body).hex(), given.strip()):
                return Verdict(True)
        return Verdict(False, "wrong signature")

    def _shopify(self, headers: Headers, body: bytes, now: float) -> Verdict:
        given = headers.get("x-shopify-hmac-sha256")
        if not given:
            return Verdict(False, DENY_MISSING + " (X-Shopify-Hmac-Sha256)")
        for key in self.secrets:
            if _same(base64.b64encode(_mac("sha256", wire(key), body)), given.strip()):
                return Verdict(True)
        return Verdict(False, "wrong signature")

    def _stripe(self, headers: Headers, body: bytes, now: float) -> Verdict:
        given = headers.get("stripe-signature")
        if not given:
            return Verdict(False, DENY_MISSING + " (Stripe-Signature)")
        parts = [p.split("=", 1) for p in given.split(",") if "=" in p]
        stamps = [v for k, v in parts if k.strip() == "t"]
        signatures = [v.strip() for k, v in parts if k.strip() == "v1"]
        if not stamps or not signatures:
            return Verdict(False, "the Stripe-Signature header has no t= or v1=")
        ok, why = _timestamp_ok(stamps[0], now, int(self.options["tolerance"]))
        if not ok:
            return Verdict(False, why)
        content = wire(stamps[0].strip()) + b"." + body
        for key in self.secrets:
            expected = _mac("sha256", wire(key), content).hex()
            if any(_same(expected, s) for s in signatures):
                return Verdict(True)
        return Verdict(False, "wrong signature")

    def _slack(self, headers: Headers, body: bytes, now: float) -> Verdict:
        given = headers.get("x-slack-signature")
        stamp = headers.get("x-slack-request-timestamp")
        if not given or not stamp:
            return Verdict(False, DENY_MISSING + " (X-Slack-Signature, X-Slack-Request-Timestamp)")
        ok, why = _timestamp_ok(stamp, now, int(self.options["tolerance"]))
        if not ok:
            return Verdict(False, why)
        content = b"v0:" + wire(stamp.strip()) + b":" + body
        for key in self.secrets:
            if _same("v0=" + _mac("sha256", wire(key), content).hex(), given.strip()):
                return Verdict(True)
        return Verdict(False, "wrong signature")

    def _standard(self, headers: Headers, body: bytes, now: float) -> Verdict:
        msg_id, stamp, given = (headers.get("webhook-id"), headers.get("webhook-timestamp"),
                                headers.get("webhook-signature"))
        if not msg_id or not stamp or not given:
            return Verdict(False, DENY_MISSING + " (webhook-id, webhook-timestamp, webhook-signature)")
        ok, why = _timestamp_ok(stamp, now, int(self.options["tolerance"]))
        if not ok:
            return Verdict(False, why)
        content = wire(f"{msg_id}.{stamp.strip()}.") + body
        offered = [s.split(",", 1)[1] for s in given.split() if s.startswith("v1,")]
        for key in self.secrets:
            expected = base64.b64encode(_mac("sha256", standard_key(key), content))
            if any(_same(expected, s) for s in offered):
                return Verdict(True)
        return Verdict(False, "wrong signature")

    def _hmac(self, headers: Headers, body: bytes, now: float) -> Verdict:
        header = str(self.options["header"])
        given = headers.get(header.lower())
        if not given:
            return Verdict(False, f"{DENY_MISSING} ({header})")
        prefix = str(self.options.get("prefix", ""))
        algorithm = str(self.options.get("algorithm", "sha256"))
        hexed = self.options.get("encoding", "hex") == "hex"
        for key in self.secrets:
            digest = _mac(algorithm, wire(key), body)
            encoded = digest.hex() if hexed else base64.b64encode(digest).decode()
            if _same(prefix + encoded, given.strip()):
                return Verdict(True)
        return Verdict(False, "wrong signature")

    def _token(self, headers: Headers, body: bytes, now: float) -> Verdict:
        header = str(self.options["header"])
        given = headers.get(header.lower())
        if not given:
            return Verdict(False, f"missing token ({header})")
        prefix = str(self.options.get("prefix", ""))
        if any(_same(prefix + key, given.strip()) for key in self.secrets):
            return Verdict(True)
        return Verdict(False, "wrong token")

    def _basic(self, headers: Headers, body: bytes, now: float) -> Verdict:
        given = headers.get("authorization")
        if not given:
            return Verdict(False, "missing credentials (Authorization)")
        user, password = self.secrets
        expected = base64.b64encode(wire(f"{user}:{password}")).decode()
        scheme, _, credentials = given.strip().partition(" ")
        # the scheme's name is case-insensitive (RFC 9110 11.1): 'basic dTpw' was 'wrong user or password'
        if scheme.lower() == "basic" and _same(expected, credentials.strip()):
            return Verdict(True)
        return Verdict(False, "wrong user or password")


def standard_key(secret: str) -> bytes:
    """A Standard Webhooks secret is `whsec_` + the base64 of the key."""
    text = secret[len("whsec_"):] if secret.startswith("whsec_") else secret
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return wire(secret)


SIGNATURE_HEADERS = {
    "github": ("X-Hub-Signature-256", "X-Hub-Signature"),
    "shopify": ("X-Shopify-Hmac-Sha256",),
    "stripe": ("Stripe-Signature",),
    "slack": ("X-Slack-Signature",),
    "standard": ("webhook-signature",),
    "basic": ("Authorization",),
}
ID_HEADERS = {"github": "x-github-delivery", "shopify": "x-shopify-webhook-id", "standard": "webhook-id"}
ID_FIELDS = {"stripe": "id", "slack": "event_id"}  # the delivery id is a field of the JSON body
ALWAYS_MASKED = ("authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key")
MASK_WORDS = ("signature", "token", "secret", "password", "hmac", "auth", "api-key", "apikey")


def check(schemes: list[Scheme], headers: Headers, body: bytes, now: float) -> Verdict:
    """The first scheme that accepts the delivery, else the first scheme's reason."""
    first: Verdict | None = None
    for scheme in schemes:
        verdict = scheme.verify(headers, body, now)
        if verdict.ok:
            return verdict
        first = first or verdict
    return first or Verdict(False, "no verify scheme")


def masked_headers(headers: Headers, schemes: list[Scheme], mask: Callable[[str], str]) -> dict[str, str]:
    """The headers as stored with a delivery: credentials and signatures become ***, and a verify
    secret in any other header (a relay that copies it) is masked where it stands (`mask`)."""
    secret_names = set(ALWAYS_MASKED)
    for scheme in schemes:
        secret_names |= scheme.credential_headers
    out = {}
    for name, value in headers.items():
        low = name.lower()
        hidden = low in secret_names or any(w in low for w in MASK_WORDS)
        out[low] = "***" if hidden else mask(value)
    return out
