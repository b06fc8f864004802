"""The console in a real browser: Debian's Chromium driven by Selenium against a real API
process, Redis and SQLite. Enrolment, password + TOTP, backup code, passkeys through
Chrome's virtual authenticator, logout, an idle session forgotten, a forged cross-site form post, and
no Content-Security-Policy violation in the browser's console on any page. Screenshots
of the main pages go to the test's temporary directory.

The API runs on plain HTTP on loopback with ``SECOPS_CONSOLE_INSECURE_LOOPBACK`` (the
documented development exception; WebAuthn accepts http://localhost as a secure context).
"""

from __future__ import annotations

import http.server
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from secops.cli import cli
from secops.config import get_settings
from secops.db.migrate import upgrade
from secops.db.session import dispose_engines
from secops.embedded import free_port
from secops.services import console_sessions
from tests.conftest import _base_env
from tests.console.conftest import GOOD
from tests.console.test_factors import rfc6238, secret_of

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                 reason="Debian's chromium and chromium-driver are not installed")]
IDLE = 300


@pytest.fixture(scope="module")
def console(tmp_path_factory, redis_server) -> Iterator[tuple[str, dict[str, str], Path]]:
    tmp = tmp_path_factory.mktemp("browser")
    port = free_port()
    env = _base_env(tmp, f"sqlite:///{tmp / 'secops.db'}", redis_server.url) | {
        "SECOPS_API_PORT": str(port), "SECOPS_CONSOLE_ORIGIN": f"http://localhost:{port}",
        "SECOPS_CONSOLE_INSECURE_LOOPBACK": "true", "SECOPS_CONSOLE_IDLE_TIMEOUT": str(IDLE)}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        get_settings.cache_clear()
        dispose_engines()
        upgrade(env["SECOPS_DATABASE_URL"])
        api, _ = start_api_on(env, tmp, port)
        try:
            yield f"http://localhost:{port}", env, tmp
        finally:
            api.stop()
            dispose_engines()
            get_settings.cache_clear()


def start_api_on(env: dict[str, str], tmp: Path, port: int):
    import sys

    from tests.processes import Proc, wait_for

    proc = Proc([sys.executable, "-m", "uvicorn", "--factory", "secops.api.app:create_app",
                 "--host", "127.0.0.1", "--port", str(port), "--no-server-header"],
                env, tmp / "api.log")
    import httpx

    def up() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return proc.p.poll() is not None

    wait_for(up, 30, "API ready")
    assert proc.p.poll() is None, proc.output()[-3000:]
    return proc, f"http://127.0.0.1:{port}"


@pytest.fixture
def driver(console, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(DRIVER), options=options)
    browser.implicitly_wait(5)
    yield browser
    browser.quit()


def create_user(name: str, role: str) -> str:
    result = CliRunner().invoke(cli, ["users", "create", "--name", name, "--role", role, "--json"])
    assert result.exit_code == 0, result.output
    import json

    return json.loads(result.output)["link"]


