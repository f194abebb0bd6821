"""Alerts of flowlang.toml against real local servers: an SMTP server (aiosmtpd) that requires
STARTTLS and a login, and an HTTP receiver for webhooks; and the Prometheus metrics file."""

from __future__ import annotations

import datetime
import email
import email.utils
import ipaddress
import json
import socket
import ssl
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from conftest import cli, run_cli
from fakeapi import FakeApi

PASSWORD = 'smtp"pa\\ss-é' + "x" * 520  # the SMTP password is a canary: quotes, backslash, non-ASCII, long

FLOW = """
flow "Nightly orders"
use api = http(base_url: env.API)
for each n in [1, 2, 3]
  if n == 2
    fail "order {n} has no customer"
  end
  if n == 3
    fail "order {n} has no customer"
  end
  emit n
end
"""


def make_cert(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made here (no network, no CLI tool)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.logins: list[tuple[str, str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[tuple[int, Mailbox, Path]]:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = make_cert(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    box = Mailbox()

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login == b"alerts" and data.password == PASSWORD.encode()
        if isinstance(data, LoginPassword):
            box.logins.append((data.login.decode(), "ok" if ok else "refused"))
        return AuthResult(success=ok)

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
                            authenticator=authenticator, auth_require_tls=True)
    controller.start()
    try:
        yield port, box, cert
    finally:
        controller.stop()


def project(folder: Path, port: int, cert: Path, min_interval: str = "1h", hook: str | None = None) -> None:
    text = (f'[alerts]\non = ["failed", "partial"]\nmin_interval = "{min_interval}"\n'
            f'[alerts.email]\nhost = "127.0.0.1"\nport = {port}\nuser = "alerts"\npassword_secret = "SMTP_PASSWORD"\n'
            f'from = "flowlang@acme.test"\nto = ["ops@acme.test", "oncall@acme.test"]\nca_file = "{cert.name}"\n')
    if hook:
        text += '[alerts.webhook]\nurl_secret = "HOOK_URL"\nformat = "slack"\n'
    (folder / "flowlang.toml").write_text(text)
    (folder / "secrets.toml").write_text("SMTP_PASSWORD = " + json.dumps(PASSWORD, ensure_ascii=False) + "\n"
                                         + (f'HOOK_URL = "{hook}"\n' if hook else ""), encoding="utf-8")


def run(folder: Path, api: str = "http://127.0.0.1:9", *extra: str) -> Any:
    return run_cli("run", "orders.flow", "--secrets", "secrets.toml", "--log-format", "json", *extra, cwd=folder,
                   env={"API": api, "TZ": "Pacific/Chatham"})


def test_a_partial_run_mails_once_with_grouped_errors(tmp_path: Path, smtp: tuple[int, Mailbox, Path]) -> None:
    port, box, cert = smtp
    (tmp_path / "orders.flow").write_text(FLOW)
    project(tmp_path, port, cert)
    proc = run(tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert len(box.messages) == 1
    assert box.logins == [("alerts", "ok")]
    mail = box.messages[0]
    assert mail["Subject"] == "flowlang: Nightly orders finished with failed records (job 1)"
    assert mail["To"] == "ops@acme.test, oncall@acme.test"
    # dated in UTC, whatever the machine's zone, and with an id (a relay such as Postfix adds neither)
    sent_at = email.utils.parsedate_to_datetime(mail["Date"])
    now = datetime.datetime.now(datetime.UTC)
    assert mail["Date"].endswith("+0000") and abs((now - sent_at).total_seconds()) < 120
    assert mail["Message-ID"].startswith("<") and mail["Message-ID"].endswith("@acme.test>")
    body = mail.get_payload(decode=True).decode()
    assert "Records: read 3, sent 0, failed 2, skipped 0" in body
    # grouped as flowlang errors --group groups them: by the shape of the message
    assert "  2 x order 2 has no customer (all like: order <n> has no customer)" in body
    assert "flowlang errors orders.flow --group" in body
    assert "alert sent: email to ops@acme.test" in proc.stderr
    # a second bad run within min_interval is held back, and the next alert says so
    run(tmp_path)
    assert len(box.messages) == 1
    project(tmp_path, port, cert, min_interval="0s")
    run(tmp_path)
    assert len(box.messages) == 2
    assert "(1 more run ended so since the last alert" in box.messages[1].get_payload(decode=True).decode()
    for text in [proc.stdout, proc.stderr, *(m.as_string() for m in box.messages)]:
        assert PASSWORD not in text and PASSWORD[:30] not in text and json.dumps(PASSWORD)[1:-1] not in text


def test_a_good_run_sends_nothing_and_a_test_run_never_alerts(tmp_path: Path,
                                                             smtp: tuple[int, Mailbox, Path]) -> None:
    port, box, cert = smtp
    (tmp_path / "orders.flow").write_text("flow \"Nightly orders\"\nfor each n in [1]\n  emit n\nend\n")
    project(tmp_path, port, cert, min_interval="0s")
    assert run(tmp_path).returncode == 0
    (tmp_path / "orders.flow").write_text(FLOW)
    assert run(tmp_path, "http://127.0.0.1:9", "--dry-run").returncode == 3
    assert box.messages == []


def test_slack_webhook_and_an_unreachable_mail_server(tmp_path: Path) -> None:
    with FakeApi() as hook:
        hook.route("POST", "/services/T0/B0/secretpart", lambda req: (200, {}, "ok"))
        (tmp_path / "orders.flow").write_text(FLOW)
        (tmp_path / "cert.pem").write_text("")
        project(tmp_path, 9, tmp_path / "cert.pem", min_interval="0s", hook=f"{hook.url}/services/T0/B0/secretpart")
        proc = run(tmp_path)
        assert proc.returncode == 3  # an alert that cannot be delivered never changes the outcome
        posts = [r for r in hook.requests if r.method == "POST"]
        assert len(posts) == 1
        assert posts[0].body["text"].startswith("flowlang: Nightly orders finished with failed records (job 1)\n")
        assert "2 x order 2 has no customer (all like: order <n> has no customer)" in posts[0].body["text"]
        lines = [json.loads(x) for x in proc.stderr.splitlines() if x.startswith("{")]
        warnings = [x["message"] for x in lines if x["level"] == "warning"]
        assert any(m.startswith("alert not delivered: email to ops@acme.test") for m in warnings)
        assert "secretpart" not in proc.stderr  # the webhook URL is a secret: shown as (secret HOOK_URL)
        assert "alert sent: webhook (secret HOOK_URL)" in proc.stderr


def test_an_alert_not_delivered_does_not_hold_back_the_next(tmp_path: Path) -> None:
    """The alert's slot was taken before it was sent, so a webhook that answered 503 (or a mail server
    down) held back every alert of the next hour: 'alert to webhook ... held back: one was sent less than
    3600s ago', though none was. A failed delivery gives its slot back: the next run alerts, counting it."""
    answers = iter([(503, {}, "down"), (200, {}, "ok"), (200, {}, "ok")])
    with FakeApi() as hook:
        hook.route("POST", "/services/T0/B0/secretpart", lambda req: next(answers))
        (tmp_path / "orders.flow").write_text(FLOW)
        (tmp_path / "cert.pem").write_text("")
        project(tmp_path, 9, tmp_path / "cert.pem", min_interval="1h", hook=f"{hook.url}/services/T0/B0/secretpart")
        first = run(tmp_path)
        assert first.returncode == 3 and "alert not delivered: webhook (secret HOOK_URL)" in first.stderr
        second = run(tmp_path)
        assert second.returncode == 3
        assert "alert sent: webhook (secret HOOK_URL)" in second.stderr, second.stderr
        third = run(tmp_path)  # the one delivered starts the interval
        assert "alert to webhook (secret HOOK_URL) held back" in third.stderr
        posts = [r.body["text"] for r in hook.requests if r.method == "POST"]
    assert len(posts) == 2 and "(job 2)" in posts[1].splitlines()[0]
    assert "(1 more run ended so since the last alert to this target" in posts[1], posts[1]


def test_metrics_file(tmp_path: Path) -> None:
    (tmp_path / "orders.flow").write_text(FLOW)
    proc = run_cli("run", "orders.flow", "--metrics-file", "metrics/orders.prom", cwd=tmp_path,
                   env={"API": "http://127.0.0.1:9"})
    assert proc.returncode == 3
    text = (tmp_path / "metrics" / "orders.prom").read_text()
    from prometheus_client.parser import text_string_to_metric_families

    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    flow = ("flow", "Nightly orders")
    assert samples[("flowlang_run_records", (flow, ("outcome", "read")))] == 3
    assert samples[("flowlang_run_records", (flow, ("outcome", "failed")))] == 2
    assert samples[("flowlang_run_records", (flow, ("outcome", "emitted")))] == 1
    assert samples[("flowlang_run_status", (flow, ("status", "partial")))] == 1
    assert samples[("flowlang_run_status", (flow, ("status", "ok")))] == 0
    assert samples[("flowlang_run_job_id", (flow, ("kind", "run")))] == 1
    assert ("flowlang_run_last_success_timestamp_seconds", (flow,)) in samples
    assert not list((tmp_path / "metrics").glob("*.tmp*"))  # written through a temporary file, renamed
    (tmp_path / "blocked").write_text("a file, not a folder")
    proc = run_cli("run", "orders.flow", "--metrics-file", "blocked/x.prom", cwd=tmp_path,
                   env={"API": "http://127.0.0.1:9"})
    # the reason in words: mkdir's own was 'File exists', of a folder that does not exist
    assert proc.returncode == 3 and ("cannot write --metrics-file blocked/x.prom: blocked is a file, not a folder"
                                     in proc.stderr)
    assert "Traceback" not in proc.stderr and "File exists" not in proc.stderr


def test_metrics_file_of_a_test_run_and_of_a_retry(tmp_path: Path) -> None:
    """The job's kind in flowlang_run_job_id was 'run' for every run, a --limit test job's too, and
    flowlang retry, which docs/cli.md says records its job for --metrics-file, refused the option
    ('unrecognized arguments: --metrics-file'). The label is the job's kind, and retry takes it."""
    (tmp_path / "orders.flow").write_text(FLOW)
    from prometheus_client.parser import text_string_to_metric_families

    def job_ids(name: str) -> dict[tuple[Any, ...], float]:
        text = (tmp_path / name).read_text()
        return {tuple(sorted(s.labels.items())): s.value for family in text_string_to_metric_families(text)
                for s in family.samples if s.name == "flowlang_run_job_id"}

    env = {"API": "http://127.0.0.1:9"}
    assert run_cli("run", "orders.flow", "--limit", "2", "--metrics-file", "test.prom", cwd=tmp_path,
                   env=env).returncode == 3
    assert job_ids("test.prom") == {(("flow", "Nightly orders"), ("kind", "test")): 1}
    proc = run_cli("retry", "orders.flow", "--metrics-file", "retry.prom", cwd=tmp_path, env=env)
    assert proc.returncode == 3, proc.stderr
    assert job_ids("retry.prom") == {(("flow", "Nightly orders"), ("kind", "retry")): 2}
    assert 'flowlang_run_status{flow="Nightly orders",status="partial"} 1.0' in (tmp_path / "retry.prom").read_text()


@pytest.mark.parametrize(("table", "said"), [
    # before: 'internal error (OverflowError: cannot convert float infinity to integer)' for the run
    *[(f'[secrets.command]\ncommand = "true {{name}}"\ntimeout = {t}',
       "secrets.command.timeout: Input should be a finite number") for t in ("1e400", "inf")],
    ('[alerts.webhook]\nurl = "https://x.test"\ntimeout = 1e300',
     "alerts.webhook.timeout: Input should be less than or equal to 86400"),
    # before: -5 said 'Input should be greater than or equal to 0'; 1e300, 10^22 and "99999999999d" were taken,
    # and silenced the flow's alerts after its first
    *[(f"[alerts]\nmin_interval = {v}", "alerts.min_interval: Value error, must be a duration from 0 to 30d (at "
       f"most 2592000 seconds between two alerts of a flow to a target), got {shown}")
      for v, shown in (('"1e400s"', "'1e400s'"), ("-5", "-5"), ('"-5m"', "'-5m'"), ("1e300", "1e+300"),
                       ("10000000000000000000000", "10000000000000000000000"), ('"99999999999d"', "'99999999999d'"),
                       ('"31d"', "'31d'"), ("nan", "nan"))],
    # before: each alert 'not delivered: webhook ftp://x: NonHttpUrlClientError'
    ('[alerts.webhook]\nurl = "ftp://x.test/hook"', "'ftp://x.test/hook' is not an http:// or https:// URL"),
    ('[alerts.email]\nhost = "x"\nport = 99999999\nfrom = "a@x.test"\nto = ["b@x.test"]',
     "alerts.email.port: Input should be less than or equal to 65535"),
    # before: 'secret 'A' is not set; asked: ' (nothing), and a provider asked twice
    ("[secrets]\norder = []", "secrets.order: Value error, the order names no provider"),
    ('[secrets]\norder = ["env", "env"]', "secrets.order: Value error, 'env' is named twice"),
])
def test_a_project_setting_no_timer_or_socket_takes_is_refused_at_its_line(tmp_path: Path, table: str,
                                                                          said: str) -> None:
    (tmp_path / "f.flow").write_text("emit 1\n")
    (tmp_path / "flowlang.toml").write_text(table + "\n")
    result = cli("run", "f.flow", "--log-format", "text", cwd=tmp_path)
    assert result.status == 2 and said in result.stderr and "internal error" not in result.stderr, result.stderr
    assert " --> " in result.stderr and "flowlang.toml:" in result.stderr
    if "min_interval" in table:  # at the value: file:line:col
        assert "flowlang.toml:2:16\n" in result.stderr, result.stderr


def test_a_webhook_alert_not_delivered_says_why_in_words(tmp_path: Path) -> None:
    """'alert not delivered: webhook (secret HOOK_URL): ClientConnectorError' (or NonHttpUrlClientError for a
    secret URL that is not http): the class name only. It says what happened, never the secret URL."""
    (tmp_path / "orders.flow").write_text(FLOW)
    for url, said in (("http://127.0.0.1:9/hook-secretpart", "cannot connect: Connect call failed"),
                      ("ftp://127.0.0.1/hook-secretpart", "the URL is not an http:// or https:// URL")):
        (tmp_path / "flowlang.toml").write_text('[alerts]\nmin_interval = "0s"\n'
                                                '[alerts.webhook]\nurl_secret = "HOOK_URL"\n')
        (tmp_path / "secrets.toml").write_text(f'HOOK_URL = "{url}"\n')
        proc = run(tmp_path)
        warnings = [x["message"] for x in map(json.loads, proc.stderr.splitlines()) if x["level"] == "warning"]
        assert f"alert not delivered: webhook (secret HOOK_URL): {said}" in " ".join(warnings), warnings
        assert "secretpart" not in proc.stderr


def test_a_metrics_file_that_is_a_device_or_a_fifo_is_written_into_not_replaced(tmp_path: Path) -> None:
    """`flowlang run f.flow --metrics-file /dev/null` renamed its temporary file over /dev/null: run as root
    (a container), /dev/null became a regular file of the machine (found by hand-fuzzing the CLI's paths).
    A path that is a device or a FIFO is written into, as a shell's > does; a plain path is still replaced
    in one step. Tested on a null device made in the test's folder (mknod needs root) and on a FIFO."""
    import os
    import stat
    import threading

    (tmp_path / "f.flow").write_text("emit 1\n")
    fifo = tmp_path / "metrics.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    assert cli("run", "f.flow", "--metrics-file", str(fifo), cwd=tmp_path).status == 0
    reader.join(10)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and b"flowlang_run_records" in got[0]
    if os.geteuid() == 0:
        device = tmp_path / "null"
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        assert cli("run", "f.flow", "--metrics-file", str(device), cwd=tmp_path).status == 0
        assert stat.S_ISCHR(os.stat(device).st_mode), "the device was replaced by a file"
    assert cli("run", "f.flow", "--metrics-file", "m.prom", cwd=tmp_path).status == 0
    assert "flowlang_run_records" in (tmp_path / "m.prom").read_text()
