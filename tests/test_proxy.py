"""Behind one TLS-terminating proxy, as the README's Production section sets it up (issue 13, item 7).

granian serves the production settings (PUBLIC_BASE_URL=https://…, TRUSTED_PROXY_HOPS=1) and the
tests speak HTTP to it the way nginx does: plain HTTP on 127.0.0.1, with the forwarded headers.
"""

from __future__ import annotations

import http.client
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import HOST, app_env, free_port, manage, start_web, wait_healthy

pytestmark = pytest.mark.slow

PUBLIC = "hooks.example.com"


@dataclass
class Proxied:
    port: int
    password: str

    def request(
        self, method: str, path: str, headers: dict[str, str], body: str | None = None
    ) -> tuple[int, dict[str, str], str]:
        connection = http.client.HTTPConnection(HOST, self.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            got = {k.lower(): v for k, v in response.getheaders()}
            got["set-cookie"] = "; ".join(v for k, v in response.getheaders() if k.lower() == "set-cookie")
            return response.status, got, response.read().decode(errors="replace")
        finally:
            connection.close()


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxied]:
    var_dir = tmp_path_factory.mktemp("proxied")
    port = free_port()
    env = app_env(
        var_dir,
        port,
        DJANGO_ENV="production",
        SECRET_KEY="a-production-key-for-the-proxy-test-" + "x" * 30,
        ALLOWED_HOSTS=f"{PUBLIC},127.0.0.1",
        PUBLIC_BASE_URL=f"https://{PUBLIC}",
        TRUSTED_PROXY_HOPS="1",
        FORWARD_ALLOW_PRIVATE="false",
    )
    manage(env, "migrate", "--no-input", "--verbosity", "0")
    login = manage(env, "ensure_staff")
    match = re.search(r"Staff login created: admin / (\S+)", login)
    assert match, login
    web = start_web(env, port, Path(var_dir) / "web.log", threads=2)
    try:
        wait_healthy(port, web)
        yield Proxied(port, match.group(1))
    finally:
        web.stop()


def test_it_serves_a_forwarded_https_request_without_redirecting(proxied: Proxied) -> None:
    status, headers, body = proxied.request(
        "GET", "/accounts/login/", {"Host": PUBLIC, "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    )
    assert status == 200, headers
    assert 'name="password"' in body
    assert "Secure" in headers["set-cookie"]  # the CSRF cookie, sent over https only


def test_it_still_redirects_plain_http_to_https(proxied: Proxied) -> None:
    status, headers, _ = proxied.request("GET", "/accounts/login/", {"Host": PUBLIC})
    assert status == 301
    assert headers["location"] == f"https://{PUBLIC}/accounts/login/"
    status, headers, _ = proxied.request("GET", "/accounts/login/", {"Host": PUBLIC, "X-Forwarded-Proto": "http"})
    assert status == 301


@pytest.mark.parametrize("public_host", [True, False], ids=["host-passed-on", "upstream-host"])
def test_it_accepts_a_login_posted_from_the_public_origin(proxied: Proxied, public_host: bool) -> None:
    # nginx passes the public Host with `proxy_set_header Host $host`; without it, the
    # upstream's address (then only CSRF_TRUSTED_ORIGINS vouches for the origin). Either way
    # the form comes from https://PUBLIC.
    host = PUBLIC if public_host else f"127.0.0.1:{proxied.port}"
    forwarded = {"Host": host, "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    status, headers, page = proxied.request("GET", "/accounts/login/", forwarded)
    assert status == 200
    cookie = re.search(r"csrftoken=([^;]+)", headers["set-cookie"])
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert cookie
    assert token

    def post(origin: str) -> tuple[int, dict[str, str], str]:
        form = {"csrfmiddlewaretoken": token.group(1), "username": "admin", "password": proxied.password}
        return proxied.request(
            "POST",
            "/accounts/login/",
            {
                **forwarded,
                "Origin": origin,
                "Referer": f"{origin}/accounts/login/",
                "Cookie": f"csrftoken={cookie.group(1)}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
            urllib.parse.urlencode(form),
        )

    status, headers, _ = post("https://evil.example")
    assert status == 403  # another origin is still refused
    status, headers, _ = post(f"https://{PUBLIC}")
    assert status == 302, headers
    assert headers["location"] == "/"
    assert "sessionid=" in headers["set-cookie"]