class Steps:
    """The browser, with checks that collect the browser's console as it goes."""

    def __init__(self, driver, base: str, shots: Path) -> None:
        self.d, self.base, self.shots, self.logs = driver, base, shots, []
        shots.mkdir(exist_ok=True)

    def collect(self) -> None:
        self.logs.extend(self.d.get_log("browser"))

    def go(self, path: str) -> None:
        self.d.get(self.base + path if path.startswith("/") else path)
        self.collect()

    def by(self, css: str):
        from selenium.webdriver.common.by import By

        return self.d.find_element(By.CSS_SELECTOR, css)

    def type(self, css: str, text: str) -> None:
        field = self.by(css)
        field.clear()
        field.send_keys(text)

    def click(self, css: str) -> None:
        self.by(css).click()
        self.collect()

    def submit(self, css: str) -> None:
        """Click a button that loads a new page, and wait until it has.

        The old page is marked with a property on its window; a new document has a
        new window object without it. Element staleness is not used: during a
        navigation Chrome may answer with an "unknown error" about a detached node
        instead of a stale element reference."""
        self.d.execute_script("window.__secopsOldPage = true")
        self.by(css).click()
        self.until(lambda _: self.replaced() and self.loaded())

    def replaced(self) -> bool:
        """Whether the page marked by ``submit`` has been replaced; a script that
        cannot run because the page is in the middle of loading counts as not yet."""
        from selenium.common.exceptions import WebDriverException

        try:
            return self.d.execute_script("return window.__secopsOldPage !== true")
        except WebDriverException:
            return False

    def path(self) -> str:
        return self.d.current_url.removeprefix(self.base)

    def until(self, condition, timeout: float = 30):
        """Wait for ``condition(driver)`` to be truthy; a page being replaced meanwhile
        (stale or not yet present elements) is waited through, not a failure."""
        from selenium.common.exceptions import (
            NoSuchElementException,
            StaleElementReferenceException,
            TimeoutException,
        )
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            value = WebDriverWait(self.d, timeout, poll_frequency=0.05, ignored_exceptions=(
                StaleElementReferenceException, NoSuchElementException)).until(condition)
        except TimeoutException:
            error = self.d.find_elements("css selector", "#passkey-error")
            raise AssertionError(f"at {self.path()}: {error[0].text if error else ''} "
                                 f"{self.logs[-5:]} {self.d.page_source[:1500]}") from None
        self.collect()
        return value

    def loaded(self) -> bool:
        """Whether the current page has finished loading; a script refused in the
        middle of a navigation counts as not yet."""
        from selenium.common.exceptions import WebDriverException

        try:
            return self.d.execute_script("return document.readyState") == "complete"
        except WebDriverException:
            return False

    def wait_path(self, *paths: str, timeout: float = 30) -> str:
        """Wait until the browser shows one of ``paths``, fully loaded."""
        return self.until(lambda _: self.path() in paths and self.loaded() and self.path(),
                          timeout)

    def wait_for(self, predicate, timeout: float = 30) -> None:
        self.until(lambda _: predicate(), timeout)

    def shot(self, name: str) -> Path:
        target = self.shots / f"{name}.png"
        assert self.d.save_screenshot(str(target))
        return target

    def login(self, name: str, password: str = GOOD) -> str:
        self.go("/console/login")
        self.type("#name", name)
        self.type("#password", password)
        self.submit("#sign-in")
        return self.wait_path("/console/", "/console/login/mfa", "/console/account/setup",
                              "/console/login")

    def logout(self) -> None:
        self.submit("#logout")
        self.wait_path("/console/login")

    def csp_violations(self) -> list[dict]:
        self.collect()
        return [e for e in self.logs if "Content Security Policy" in e.get("message", "")
                or "Refused to" in e.get("message", "")]


def enrol_in_browser(steps: Steps, link: str) -> None:
    steps.go(link)
    steps.type("#password", GOOD)
    steps.type("#password2", GOOD)
    steps.submit("#enrol")


def add_authenticator(driver) -> None:
    from selenium.webdriver.common.virtual_authenticator import VirtualAuthenticatorOptions

    driver.add_virtual_authenticator(VirtualAuthenticatorOptions(
        protocol=VirtualAuthenticatorOptions.Protocol.CTAP2,
        transport=VirtualAuthenticatorOptions.Transport.INTERNAL, has_resident_key=True,
        has_user_verification=True, is_user_consenting=True, is_user_verified=True))


