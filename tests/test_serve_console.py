"""The console of a running `flowlang serve`, in a real headless Chromium: the jobs list, an error's
record, the retry and resolve buttons working, run now, an action without the token refused (and a
form without its CSRF token refused)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import pytest

from browser import open_chromium
from conftest import run_cli
from fakeapi import FakeApi, Request
from serving import ServeProcess, wait_for

chromium = pytest.fixture(open_chromium)

CONSOLE_TOKEN = 'console-"tok"-\\-' + "k" * 40
HOOK_TOKEN = "hook-token-" + "h" * 30
FLOW = '''flow "Orders"
trigger webhook(verify: token(secret.HOOK_TOKEN, header: "X-Token"))
trigger schedule("0 6 * * 1-5", tz: "Europe/Oslo")
use api = http(base_url: env.API)
for each o in input.orders ?? []
  send o to api.post("/orders")
end
'''


def test_the_console_in_chromium(tmp_path: Path, chromium: Any) -> None:
    from selenium.webdriver.common.by import By

    fixed = threading.Event()

    def orders(req: Request) -> tuple[int, dict[str, str], Any]:
        n = req.body["n"]
        if n == 3 or (n == 2 and not fixed.is_set()):
            return 422, {}, {"error": f"order {n} refused"}
        return 201, {}, {"ok": n}

    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "orders.flow").write_text(FLOW)
    token_file = tmp_path / "token"
    token_file.write_text(CONSOLE_TOKEN + "\n")
    with FakeApi() as api:
        api.route("POST", r"^/orders$", orders)
        env = {"API": api.url, "HOOK_TOKEN": HOOK_TOKEN}
        with ServeProcess(folder, "--console-token-file", str(token_file), env=env) as serve:
            body = json.dumps({"orders": [{"n": 1}, {"n": 2, "note": "ø <b>"}, {"n": 3}]}).encode()
            assert serve.post("/hooks/orders", body, {"X-Token": HOOK_TOKEN})[0] == 202
            wait_for(lambda: api.count("POST", "/orders") >= 3, what="the delivery's run")

            def follow(element: Any) -> None:
                """Click a button or link and wait for the page it leads to."""
                from selenium.common.exceptions import WebDriverException
                from selenium.webdriver.support.wait import WebDriverWait

                # Mark the current document, click, and wait for a document without the mark.
                # (Selenium's staleness_of can hit chromedriver's "Node with given id does not
                # belong to the document" while the old page is being torn down.)
                chromium.execute_script("window.__flowlangOldPage = true;")
                element.click()

                def new_page_loaded(driver: Any) -> bool:
                    return bool(driver.execute_script(
                        "return window.__flowlangOldPage === undefined"
                        " && document.readyState === 'complete';"
                    ))

                WebDriverWait(chromium, 120, ignored_exceptions=(WebDriverException,)).until(
                    new_page_loaded
                )

            def click(element_id: str) -> str:
                """Click the element with this id, wait for the page it leads to; that page's notice."""
                follow(chromium.find_element(By.ID, element_id))
                found = chromium.find_elements(By.ID, "notice")
                return str(found[0].text) if found else ""

            def rows(kind: str) -> list[Any]:
                return chromium.find_elements(By.CSS_SELECTOR, f"tr.{kind}")

            def open_console() -> None:
                def finished() -> bool:
                    chromium.get(serve.url + "/")
                    return bool(rows("job")) and rows("job")[0].get_attribute("data-status") != "running"
                wait_for(finished, what="the latest job to show as finished")

            # the jobs list, the flows with their triggers and next tick, the open errors
            open_console()
            wait_for(lambda: (open_console(), len(rows("error")) == 2)[1], what="two open errors")
            job = rows("job")[0]
            assert job.get_attribute("data-status") == "partial" and "webhook" in job.text
            assert "3 / 1 / 2" in job.text  # read / sent / failed
            flow = chromium.find_element(By.CSS_SELECTOR, "tr.flow")
            assert "webhook, verified by token" in flow.text and "next tick" in flow.text
            assert chromium.find_elements(By.CSS_SELECTOR, "svg.steps g.step")
            errors = {e.get_attribute("data-id"): e for e in rows("error")}
            first, second = sorted(errors, key=int)
            assert "order 2 refused" in errors[first].text

            # an error's record, on its own page (escaped, not interpreted)
            follow(errors[first].find_element(By.TAG_NAME, "a"))
            record = chromium.find_element(By.ID, "record").text
            assert json.loads(record) == {"n": 2, "note": "ø <b>"}

            # an action without the token is refused, and changes nothing
            assert "needs the console token" in click(f"retry-{first}")
            fixed.set()
            open_console()
            assert len(rows("error")) == 2

            # log in with the token through the form; a wrong token first
            chromium.get(serve.url + "/login")
            chromium.find_element(By.ID, "token").send_keys("wrong-token-xxxxxxxxxxxx")
            assert "wrong console token" in click("login")
            chromium.find_element(By.ID, "token").send_keys(CONSOLE_TOKEN)
            click("login")
            wait_for(lambda: chromium.find_elements(By.CSS_SELECTOR, "tr.error"), what="the console after login")

            # retry works: the receiver takes order 2 now, and the error is resolved
            posts_before = api.count("POST", "/orders")
            assert f"error {first} resolved" in click(f"retry-{first}")
            assert api.count("POST", "/orders") == posts_before + 1
            assert [e.get_attribute("data-id") for e in rows("error")] == [second]

            # resolve works: order 3 is given up by hand
            assert f"error {second} resolved by hand" in click(f"resolve-{second}")
            assert rows("error") == []

            # run now: a job of kind run
            assert "orders: job" in click("run-orders")
            kinds = [r.find_elements(By.TAG_NAME, "td")[2].text for r in rows("job")]
            assert kinds[0] == "run" and "webhook" in kinds and "retry" in kinds

            # a form posted with the session cookie but without its CSRF token is refused
            assert_csrf_is_required(serve.url, serve)
            assert serve.terminate() == 0


