"""Issue 13, item 4: every 5xx is logged with its traceback, method and path, and no log
line, access log included, ever holds a receiver's slug (its path is its credential).

The log is read where it is written: the stream of the console handler that LOGGING
configures (django.request does not propagate, so caplog would not see its lines)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.middleware.common import CommonMiddleware
from django.test import Client

from config.wsgi import with_access_log
from inbox.ingest import receiver
from inbox.models import Message
from tests import servers
from tests.conftest import make_endpoint, make_message


class Log:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()


@pytest.fixture
def log() -> Iterator[Log]:
    handler = next(h for h in logging.getLogger("django.request").handlers if isinstance(h, logging.StreamHandler))
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        yield Log(stream)
    finally:
        handler.setStream(previous)  # type: ignore[arg-type]


@pytest.fixture
def crashing_client(db: None) -> Client:
    return Client(raise_request_exception=False)


def test_it_logs_a_500_with_its_traceback_method_and_path(
    staff_client: Client, monkeypatch: pytest.MonkeyPatch, log: Log
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the endpoint list broke")

    monkeypatch.setattr("inbox.dashboard.views.endpoints.render", broken)
    staff_client.raise_request_exception = False
    response = staff_client.get("/endpoints/?period=day")
    assert response.status_code == 500
    assert "It has been logged" in response.content.decode()
    assert "ERROR django.request Internal Server Error: /endpoints/ method=GET status=500" in log.text
    assert "Traceback (most recent call last)" in log.text
    assert "RuntimeError: the endpoint list broke" in log.text


def test_it_logs_a_dashboard_404_with_its_method_and_path(staff_client: Client, log: Log) -> None:
    assert staff_client.get("/messages/999999/").status_code == 404
    assert "WARNING django.request Not Found: /messages/999999/ method=GET status=404" in log.text


def test_it_logs_a_403_as_one_line_without_a_traceback(viewer_client: Client, log: Log) -> None:
    # PermissionDenied reaches django.request with the exception attached: 7 lines a refusal.
    assert viewer_client.get("/endpoints/new/").status_code == 403
    assert "WARNING django.request Forbidden (Permission denied): /endpoints/new/ method=GET status=403" in log.text
    assert "Traceback" not in log.text
    assert len(log.text.strip().splitlines()) == 1


def test_it_never_logs_the_slug_of_a_500_under_the_receiver(
    crashing_client: Client, monkeypatch: pytest.MonkeyPatch, log: Log
) -> None:
    endpoint, token = make_endpoint()
    original = CommonMiddleware.process_request

    def broken(self: CommonMiddleware, request: Any) -> Any:
        if request.path.startswith("/hooks/"):
            # An exception whose text quotes the path, and the slug alone.
            raise RuntimeError(f"cannot route {request.path} ({request.path.split('/')[2]})")
        return original(self, request)

    monkeypatch.setattr(CommonMiddleware, "process_request", broken)
    response = crashing_client.post(
        f"/hooks/{endpoint.slug}/", b"{}", content_type="application/json", headers={"X-Webhook-Token": token}
    )
    assert response.status_code == 500
    assert "Internal Server Error: /hooks/…/ method=POST status=500" in log.text
    assert "RuntimeError: cannot route /hooks/…/ (…)" in log.text
    assert endpoint.slug not in log.text


def test_it_never_logs_the_slug_of_a_503_from_the_receiver(
    crashing_client: Client, monkeypatch: pytest.MonkeyPatch, log: Log
) -> None:
    endpoint, _ = make_endpoint()

    def broken(request: Any, slug: str) -> Any:
        raise RuntimeError(f"no storage for {slug}")

    monkeypatch.setattr(receiver, "_receive", broken)
    response = crashing_client.post(f"/hooks/{endpoint.slug}/", b"{}", content_type="application/json")
    assert response.status_code == 503
    assert "unexpected error while receiving" in log.text
    assert "RuntimeError: no storage for …" in log.text
    assert "Service Unavailable: /hooks/…/ method=POST status=503" in log.text
    assert endpoint.slug not in log.text


@pytest.mark.parametrize("case", ["unknown", "forged", "method"])
def test_it_never_logs_the_slug_of_a_4xx_under_the_receiver(crashing_client: Client, log: Log, case: str) -> None:
    endpoint, _ = make_endpoint()
    slug = "x" * 22 + "UnknownSlug" if case == "unknown" else endpoint.slug
    if case == "method":
        response = crashing_client.put(f"/hooks/{slug}/", b"{}", content_type="application/json")
    else:
        response = crashing_client.post(
            f"/hooks/{slug}/", b"{}", content_type="application/json", headers={"X-Webhook-Token": "wrong"}
        )
    assert response.status_code in {"unknown": (404,), "forged": (401, 403), "method": (405,)}[case]
    assert slug not in log.text
    # The receiver logs its own refusals by endpoint id; django.request adds no second line.
    assert "django.request" not in log.text


def test_it_never_logs_a_slug_in_a_path_of_another_case(crashing_client: Client, log: Log) -> None:
    endpoint, token = make_endpoint()
    response = crashing_client.post(
        f"/HOOKS/{endpoint.slug}/", b"{}", content_type="application/json", headers={"X-Webhook-Token": token or ""}
    )
    assert response.status_code == 404
    assert "Not Found: /hooks/…/ method=POST status=404" in log.text
    assert endpoint.slug not in log.text


@pytest.mark.parametrize("prefix", ["/api/v1/", "/messages/", "/endpoints/", "/"])
def test_it_never_logs_a_slug_sent_under_another_prefix(crashing_client: Client, log: Log, prefix: str) -> None:
    endpoint, _ = make_endpoint()
    response = crashing_client.post(f"{prefix}{endpoint.slug}/", b"{}", content_type="application/json")
    assert response.status_code in (403, 404, 405)
    assert endpoint.slug not in log.text


@pytest.mark.parametrize("path", ["/hooks/{slug}/", "/endpoints/"])
def test_it_logs_a_refused_host_as_one_bounded_line(crashing_client: Client, log: Log, path: str) -> None:
    endpoint, _ = make_endpoint()
    host = "evil-" + "x" * 5000 + ".example"
    response = crashing_client.post(
        path.format(slug=endpoint.slug), b"{}", content_type="application/json", HTTP_HOST=host
    )
    assert response.status_code == 400
    lines = log.text.strip().splitlines()
    assert len(lines) == 1, log.text[:2000]
    assert "ERROR django.security.DisallowedHost Invalid HTTP_HOST header" in lines[0]
    assert "more characters)" in lines[0]
    assert len(lines[0]) < 700
    assert "Traceback" not in log.text
    assert endpoint.slug not in log.text


# --- The access log -------------------------------------------------------------------------------
def _call(app: Any, method: str, path: str, body: bytes = b"", **headers: str) -> tuple[str, bytes]:
    """Call a WSGI app the way granian does, closing what it answered."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "REMOTE_ADDR": "203.0.113.9",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        **{f"HTTP_{name.upper()}": value for name, value in headers.items()},
    }
    setup_testing_defaults(environ)
    status: list[str] = []
    result = app(environ, lambda line, headers, exc_info=None: status.append(line))
    try:
        content = b"".join(result)
    finally:
        result.close()
    return status[0], content