def test_analyst_enrols_uses_totp_backup_code_and_passkey(console, driver, tmp_path):
    base, _, _ = console
    steps = Steps(driver, base, tmp_path / "screenshots")
    link = create_user("alice", "analyst")
    enrol_in_browser(steps, link)
    steps.wait_path("/console/")
    steps.go(link)  # a used link
    assert "invalid, already used or expired" in steps.by("#refusal").text
    steps.go("/console/")
    assert steps.by("#account-link").text == "alice (analyst)"
    steps.shot("overview")
    for page in ("alerts", "jobs", "scans", "dlp", "schedules"):
        steps.go(f"/console/{page}")
        assert steps.by("h1").text
        steps.shot(page)
    # TOTP: scan (read the key), confirm, keep the backup codes
    steps.go("/console/account")
    steps.submit("#totp-begin")
    secret = secret_of(steps.by("#totp-uri").text)
    assert steps.by("#totp-qr svg")
    steps.shot("totp-setup")
    confirmed_at = time.time()
    steps.type("#totp-code", rfc6238(secret, confirmed_at))
    steps.submit("#totp-confirm")
    codes = [c.text for c in driver.find_elements("css selector", "#backup-codes code")]
    assert len(codes) == 10
    steps.shot("backup-codes")
    steps.logout()
    # password + TOTP: a later step's code than the confirmation's (that one was used);
    # the current step's once the next has begun, so a slow run stays inside the window
    assert steps.login("alice") == "/console/login/mfa"
    steps.type("#code", rfc6238(secret, max(time.time(), confirmed_at + 30)))
    steps.submit("#verify-code")
    steps.wait_path("/console/")
    steps.logout()
    # password + backup code
    assert steps.login("alice") == "/console/login/mfa"
    steps.click("summary")
    steps.type("#backup", codes[0])
    steps.submit("#verify-backup")
    steps.wait_path("/console/")
    # a passkey, registered through the virtual authenticator
    add_authenticator(driver)
    steps.go("/console/account")
    steps.type("#passkey-name", "laptop")
    steps.click("#passkey-register")
    steps.wait_for(lambda: "laptop" in steps.by("#passkeys").text)
    steps.shot("account")
    steps.logout()
    # passkey-only sign-in
    steps.click("#passkey-login")
    steps.wait_path("/console/")
    assert steps.by("#account-link").text == "alice (analyst)"
    assert steps.csp_violations() == []
    steps.logout()
    assert steps.csp_violations() == []


def test_admin_sets_up_a_passkey_first_and_a_forged_post_is_refused(console, driver, tmp_path):
    base, env, _ = console
    redis_url = env["SECOPS_REDIS_URL"]
    steps = Steps(driver, base, tmp_path / "screenshots")
    add_authenticator(driver)
    enrol_in_browser(steps, create_user("root", "admin"))
    steps.wait_path("/console/account/setup")
    steps.go("/console/keys")
    assert steps.path() == "/console/account/setup"  # no page before a second factor
    steps.type("#passkey-name", "key")
    steps.click("#passkey-register")
    steps.wait_path("/console/account/new-codes")
    assert len(driver.find_elements("css selector", "#backup-codes code")) == 10
    for page in ("keys", "audit"):
        steps.go(f"/console/{page}")
        steps.shot(page)
    assert "users.passkey_added" in steps.by("#audit").text
    # a forged form on another site posts to "sign out everywhere": refused, session kept
    attacker = AttackerSite(f"{base}/console/account/sessions/end-all")
    try:
        steps.go(attacker.url)
        steps.click("#forge")
        steps.wait_path("/console/account/sessions/end-all")
        assert "cross-site request check failed" in steps.by("#refusal").text
        steps.shot("forged-post-refused")
    finally:
        attacker.close()
    steps.go("/console/keys")
    assert steps.path() == "/console/keys"  # still signed in
    # idle timeout: the session's key in Redis carries the idle timeout as its TTL (see
    # test_console_http); let that time run out, then the server has forgotten it
    kv = redis.Redis.from_url(redis_url)
    key = console_sessions.PREFIX + console_sessions.digest(driver.get_cookie("secops_session")["value"])
    assert 0 < kv.ttl(key) <= IDLE
    kv.pexpire(key, 50)
    steps.until(lambda _: kv.exists(key) == 0, timeout=5)
    steps.go("/console/keys")
    assert steps.path() == "/console/login"
    assert steps.csp_violations() == []


class AttackerSite:
    """A page on another origin (127.0.0.1, another port) with a form that posts to the console."""

    def __init__(self, target: str) -> None:
        page = (f'<!doctype html><title>win a prize</title><form method="post" action="{target}">'
                '<input type="hidden" name="csrf" value="guess"><button id="forge">Claim</button>'
                '</form>').encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 2  # the browser's idle speculative connections must not hold shutdown

            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