def assert_csrf_is_required(url: str, serve: ServeProcess) -> None:
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    data = urllib.parse.urlencode({"token": CONSOLE_TOKEN}).encode()
    opener.open(url + "/login", data=data, timeout=30)
    assert any(c.name == "flowlang_console" for c in jar)
    try:
        opener.open(url + "/actions/run/orders", data=b"", timeout=30)
    except urllib.error.HTTPError as e:
        assert e.code == 403 and "CSRF" in e.read().decode()
    else:
        raise AssertionError("a form without its CSRF token was accepted")
    # a bearer token works without a form (for scripts)
    status, _, answer = serve.request("POST", "/actions/run/orders", b"",
                                      {"Authorization": f"Bearer {CONSOLE_TOKEN}"})
    assert status == 200 and answer["ok"] is True
    status, _, _ = serve.request("POST", "/actions/run/orders", b"", {"Authorization": "Bearer nope-nope-nope"})
    assert status == 403


def test_without_a_token_file_the_console_is_read_only(tmp_path: Path) -> None:
    (tmp_path / "a.flow").write_text("emit 1\n")
    with ServeProcess(tmp_path) as serve:
        status, _, page = serve.request("GET", "/")
        assert status == 200 and "a.flow" in page
        status, _, answer = serve.request("POST", "/actions/run/a", b"", {"Authorization": "Bearer anything-at-all"})
        assert status == 403 and "--console-token-file" in answer["error"]
        assert serve.terminate() == 0


def test_the_bearer_scheme_name_is_case_insensitive(tmp_path: Path) -> None:
    """RFC 9110 11.1: 'bearer TOKEN' was refused, 403 'this action needs the console token'."""
    (tmp_path / "a.flow").write_text("emit 1\n")
    (tmp_path / "token").write_text(CONSOLE_TOKEN)
    with ServeProcess(tmp_path, "--console-token-file", str(tmp_path / "token")) as serve:
        for scheme in ("bearer", "BEARER", "Bearer "):
            bearer = {"Authorization": f"{scheme} {CONSOLE_TOKEN}"}
            status, _, answer = serve.request("POST", "/actions/run/a", b"", bearer)
            assert status == 200 and answer["ok"] is True, (scheme, answer)
        for wrong in (f"Basic {CONSOLE_TOKEN}", f"Bearer{CONSOLE_TOKEN}", CONSOLE_TOKEN):
            status, _, answer = serve.request("POST", "/actions/run/a", b"", {"Authorization": wrong})
            assert status == 403, (wrong, answer)
        assert serve.terminate() == 0


