"""Where alerts go: an email over SMTP (STARTTLS or TLS, aiosmtplib) or a JSON POST to a webhook
(Slack and Teams incoming webhooks included). Senders get finished, masked text; they add nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

import aiohttp


class AlertDeliveryError(Exception):
    """An alert could not be delivered (the message says why, never a credential)."""


@dataclass
class SmtpTarget:
    host: str
    port: int
    sender: str
    to: list[str]
    starttls: bool = True
    tls: bool = False
    user: str | None = None
    password: str | None = None
    ca_file: str | None = None
    timeout: float = 30.0

    @property
    def label(self) -> str:
        return f"email to {', '.join(self.to)} via {self.host}:{self.port}"

    async def send(self, subject: str, text: str, data: dict[str, Any]) -> None:
        import aiosmtplib

        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = ", ".join(self.to)
        message["Subject"] = subject
        # RFC 5322 wants both; an SMTP relay such as Postfix adds neither for a remote client (the alert
        # arrived undated, sorted as 1970 or filed as spam). The time is UTC, as the store's are.
        message["Date"] = format_datetime(datetime.now(UTC))
        domain = self.sender.rpartition("@")[2].strip("> ") or "flowlang.invalid"  # not getfqdn(): no DNS wait
        message["Message-ID"] = make_msgid("flowlang", domain=domain)
        message.set_content(text)
        try:
            await aiosmtplib.send(message, hostname=self.host, port=self.port, username=self.user,
                                  password=self.password, start_tls=self.starttls and not self.tls,
                                  use_tls=self.tls, timeout=self.timeout, cert_bundle=self.ca_file)
        except (aiosmtplib.SMTPException, OSError) as e:
            raise AlertDeliveryError(f"{self.label}: {type(e).__name__}: {getattr(e, 'message', e)}") from None


@dataclass
class WebhookTarget:
    url: str
    shown_url: str  # the URL as it may be shown (a Slack URL is itself a secret)
    format: str = "json"  # json: the report as an object; slack: {"text": ...}
    timeout: float = 10.0

    @property
    def label(self) -> str:
        return f"webhook {self.shown_url}"

    async def send(self, subject: str, text: str, data: dict[str, Any]) -> None:
        body: dict[str, Any] = {"text": f"{subject}\n{text}"} if self.format == "slack" else \
            {"subject": subject, "text": text, **data}
        try:
            timeout = aiohttp.ClientTimeout(total=self.timeout)
            async with aiohttp.ClientSession(timeout=timeout) as session, \
                    session.post(self.url, json=body, allow_redirects=False) as response:
                if response.status >= 300:
                    raise AlertDeliveryError(f"{self.label} answered {response.status}")
        except (aiohttp.ClientError, TimeoutError) as e:
            raise AlertDeliveryError(f"{self.label}: {webhook_problem(e, self.timeout)}") from None


def webhook_problem(error: BaseException, timeout: float) -> str:
    """Why a webhook alert did not arrive, in words (never the error's own text: it may quote a secret URL)."""
    if isinstance(error, TimeoutError):
        return f"no answer within {timeout:g}s"
    if isinstance(error, aiohttp.NonHttpUrlClientError | aiohttp.InvalidURL):
        return "the URL is not an http:// or https:// URL"
    if isinstance(error, aiohttp.ClientConnectorError):
        return f"cannot connect: {error.os_error.strerror or type(error.os_error).__name__}"
    return type(error).__name__
