"""The sign-in throttle (issue 16, finding 4): counted before the hash check so
racing requests cannot pass the limit, X-Forwarded-For believed only from
configured proxies, a global cap on concurrent password hashes, and no
lockout of a right password by someone else's failures from the same address."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient

from core import Settings
from core.errors import StoreUnavailableError
from tests.served_studio import serving, studio_app
from webapp.security import proxy_options
from webapp.throttle import Attempt, Refusal, SignInThrottle

WRONG = {"name": "kim", "password": "not-kims-password"}
RIGHT = {"name": "kim", "password": "kim-password"}


class CountingChecks:
    """Stands in for `authenticate`: counts the checks, how many ran at once at
    most, and takes `seconds` each (so that racing requests overlap)."""

    def __init__(self, real, seconds: float = 0.0) -> None:
        self.real, self.seconds = real, seconds
        self.calls = self.running = self.most = 0
        self.lock = threading.Lock()

    def __call__(self, *args, **kwargs):
        with self.lock:
            self.calls += 1
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(self.seconds)
            return self.real(*args, **kwargs)
        finally:
            with self.lock:
                self.running -= 1


@pytest.fixture
def checks(monkeypatch):
    import webapp.auth

    counting = CountingChecks(webapp.auth.authenticate, seconds=0.2)
    monkeypatch.setattr(webapp.auth, "authenticate", counting)
    return counting


def parallel(url: str, forms: list[dict], headers: list[dict] | None = None) -> list[int]:
    """POST each form to /login at once (a barrier lines the threads up)."""
    barrier = threading.Barrier(len(forms))
    headers = headers or [{}] * len(forms)

    def post(i: int) -> int:
        barrier.wait()
        return httpx.post(f"{url}/login", data=forms[i], headers=headers[i], timeout=60).status_code

    with ThreadPoolExecutor(len(forms)) as pool:
        return list(pool.map(post, range(len(forms))))


def test_racing_attempts_cannot_pass_the_limit():
    throttle = SignInThrottle(per_pair=5, max_hashing=100)
    barrier = threading.Barrier(30)

    def begin(_: int) -> Attempt | Refusal:
        barrier.wait()
        return throttle.begin("kim", "10.0.0.1")

    with ThreadPoolExecutor(30) as pool:
        outcomes = list(pool.map(begin, range(30)))
    allowed = [o for o in outcomes if isinstance(o, Attempt)]
    assert len(allowed) == 5 and all(o.wait_s > 0 for o in outcomes if isinstance(o, Refusal))


def test_30_parallel_wrong_passwords_get_5_checks(tmp_path, checks):
    """All 30 were checked before; now the attempt is counted before its check."""
    app, _ = studio_app(tmp_path, throttle=SignInThrottle(per_pair=5, max_hashing=64))
    with serving(app, **proxy_options(Settings())) as url:
        codes = parallel(url, [WRONG] * 30)
    assert checks.calls == 5 and codes.count(401) == 5 and codes.count(429) == 25


def test_at_most_max_hashing_password_checks_run_at_once(tmp_path, checks):
    """40 parallel sign-ins took the server from 2.4 to 4.2 GB (argon2: 64 MiB each).
    Now a burst queues for the `max_hashing` slots (holding no thread) ..."""
    app, _ = studio_app(tmp_path, throttle=SignInThrottle(max_hashing=2))
    with serving(app, **proxy_options(Settings())) as url:
        codes = parallel(url, [{"name": f"user{i}", "password": "x" * 8} for i in range(12)])
    assert codes == [401] * 12 and checks.calls == 12 and checks.most == 2


def test_past_the_wait_the_answer_is_busy_and_no_ones_failure(tmp_path, checks):
    """... and one that waits past `busy_wait_s` is told 'busy', counted against no one."""
    app, _ = studio_app(tmp_path, throttle=SignInThrottle(max_hashing=2, busy_wait_s=0.0))
    with serving(app, **proxy_options(Settings())) as url:
        codes = parallel(url, [{"name": f"user{i}", "password": "x" * 8} for i in range(12)])
        assert checks.most <= 2 and codes.count(503) >= 1 and set(codes) <= {401, 503}
        assert httpx.post(f"{url}/login", data=RIGHT).status_code == 303


def test_busy_answers_say_so_and_when_to_retry(tmp_path, checks):
    app, _ = studio_app(tmp_path, throttle=SignInThrottle(max_hashing=1, busy_wait_s=0.2))
    checks.seconds = 2.0
    with serving(app, **proxy_options(Settings())) as url, ThreadPoolExecutor(1) as pool:
        first = pool.submit(httpx.post, f"{url}/login", data=RIGHT, timeout=30)
        while checks.running == 0:
            time.sleep(0.01)
        second = httpx.post(f"{url}/login", data=RIGHT)
        assert first.result().status_code == 303
    assert second.status_code == 503 and "busy" in second.text
    assert second.headers["retry-after"] == "1"


def test_a_forged_x_forwarded_for_does_not_move_the_count(tmp_path):
    """uvicorn believed X-Forwarded-For from 127.0.0.1, so rotating it gave every
    guess a fresh address. By default no proxy is believed."""
    app, _ = studio_app(tmp_path, throttle=SignInThrottle(per_pair=3, per_name=100))
    with serving(app, **proxy_options(Settings())) as url:
        for i in range(3):
            forged = {"X-Forwarded-For": f"203.0.113.{i}"}
            assert httpx.post(f"{url}/login", data=WRONG, headers=forged).status_code == 401
        rotated = httpx.post(f"{url}/login", data=WRONG, headers={"X-Forwarded-For": "198.51.100.7"})
        assert rotated.status_code == 429


def test_behind_a_configured_proxy_its_addresses_count_but_the_name_is_capped(tmp_path):
    app, _ = studio_app(tmp_path, throttle=SignInThrottle(per_pair=3, per_name=6))
    options = proxy_options(Settings(trusted_proxies="127.0.0.1"))
    with serving(app, **options) as url:
        def post(address: str) -> int:
            return httpx.post(f"{url}/login", data=WRONG,
                              headers={"X-Forwarded-For": address}).status_code

        assert [post("203.0.113.1") for _ in range(4)] == [401, 401, 401, 429]
        assert post("203.0.113.2") == 401  # another client behind the proxy: its own count
        assert [post(f"198.51.100.{i}") for i in range(3)] == [401, 401, 429]  # name: 6 in all


def test_proxy_options_trust_no_forwarded_headers_unless_configured():
    assert proxy_options(Settings()) == {"proxy_headers": False}
    assert proxy_options(Settings(trusted_proxies="10.0.0.0/8, 127.0.0.1")) == {
        "proxy_headers": True, "forwarded_allow_ips": ["10.0.0.0/8", "127.0.0.1"]}
    assert proxy_options(Settings(trusted_proxies="*"))["forwarded_allow_ips"] == "*"
    with pytest.raises(ValueError, match="not an IP address"):
        Settings(trusted_proxies="proxy.example.org")


def test_others_failures_from_the_same_address_never_refuse_a_known_browser(tmp_path):
    """After 36 failures from one address a user's right password from there was
    refused for 15 minutes. Now a browser that signed in to the name before is
    counted on its own, whatever anyone else at that address (or anywhere) does."""
    throttle = SignInThrottle(per_pair=3, per_name=5, per_address=8)
    app, _ = studio_app(tmp_path, throttle=throttle)
    kim = TestClient(app, follow_redirects=False)  # every TestClient is at address "testclient"
    first = kim.post("/login", data=RIGHT)
    assert first.status_code == 303
    device = first.headers.get_list("set-cookie")[-1]
    assert "grm_studio_device=" in device and "HttpOnly" in device
    assert "SameSite=strict" in device and "Path=/login" in device
    attacker = TestClient(app, follow_redirects=False)  # same address, no device cookie
    codes = [attacker.post("/login", data=WRONG).status_code for _ in range(5)]
    codes += [attacker.post("/login", data={"name": f"n{i}", "password": "x" * 8}).status_code
              for i in range(8)]
    assert codes.count(401) == 8 and codes[-1] == 429  # the name and the address are refused
    assert kim.post("/login", data=RIGHT).status_code == 303
    # what remains (the module docstring says so): a new browser there waits
    assert TestClient(app).post("/login", data=RIGHT).status_code == 429
    # and the known browser's own wrong passwords count on it alone
    assert [kim.post("/login", data=WRONG).status_code for _ in range(6)][-1] == 429


def test_a_right_password_takes_its_own_attempt_back_and_errors_count_for_nothing(
        tmp_path, monkeypatch):
    import webapp.auth

    throttle = SignInThrottle(per_pair=2, per_name=2)
    app, _ = studio_app(tmp_path, throttle=throttle)
    client = TestClient(app, follow_redirects=False)
    for _ in range(5):
        assert client.post("/login", data=RIGHT).status_code == 303
    real = webapp.auth.authenticate

    def down(*args, **kwargs):
        raise StoreUnavailableError("the database cannot be reached")

    monkeypatch.setattr(webapp.auth, "authenticate", down)
    for _ in range(3):
        assert client.post("/login", data=RIGHT).status_code == 503
    monkeypatch.setattr(webapp.auth, "authenticate", real)
    stranger = TestClient(app, follow_redirects=False)  # no device cookie: name counts apply
    assert stranger.post("/login", data=RIGHT).status_code == 303


def test_what_no_account_has_is_wrong_without_a_check(tmp_path, checks):
    app, _ = studio_app(tmp_path)
    client = TestClient(app)
    for form in ({"name": "kim\x00", "password": "kim-password"},
                 {"name": "k" * 201, "password": "kim-password"},
                 {"name": "kim", "password": "p" * 5000}):
        assert client.post("/login", data=form).status_code == 401
    assert checks.calls == 0