def test_actions_and_pages_on_an_error_that_is_not_there(tmp_path: Path) -> None:
    (tmp_path / "a.flow").write_text("emit 1\n")
    (tmp_path / "token").write_text(CONSOLE_TOKEN)
    bearer = {"Authorization": f"Bearer {CONSOLE_TOKEN}"}
    with ServeProcess(tmp_path, "--console-token-file", str(tmp_path / "token")) as serve:
        # before: a retry job ran, retried nothing, and the answer said 'error 12345 failed again (job 1)';
        # then it answered 200 {"ok": true, "notice": "no error 12345"}, as if it had been done
        for action in ("retry", "resolve"):
            status, _, answer = serve.request("POST", f"/actions/{action}/a/12345", b"", bearer)
            assert (status, answer) == (404, {"error": "no error 12345 in the flow 'a'"}), answer
        huge = "9" * 30  # more than SQLite's integers: before, a 500 'Server got itself in trouble'
        for method, path in (("POST", f"/actions/retry/a/{huge}"), ("POST", f"/actions/resolve/a/{huge}")):
            status, _, answer = serve.request(method, path, b"", bearer)  # it was aiohttp's plain '404: Not Found'
            assert (status, answer) == (404, {"error": f"no error {huge} in the flow 'a'"}), (path, answer)
        for path in (f"/errors/a/{huge}", "/errors/a/x", "/errors/nope/1"):
            status, _, page = serve.request("GET", path)
            assert status == 404 and "<h1>not found</h1>" in page, (path, page)
        # the page of an error that is not there said 'no error 12345' with 200; an action on a flow that is
        # not served answered a script aiohttp's plain '404: Not Found'
        status, _, page = serve.request("GET", "/errors/a/12345")
        assert status == 404 and "no error 12345" in page
        for path in ("/actions/run/nope", "/actions/retry/nope/1", "/actions/resolve/nope/1"):
            status, _, answer = serve.request("POST", path, b"", bearer)
            assert (status, answer) == (404, {"error": "no served flow is called 'nope'"}), (path, answer)
        assert serve.terminate() == 0
        assert "Traceback" not in serve.logs()
    jobs = run_cli("jobs", str(tmp_path / "a.flow"))
    assert "retry" not in jobs.stdout, jobs.stdout  # no job was started for an error that is not there


def test_resolving_by_hand_says_when_in_utc_as_the_store_and_the_console_do(tmp_path: Path) -> None:
    """The notice gave the machine's local time ('... at 2026-12-05T03:01:00.123456+05:30' in Kolkata)
    beside jobs, errors and next ticks all shown in UTC."""
    (tmp_path / "a.flow").write_text('for each n in [1]\n  fail "no {n}"\nend\n')
    (tmp_path / "token").write_text(CONSOLE_TOKEN)
    env = {"TZ": "Asia/Kolkata"}
    assert run_cli("run", str(tmp_path / "a.flow"), env=env).returncode == 3
    with ServeProcess(tmp_path, "--console-token-file", str(tmp_path / "token"), env=env) as serve:
        status, _, answer = serve.request("POST", "/actions/resolve/a/1", b"",
                                          {"Authorization": f"Bearer {CONSOLE_TOKEN}"})
        assert serve.terminate() == 0
    assert status == 200 and answer["notice"].startswith("error 1 resolved by hand at "), answer
    assert answer["notice"].endswith("Z") and "+05:30" not in answer["notice"], answer
    listed = json.loads(run_cli("errors", str(tmp_path / "a.flow"), "--all", "--json", env=env).stdout)
    said, stored = (datetime.fromisoformat(t.replace("Z", "+00:00"))
                    for t in (answer["notice"].rsplit(" ", 1)[1], listed["resolved_at"]))
    assert abs((said - stored).total_seconds()) < 5, (answer, listed)


def test_a_flow_whose_file_name_needs_encoding_has_working_links_and_route(tmp_path: Path) -> None:
    """'what? #1.flow': the console's forms posted to '/actions/run/what? #1' (a browser sends that to
    /actions/run/what, the rest a query and a fragment) and serve logged its route as '/hooks/what? #1', not
    the URL a provider's webhook settings take. Both are percent-encoded now, and they work."""
    import re

    (tmp_path / "what? #1.flow").write_text('flow "odd"\ntrigger webhook(verify: token(secret.HOOK_TOKEN, '
                                            'header: "X-Token"))\nfor each o in input.items\n  fail "no {o}"\nend\n')
    token_file = tmp_path / "token.txt"
    token_file.write_text(CONSOLE_TOKEN + "\n")
    with ServeProcess(tmp_path, "--console-token-file", str(token_file), env={"HOOK_TOKEN": HOOK_TOKEN}) as serve:
        assert "/hooks/what%3F%20%231 (verify token" in serve.logs()
        assert serve.post("/hooks/what%3F%20%231", b'{"items": [1]}', {"X-Token": HOOK_TOKEN})[0] == 202
        wait_for(lambda: "/errors/" in serve.request("GET", "/")[2], what="the open error")
        page = serve.request("GET", "/")[2]
        actions = re.findall(r'action="([^"]+)"', page)
        assert actions == ["/actions/run/what%3F%20%231", "/actions/retry/what%3F%20%231/1",
                           "/actions/resolve/what%3F%20%231/1"]
        bearer = {"Authorization": f"Bearer {CONSOLE_TOKEN}"}
        status, _, answer = serve.request("POST", actions[0], b"", bearer)
        assert status == 200 and answer["notice"].startswith("what? #1: job 2 "), answer
        status, _, answer = serve.request("POST", actions[2], b"", bearer)
        assert status == 200 and answer["notice"].startswith("error 1 resolved by hand"), answer
        assert serve.terminate() == 0