@pytest.fixture
def access(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="inbox.access")
    return caplog


@pytest.mark.django_db(transaction=True)
def test_it_writes_an_access_line_without_the_slug(access: pytest.LogCaptureFixture) -> None:
    endpoint, token = make_endpoint()
    app = with_access_log(WSGIHandler())
    status, _ = _call(app, "POST", f"/hooks/{endpoint.slug}/", b'{"a": 1}', X_WEBHOOK_TOKEN=token or "")
    assert status.startswith("200")
    _call(app, "GET", f"/hooks/{endpoint.slug}/\nforged line")  # %0A in the URL
    lines = [r.getMessage() for r in access.records if r.name == "inbox.access"]
    assert len(lines) == 2
    method, path, code, duration, client = lines[0].split(" ")
    assert (method, path, code, client) == ("POST", "/hooks/…/", "200", "203.0.113.9")
    assert duration.endswith("ms")
    assert float(duration.removesuffix("ms")) >= 0
    assert lines[1].startswith("GET /hooks/…/\\nforged line 404 ")
    assert endpoint.slug not in "\n".join(lines)
    assert Message.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_it_writes_the_access_line_of_an_export_when_it_has_been_sent(
    access: pytest.LogCaptureFixture, staff: Any
) -> None:
    endpoint, _ = make_endpoint()
    make_message(endpoint)
    client = Client()
    client.force_login(staff)
    session = client.cookies["sessionid"].value
    app = with_access_log(WSGIHandler(), proxy_hops=1)
    status, content = _call(
        app, "GET", "/messages/export.ndjson", COOKIE=f"sessionid={session}", X_FORWARDED_FOR="198.51.100.4"
    )
    assert status.startswith("200")
    assert b'"endpoint":"shop"' in content
    lines = [r.getMessage().split(" ") for r in access.records if r.name == "inbox.access"]
    assert [line[:3] + line[4:] for line in lines] == [["GET", "/messages/export.ndjson", "200", "198.51.100.4"]]


def test_it_writes_the_access_log_of_granian_when_asked_and_never_a_slug(tmp_path: Path) -> None:
    """The README's production command, with ACCESS_LOG=true."""
    port = servers.free_port()
    env = servers.app_env(tmp_path, port, ACCESS_LOG="true")
    servers.manage(env, "migrate", "--no-input", "--verbosity", "0")
    created = servers.create_endpoint(env, "logged")
    web = servers.start_web(env, port, tmp_path / "web.log", workers=1, threads=2)
    try:
        servers.wait_healthy(port, web)
        status, _, _ = servers.post(port, f"/hooks/{created['slug']}/", b"{}", {"X-Webhook-Token": created["token"]})
        assert status == 200
        assert servers.get(port, f"/hooks/{created['slug']}x/")[0] == 404
    finally:
        web.stop()
    written = web.log()
    assert "INFO inbox.access POST /hooks/…/ 200 " in written
    assert "INFO inbox.access GET /hooks/…/ 404 " in written
    assert created["slug"] not in written