def test_an_action_that_does_nothing_is_not_answered_ok(tmp_path: Path) -> None:
    """Resolving an error resolved already, retrying it, and running a flow whose lock a `flowlang run`
    holds answered 200 {"ok": true, "notice": ...}: a script took them as done. 409 with why, nothing run."""
    import subprocess
    import sys

    release = threading.Event()

    def slow(req: Request) -> tuple[int, dict[str, str], Any]:
        release.wait(60)
        return 200, {}, {"ok": True}

    (tmp_path / "token").write_text(CONSOLE_TOKEN)
    bearer = {"Authorization": f"Bearer {CONSOLE_TOKEN}"}
    (tmp_path / "a.flow").write_text('for each n in [1]\n  fail "no {n}"\nend\n')
    (tmp_path / "slow.flow").write_text('use api = http(base_url: env.API)\ncall api.get("/slow") as r\nemit r\n')
    assert run_cli("run", str(tmp_path / "a.flow")).returncode == 3
    with FakeApi() as api, ServeProcess(tmp_path, "--console-token-file", str(tmp_path / "token"),
                                        env={"API": api.url}) as serve:
        api.route("GET", r"^/slow$", slow)
        assert serve.request("POST", "/actions/resolve/a/1", b"", bearer)[0] == 200
        for action in ("resolve", "retry"):
            status, _, answer = serve.request("POST", f"/actions/{action}/a/1", b"", bearer)
            assert (status, answer) == (409, {"error": "error 1 of 'a' was already resolved"}), answer
        env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("FLOWLANG_")}
        run = subprocess.Popen([sys.executable, "-m", "flowlang", "run", str(tmp_path / "slow.flow")],
                               env={**env, "API": api.url}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: api.count("GET", "/slow") == 1, what="the run holding the lock")
            status, _, answer = serve.request("POST", "/actions/run/slow", b"", bearer)
            assert status == 409 and answer["error"].startswith("slow: cannot run: "), answer
        finally:
            release.set()
            assert run.wait(60) == 0
        assert api.count("GET", "/slow") == 1  # the console's run did not run
        assert serve.terminate() == 0
    jobs = run_cli("jobs", str(tmp_path / "a.flow"), "--json").stdout.splitlines()
    kinds = [json.loads(j)["kind"] for j in jobs]
    assert "retry" not in kinds, kinds


def test_a_token_or_form_whose_bytes_are_no_text_is_refused_not_a_500(tmp_path: Path) -> None:
    """`Authorization: Bearer \\xff` (a byte that is no UTF-8, a Latin-1 'ø') on an action, a login form
    whose body is no UTF-8 or names `charset=zlib`, and an action form so: each answered 500 'Server got
    itself in trouble'. The token is compared as the bytes sent (403 when wrong), a form that cannot be
    read is a 400 at login and refused (403, saying why) on an action."""
    import http.client

    (tmp_path / "a.flow").write_text("emit 1\n")
    (tmp_path / "token").write_text(CONSOLE_TOKEN)
    form = "application/x-www-form-urlencoded"
    with ServeProcess(tmp_path, "--console-token-file", str(tmp_path / "token")) as serve:
        def send(method: str, path: str, headers: dict[str, bytes | str], body: bytes = b"") -> tuple[int, str, str]:
            conn = http.client.HTTPConnection("127.0.0.1", serve.port, timeout=30)
            conn.putrequest(method, path)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                conn.putheader(name, value)
            conn.endheaders(body)
            r = conn.getresponse()
            answer = (r.status, r.read().decode(errors="replace"), r.getheader("Set-Cookie") or "")
            conn.close()
            return answer

        for value in (b"Bearer \xff", "Bearer " + CONSOLE_TOKEN[:-1] + "\xf8"):
            status, text, _ = send("POST", "/actions/run/a", {"Authorization": value})
            assert status == 403 and "console token" in text, (value, status, text)
        for content_type, body in ((form, b"token=\xff"), (form + "; charset=zlib", b"token=a")):
            status, text, _ = send("POST", "/login", {"Content-Type": content_type}, body)
            assert status == 400 and "the form cannot be read" in text, (content_type, status, text)
        status, _, cookie = send("POST", "/login", {"Content-Type": form},
                                 urllib.parse.urlencode({"token": CONSOLE_TOKEN}).encode())
        assert status == 303 and cookie.startswith("flowlang_console="), (status, cookie)
        session = cookie.split(";")[0]
        status, text, _ = send("POST", "/actions/run/a", {"Cookie": session, "Content-Type": form}, b"csrf=\xff")
        assert status == 403 and "the form cannot be read" in text, (status, text)
        assert serve.request("GET", "/healthz")[0] == 200
        assert serve.terminate() == 0
        assert "Error handling request" not in serve.logs()
    assert run_cli("jobs", str(tmp_path / "a.flow")).stdout == "a: no jobs yet\n"  # no action ran


class ForwardingProxy:
    """A reverse proxy on 127.0.0.1 as Caddy (or nginx with its usual proxy_set_header lines) is one: every
    request reaches serve from 127.0.0.1, with the client's address in X-Forwarded-For."""

    def __init__(self, upstream_port: int, headers: dict[str, str]) -> None:
        import http.client
        import http.server

        added = headers

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
                sent = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request("GET", self.path, headers={**sent, **added})
                answer = conn.getresponse()
                body = answer.read()
                self.send_response(answer.status)
                for k, v in answer.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                conn.close()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("GET", path, headers=headers or {})
        answer = conn.getresponse()
        result = answer.status, dict(answer.getheaders()), answer.read().decode()
        conn.close()
        return result

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("forwarded", [{"X-Forwarded-For": "203.0.113.9"}, {"X-Real-IP": "203.0.113.9"},
                                       {"Forwarded": "for=203.0.113.9;proto=https"}])
def test_behind_a_proxy_on_this_machine_reading_the_console_needs_the_token(tmp_path: Path,
                                                                           forwarded: dict[str, str]) -> None:
    # before: the TLS proxy the README puts in front connects from 127.0.0.1, so anybody on the internet read
    # the console, each open error's record (an order, an address) with it, without the token
    (tmp_path / "hook.flow").write_text("emit 1\n")
    (tmp_path / "token").write_text(CONSOLE_TOKEN)
    with ServeProcess(tmp_path, "--console-token-file", str(tmp_path / "token")) as serve:
        proxy = ForwardingProxy(serve.port, forwarded)
        try:
            for path in ("/", "/errors/hook/1"):
                status, headers, page = proxy.get(path)
                assert status == 302 and headers["Location"] == "/login", (path, status, page)
            status, _, page = proxy.get("/", {"Authorization": f"Bearer {CONSOLE_TOKEN}"})
            assert status == 200 and "hook.flow" in page
            status, _, page = proxy.get("/login")
            assert status == 200 and 'name="token"' in page
        finally:
            proxy.close()
        status, _, page = serve.request("GET", "/")  # a person on the machine, no proxy: as before
        assert status == 200 and "hook.flow" in page
        assert serve.terminate() == 0


def test_a_notice_is_shown_only_when_the_console_said_it(tmp_path: Path) -> None:
    """'/?notice=...' showed any text as the console's own notice, on a page a person on the machine reads
    without logging in: a link anybody could send ('Your session expired: paste the console token at ...')."""
    (tmp_path / "a.flow").write_text("emit 1\n")
    (tmp_path / "token").write_text(CONSOLE_TOKEN)
    forged = "Your session expired: paste the console token at https://evil.example/login"
    with ServeProcess(tmp_path, "--console-token-file", str(tmp_path / "token")) as serve:
        for path in ("/", "/login", "/errors/a/1"):
            for query in (f"?notice={urllib.parse.quote(forged)}", f"?notice={urllib.parse.quote(forged)}&mark=00"):
                _, _, page = serve.request("GET", path + query)
                assert "evil.example" not in page and 'id="notice"' not in page, (path, query)
        jar = CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        opener.open(serve.url + "/login", data=urllib.parse.urlencode({"token": CONSOLE_TOKEN}).encode(), timeout=30)
        page = opener.open(serve.url + "/", timeout=30).read().decode()
        csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        with opener.open(serve.url + "/actions/run/a", data=urllib.parse.urlencode({"csrf": csrf}).encode(),
                         timeout=30) as answer:  # the action's own redirect shows its notice, as before
            shown = answer.read().decode()
            assert "&mark=" in answer.url
        assert 'id="notice"' in shown and "a: job" in shown.split('id="notice">', 1)[1].split("</p>", 1)[0]
        assert serve.terminate() == 0
