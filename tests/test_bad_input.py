"""Hostile and malformed requests: each gets a clear status and stores exactly what it should.

Every case says what it expects to find stored afterwards: nothing, one message, or one
rejected attempt (metadata of a refused delivery). Never a 500, never a partial message.

Cases that Django's test Client can express run in-process (on whatever database the test
run uses). Cases that only a real HTTP server produces (chunked framing, header limits, raw
CR/LF, a Content-Length that lies, a stalled body) go over a raw socket to granian, the
server production runs, backed by a SQLite file of its own that the tests read directly.
"""

from __future__ import annotations

import gzip
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from inbox.models import Message, RejectedAttempt
from tests import servers
from tests.conftest import make_endpoint, make_message

ROOT = Path(__file__).resolve().parent.parent
ORDER = b'{"type": "order.created", "id": "evt_1"}'
NOTHING, MESSAGE, REJECTED = "nothing", "one message", "one rejected attempt"
# 10 MiB of zeros, about 10 KiB once gzipped: whoever decompresses it pays 1000x.
BOMB = gzip.compress(b"\0" * (10 * 1024 * 1024), compresslevel=9)
DEEP_ARRAYS = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECTS = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
MARKER = b'{"type": "marker.only-an-injection-would-list-this"}'
HOSTILE_PAYLOAD = b'{"type": "<script>alert(1)</script>{{ settings.SECRET_KEY }}{% debug %}"}'

Check = Callable[[Any, Message | RejectedAttempt | None], None]


# --- In-process cases ------------------------------------------------------------------------
@dataclass(frozen=True)
class Hostile:
    id: str
    status: int
    stored: str  # NOTHING, MESSAGE or REJECTED
    body: bytes = ORDER
    method: str = "POST"
    path: str = "{path}"  # {path} and {slug} are the endpoint's
    headers: Mapping[str, str] = field(default_factory=dict)  # {token} is the endpoint's token
    meta: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    token: bool = True  # send the endpoint's token in its header
    endpoint: Mapping[str, Any] = field(default_factory=dict)
    staff: bool = False  # a dashboard request by signed-in staff rather than a provider's delivery
    then: Check | None = None


def parses_to(parsed: Any = None, *, text: bool | None = None) -> Check:
    """The stored message's parsed JSON is `parsed`; `text`: whether the body is kept as text."""

    def check(response: Any, row: Message | RejectedAttempt | None) -> None:
        assert isinstance(row, Message)
        assert row.json == parsed
        if text is not None:
            assert row.is_text is text

    return check


def says(fragment: bytes) -> Check:
    def check(response: Any, row: Message | RejectedAttempt | None) -> None:
        assert fragment in response.content

    return check


def allows(methods: str) -> Check:
    def check(response: Any, row: Message | RejectedAttempt | None) -> None:
        assert response["Allow"] == methods

    return check


def probe_answer(response: Any, row: Message | RejectedAttempt | None) -> None:
    assert "POST" in response["Allow"]
    assert response.content == b""


def gzip_kept_as_sent(response: Any, row: Message | RejectedAttempt | None) -> None:
    # Stored as sent (the test compares the bytes), never decompressed: 10 KiB, not 10 MiB.
    parses_to(None, text=False)(response, row)
    assert isinstance(row, Message)
    assert row.headers["Content-Encoding"] == "gzip"
    assert row.body_size < 64 * 1024


def duplicate_keys(response: Any, row: Message | RejectedAttempt | None) -> None:
    # The parsed copy keeps the last value (as every JSON parser the providers use does);
    # the raw body keeps both for anyone who needs to know.
    parses_to({"type": "second"})(response, row)
    assert isinstance(row, Message)
    assert row.event_type == "second"


def content_type_kept(value: str) -> Check:
    def check(response: Any, row: Message | RejectedAttempt | None) -> None:
        assert isinstance(row, Message)
        assert row.content_type == value

    return check


def no_injected_response_header(response: Any, row: Message | RejectedAttempt | None) -> None:
    # The receiver never echoes a request header, so nothing can be smuggled into its answer.
    assert "Injected" not in response
    assert not response.cookies
    assert isinstance(row, Message)
    assert row.headers["X-Note"] == "a\r\nSet-Cookie: pwned=1\r\nInjected: 1"


def token_redacted(response: Any, row: Message | RejectedAttempt | None) -> None:
    assert "Injected" not in response
    assert isinstance(row, RejectedAttempt)
    assert row.headers["X-Webhook-Token"] == "[redacted]"
    assert row.status == response.status_code


def rejected_without_body(size: int) -> Check:
    def check(response: Any, row: Message | RejectedAttempt | None) -> None:
        assert isinstance(row, RejectedAttempt)
        assert row.body_size == size
        assert not hasattr(row, "body")

    return check


def asks_for_basic(response: Any, row: Message | RejectedAttempt | None) -> None:
    assert response["WWW-Authenticate"].startswith("Basic ")
    assert isinstance(row, RejectedAttempt)


def challenge_not_echoed(response: Any, row: Message | RejectedAttempt | None) -> None:
    assert b"<script>" not in response.content
    assert response["Content-Type"].startswith("text/plain")


def query_kept(response: Any, row: Message | RejectedAttempt | None) -> None:
    assert isinstance(row, Message)
    assert row.query_string == "a=%00&b=%FF&%zz=1&c"


# Dashboard checks: the page is rendered, the hostile text is shown escaped, and nothing the
# filter should not reach (another message, a secret, the debug dump) is on it.
def page(response: Any) -> str:
    assert response["Content-Type"].startswith("text/html")
    return str(response.content.decode())


def lists_nothing_extra(response: Any, row: Message | RejectedAttempt | None) -> None:
    text = page(response)
    assert "&#x27; OR 1=1 --" in text
    assert "marker.only-an-injection-would-list-this" not in text


def no_secret_key(response: Any, row: Message | RejectedAttempt | None) -> None:
    text = page(response)
    assert settings.SECRET_KEY not in text
    assert 'value="{{ settings.SECRET_KEY }}"' in text


def no_debug_dump(response: Any, row: Message | RejectedAttempt | None) -> None:
    text = page(response)
    assert "(built-in)" not in text  # {% debug %} prints sys.modules
    assert 'value="{% debug %}"' in text


def script_escaped(response: Any, row: Message | RejectedAttempt | None) -> None:
    text = page(response)
    assert "<script>alert(1)" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert settings.SECRET_KEY not in text


def no_password_hash(response: Any, row: Message | RejectedAttempt | None) -> None:
    text = page(response)
    assert User.objects.get(username="staff").password not in text
    assert "marker.only-an-injection-would-list-this" not in text


def first_page(response: Any, row: Message | RejectedAttempt | None) -> None:
    # A cursor that does not parse is ignored: the newest page, which staff see anyway.
    text = page(response)
    assert User.objects.get(username="staff").password not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def dashboard(case_id: str, query: Mapping[str, str], then: Check | None = None, status: int = 200) -> Hostile:
    path = "/?" + urlencode(query)
    return Hostile(case_id, status, NOTHING, body=b"", method="GET", path=path, staff=True, then=then)


CASES = [
    # Size: refused from the declared length, before the body is read, and listed in the rejected
    # log like every refusal the endpoint page counts (issue 13, item 14).
    Hostile(
        "over-limit-content-length",
        413,
        REJECTED,
        b"x" * 2048,
        endpoint={"max_body_bytes": 1024},
        then=says("1.0\xa0KB".encode()),  # filesizeformat, as the Limits card
    ),
    Hostile("declared-terabyte", 413, REJECTED, meta={"CONTENT_LENGTH": str(10**12)}),
    Hostile("declared-30-digit-length", 413, REJECTED, meta={"CONTENT_LENGTH": "9" * 30}),
    Hostile("content-length-not-a-number", 400, REJECTED, meta={"CONTENT_LENGTH": "abc"}),
    Hostile("content-length-negative", 400, REJECTED, meta={"CONTENT_LENGTH": "-1"}),
    Hostile("content-length-float", 400, REJECTED, meta={"CONTENT_LENGTH": "1e3"}),
    # Compressed bodies are stored as sent and never inflated.
    Hostile("gzip-bomb", 200, MESSAGE, BOMB, headers={"Content-Encoding": "gzip"}, then=gzip_kept_as_sent),
    Hostile(
        "gzip-bomb-over-limit",
        413,
        REJECTED,
        BOMB,
        headers={"Content-Encoding": "gzip"},
        endpoint={"max_body_bytes": 4096},
    ),
    # Bodies that are not (storable) JSON: the raw bytes are kept, the parsed copy is None or cleaned.
    Hostile("invalid-utf8", 200, MESSAGE, b'{"type": "caf\xe9"}', then=parses_to(text=False)),
    Hostile(
        "utf8-encoded-surrogate",
        200,
        MESSAGE,
        b'{"s": "\xed\xa0\x80"}',
        then=parses_to({"s": "\ufffd"}, text=False),
    ),
    Hostile(
        "utf16-json",
        200,
        MESSAGE,
        '{"type": "x"}'.encode("utf-16"),
        then=parses_to(text=False),
    ),
    Hostile("raw-nul-byte", 200, MESSAGE, b'{"type": "x"}\x00', then=parses_to(text=False)),
    Hostile("nested-100k-arrays", 200, MESSAGE, DEEP_ARRAYS, then=parses_to()),
    Hostile("nested-100k-objects", 200, MESSAGE, DEEP_OBJECTS, then=parses_to()),
    Hostile("number-1e400", 200, MESSAGE, b'{"n": 1e400}', then=parses_to()),
    Hostile("number-minus-infinity", 200, MESSAGE, b'{"n": -Infinity}', then=parses_to()),
    Hostile(
        "integer-10000-digits",
        200,
        MESSAGE,
        b'{"n": ' + b"7" * 10_000 + b"}",
        then=parses_to(),
    ),
    Hostile(
        "integer-4000-digits",
        200,
        MESSAGE,
        b'{"n": ' + b"7" * 4000 + b"}",
        then=parses_to({"n": int("7" * 4000)}),
    ),
    Hostile("duplicate-keys", 200, MESSAGE, b'{"type": "first", "type": "second"}', then=duplicate_keys),
    Hostile(
        "nul-escapes",
        200,
        MESSAGE,
        b'{"a\\u0000": "b\\u0000c"}',
        then=parses_to({"a\ufffd": "b\ufffdc"}),
    ),
    Hostile(
        "lone-surrogates",
        200,
        MESSAGE,
        b'{"hi": "\\ud800", "lo": "x\\udfffy", "pair": "\\ud83d\\ude00"}',
        then=parses_to({"hi": "\ufffd", "lo": "x\ufffdy", "pair": "\U0001f600"}),
    ),
    Hostile("empty-body", 200, MESSAGE, b"", then=parses_to()),
    # Content types: stored as sent (bounded), never parsed as a form.
    Hostile(
        "unknown-content-type",
        200,
        MESSAGE,
        content_type="application/x-klingon; charset=tlhIngan",
        then=content_type_kept("application/x-klingon; charset=tlhIngan"),
    ),
    Hostile(
        "content-type-1000-chars",
        200,
        MESSAGE,
        content_type="text/" + "x" * 995,
        then=content_type_kept(("text/" + "x" * 995)[:255]),
    ),
    Hostile(
        "multipart-without-boundary",
        200,
        MESSAGE,
        b"--x\r\ngarbage",
        content_type="multipart/form-data",
        then=parses_to(),
    ),
    Hostile(
        "broken-form-encoding",
        200,
        MESSAGE,
        b"a=%zz&%%%&=&b",
        content_type="application/x-www-form-urlencoded",
        then=parses_to(),
    ),
    # Methods: probes answer and store nothing; anything not allowed is a 405 with Allow.
    Hostile("head", 200, NOTHING, method="HEAD", then=probe_answer),
    Hostile("options", 204, NOTHING, method="OPTIONS", then=probe_answer),
    Hostile("put", 405, NOTHING, method="PUT", then=allows("POST, HEAD, OPTIONS")),
    Hostile("delete", 405, NOTHING, method="DELETE", then=allows("POST, HEAD, OPTIONS")),
    Hostile("patch", 405, NOTHING, method="PATCH", then=allows("POST, HEAD, OPTIONS")),
    Hostile("trace", 405, NOTHING, method="TRACE", then=allows("POST, HEAD, OPTIONS")),
    Hostile("invented-method", 405, NOTHING, method="BREW", then=allows("POST, HEAD, OPTIONS")),
    # Header injection: values are stored as data and never reach the response.
    Hostile(
        "crlf-in-a-header",
        200,
        MESSAGE,
        headers={"X-Note": "a\r\nSet-Cookie: pwned=1\r\nInjected: 1"},
        then=no_injected_response_header,
    ),
    Hostile(
        "crlf-in-the-token", 403, REJECTED, headers={"X-Webhook-Token": "{token}\r\nInjected: 1"}, then=token_redacted
    ),
    Hostile("64k-token", 403, REJECTED, headers={"X-Webhook-Token": "w" * 65536}, then=token_redacted),
    # The slug: nothing but the exact slug reaches an endpoint.
    Hostile("dot-dot-admin", 404, NOTHING, path="/hooks/../admin/"),
    Hostile("encoded-dot-dot", 404, NOTHING, path="/hooks/%2e%2e/admin/"),
    Hostile("dot-dot-onto-the-slug", 404, NOTHING, path="/hooks/x/../{slug}/"),
    Hostile("encoded-slash-after-slug", 404, NOTHING, path="/hooks/{slug}%2F..%2Fadmin/"),
    Hostile("encoded-slash-in-slug", 404, NOTHING, path="/hooks/..%2F{slug}/"),
    Hostile("non-ascii-slug", 404, NOTHING, path="/hooks/ünïcödé/"),
    Hostile("invalid-utf8-slug", 404, NOTHING, path="/hooks/%FF%FE/"),
    Hostile("nul-slug", 404, NOTHING, path="/hooks/%00/"),
    Hostile("10k-char-slug", 404, NOTHING, path="/hooks/" + "s" * 10_000 + "/"),
    Hostile("sql-slug", 404, NOTHING, path="/hooks/%27%20OR%20%271%27=%271/"),
    # The query string is kept as sent; more parameters than Django parses is a 400.
    Hostile("odd-query-string", 200, MESSAGE, path="{path}?a=%00&b=%FF&%zz=1&c", then=query_kept),
    Hostile("10k-query-parameters", 400, NOTHING, path="{path}?" + "&".join(f"p{n}=1" for n in range(10_000))),
    # Refused deliveries leave metadata only, whatever they carried.
    Hostile(
        "wrong-token-deep-body",
        403,
        REJECTED,
        DEEP_ARRAYS,
        headers={"X-Webhook-Token": "whi_wrong"},
        then=rejected_without_body(len(DEEP_ARRAYS)),
    ),
    Hostile(
        "basic-garbage-base64",
        401,
        REJECTED,
        headers={"Authorization": "Basic %%%\r\n"},
        token=False,
        endpoint={"auth": "basic"},
        then=asks_for_basic,
    ),
    Hostile(
        "github-non-ascii-signature",
        401,
        REJECTED,
        headers={"X-Hub-Signature-256": "sha256=ü" + "0" * 63},
        token=False,
        endpoint={"auth": "github"},
    ),
    Hostile(
        "meta-challenge-with-script",
        403,
        REJECTED,
        b"",
        method="GET",
        path="{path}?"
        + urlencode(
            {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "<script>alert(1)</script>"}
        ),
        token=False,
        endpoint={"auth": "meta", "secret": "0123456789abcdef0123456789abcdef"},
        then=challenge_not_echoed,
    ),
    # The dashboard's filters, as signed-in staff: SQL and template syntax are only text.
    dashboard("sql-in-search", {"q": "' OR 1=1 --"}, lists_nothing_extra),
    dashboard("template-variable-in-search", {"q": "{{ settings.SECRET_KEY }}"}, no_secret_key),
    dashboard("debug-tag-in-search", {"q": "{% debug %}"}, no_debug_dump),
    dashboard("script-in-search", {"q": "<script>alert(1)</script>"}, script_escaped),
    dashboard("sql-union-in-event-type", {"event_type": "' UNION SELECT password FROM auth_user --"}, no_password_hash),
    dashboard("sql-in-json-path", {"json": "type = x' OR '1'='1"}, no_password_hash),
    dashboard("sql-in-endpoint-id", {"endpoint": "1 OR 1=1"}, no_password_hash),
    dashboard("sql-in-cursor", {"before": "1' OR '1'='1"}, first_page),
    # NUL in any staff page's query string is a 400 (PostgreSQL text cannot hold it).
    dashboard("nul-in-search", {"q": "\x00"}, status=400),
    dashboard("nul-in-event-type", {"event_type": "a\x00b"}, status=400),
    dashboard("nul-in-json-path", {"json": "type = \x00"}, status=400),
    Hostile(
        "nul-in-an-admin-lookup",
        400,
        NOTHING,
        body=b"",
        method="GET",
        path="/admin/inbox/message/?event_type=%00",
        staff=True,
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_it_answers_hostile_input_with_a_clear_status(case: Hostile, request: pytest.FixtureRequest) -> None:
    endpoint, token = make_endpoint(**case.endpoint)
    if case.staff:
        client: Client = request.getfixturevalue("staff_client")
        make_message(endpoint, MARKER)
        make_message(endpoint, HOSTILE_PAYLOAD)
    else:
        client = Client(REMOTE_ADDR="203.0.113.9")
    headers = {name: value.replace("{token}", token or "") for name, value in case.headers.items()}
    if case.token and token:
        headers.setdefault(endpoint.token_header, token)
    path = case.path.replace("{path}", endpoint.path).replace("{slug}", endpoint.slug)
    messages, rejected = Message.objects.count(), RejectedAttempt.objects.count()

    response = client.generic(
        case.method, path, data=case.body, content_type=case.content_type, headers=headers, **case.meta
    )

    assert response.status_code == case.status, response.content[:300]
    new_messages = Message.objects.count() - messages
    new_rejected = RejectedAttempt.objects.count() - rejected
    assert (new_messages, new_rejected) == {NOTHING: (0, 0), MESSAGE: (1, 0), REJECTED: (0, 1)}[case.stored]
    row: Message | RejectedAttempt | None = None
    if case.stored == MESSAGE:
        row = Message.objects.order_by("-id").first()
        assert row is not None
        # Nothing lost, nothing added: whatever else happens, the body is kept byte for byte.
        assert (row.body, row.body_size) == (case.body, len(case.body))
    elif case.stored == REJECTED:
        row = RejectedAttempt.objects.order_by("-id").first()
    if case.then is not None:
        case.then(response, row)


# --- Over the wire, to a real granian -----------------------------------------------------------
@dataclass(frozen=True)
class Server:
    host: str
    port: int
    slug: str
    token: str
    endpoint_id: int
    db: Path
    log: Path

    @property
    def path(self) -> bytes:
        return f"/hooks/{self.slug}/".encode()

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with closing(sqlite3.connect(self.db, timeout=10)) as db:
            return db.execute(sql, args).fetchall()

    def counts(self) -> tuple[int, int]:
        (messages,), (rejected,) = (
            self.query(f"SELECT count(*) FROM {table} WHERE endpoint_id = ?", self.endpoint_id)[0]  # noqa: S608
            for table in ("inbox_message", "inbox_rejectedattempt")
        )
        return messages, rejected

    def last_message(self) -> dict[str, Any]:
        body_text, body_bytes, size, headers = self.query(
            "SELECT body_text, body_bytes, body_size, headers FROM inbox_message WHERE endpoint_id = ? "
            "ORDER BY id DESC LIMIT 1",
            self.endpoint_id,
        )[0]
        body = body_text.encode() if body_text is not None else bytes(body_bytes)
        return {"body": body, "body_size": size, "headers": json.loads(headers)}

    def errors(self) -> list[str]:
        # A crash shows as a traceback, the receiver's last-resort 503 as "unexpected error".
        lines = self.log.read_text(errors="replace").splitlines()
        return [line for line in lines if "Traceback" in line or "unexpected error" in line]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """granian serving the app as production does, on a SQLite file of its own."""
    tmp = tmp_path_factory.mktemp("granian")
    port = servers.free_port()
    env = servers.app_env(tmp, port, INBOX_LOG_LEVEL="INFO")  # SQLite in VAR_DIR
    servers.manage(env, "migrate", "--no-input", "--verbosity", "0")
    created = servers.create_endpoint(env, "raw-socket")
    log = tmp / "granian.log"
    web = servers.start_web(env, port, log, workers=1, threads=4)
    try:
        servers.wait_healthy(port, web)
        yield Server("127.0.0.1", port, created["slug"], created["token"], created["id"], tmp / "inbox.sqlite3", log)
    finally:
        web.stop()


def exchange(server: Server, data: bytes, *, half_close: bool = False, timeout: float = 5) -> tuple[int, bytes]:
    """Send raw bytes, read the answer to the end: (status, body)."""
    with socket.create_connection((server.host, server.port), timeout=timeout) as conn:
        try:
            conn.sendall(data)
            if half_close:
                conn.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early and closed; its answer is still to be read
        received = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 "), received[:200]
    return int(head.split(b" ")[1]), body


def post(
    server: Server,
    *,
    body: bytes = b'{"type": "wire"}',
    headers: bytes = b"",
    length: bytes | None = None,
    path: bytes | None = None,
) -> bytes:
    """A delivery as raw bytes: the endpoint's token, Content-Length unless `length` says
    otherwise (b"" for none), then `headers` as given, CR/LF and all."""
    declared = str(len(body)).encode() if length is None else length
    lines = [
        b"POST " + (server.path if path is None else path.replace(b"{slug}", server.slug.encode())) + b" HTTP/1.1",
        b"Host: 127.0.0.1",
        b"Connection: close",
        b"Content-Type: application/json",
        b"X-Webhook-Token: " + server.token.encode(),
    ]
    if declared:
        lines.append(b"Content-Length: " + declared)
    return b"\r\n".join(lines) + b"\r\n" + headers + b"\r\n" + body


def chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"


@dataclass(frozen=True)
class Wire:
    id: str
    status: int
    stored: str
    request: Callable[[Server], bytes]
    half_close: bool = False
    then: Callable[[Server, bytes], None] | None = None


def wire_body_kept(expected: bytes) -> Callable[[Server, bytes], None]:
    def check(server: Server, answer: bytes) -> None:
        stored = server.last_message()
        assert (stored["body"], stored["body_size"]) == (expected, len(expected))

    return check


def big_header_kept(server: Server, answer: bytes) -> None:
    assert server.last_message()["headers"]["X-Big"] == "a" * 65536


def no_crlf_in_stored_headers(server: Server, answer: bytes) -> None:
    # A bare LF ends the header line (RFC 9112 lets a recipient accept it): the would-be
    # injected line becomes a header of its own, and no stored value holds CR or LF.
    headers = server.last_message()["headers"]
    assert headers["X-Evil"] == "a"
    assert all("\r" not in f"{k}{v}" and "\n" not in f"{k}{v}" for k, v in headers.items())


WIRE = [
    # Chunked framing: the server does not tell the app when a sender hung up before the
    # last chunk, so the receiver asks for a length rather than risk storing half a body.
    Wire(
        "chunked-body",
        411,
        REJECTED,
        lambda s: post(
            s, body=chunked(b'{"type": ', b'"chunked"}'), headers=b"Transfer-Encoding: chunked\r\n", length=b""
        ),
    ),
    Wire(
        "chunked-body-cut-before-its-last-chunk",
        411,
        REJECTED,
        lambda s: post(
            s, body=b'1c\r\n{"id": "evt_1", "amount": 10\r\n', headers=b"Transfer-Encoding: chunked\r\n", length=b""
        ),
        half_close=True,
    ),
    Wire(
        "chunked-over-limit",
        411,
        REJECTED,
        lambda s: post(s, body=chunked(*[b"x" * 65536] * 32), headers=b"Transfer-Encoding: chunked\r\n", length=b""),
    ),
    # Both framings at once, the smuggling classic: chunked wins, nothing is stored.
    Wire(
        "chunked-and-content-length",
        411,
        REJECTED,
        lambda s: post(s, body=chunked(b'{"a": 1}'), headers=b"Transfer-Encoding: chunked\r\n", length=b"3"),
    ),
    Wire(
        "unknown-transfer-coding",
        400,
        NOTHING,
        lambda s: post(s, body=b"abc", headers=b"Transfer-Encoding: gzip\r\n", length=b""),
    ),
    # Content-Length that lies.
    Wire(
        "content-length-longer-than-body",
        400,
        REJECTED,
        lambda s: post(s, body=b'{"cut": ', length=b"100"),
        half_close=True,
    ),
    Wire(
        "content-length-shorter-than-body",
        200,
        MESSAGE,
        lambda s: post(s, body=b'{"a":1}' + b"x" * 43, length=b"7"),
        then=wire_body_kept(b'{"a":1}'),
    ),
    Wire("two-content-lengths", 400, NOTHING, lambda s: post(s, headers=b"Content-Length: 99\r\n")),
    Wire("content-length-not-a-number", 400, NOTHING, lambda s: post(s, length=b"abc")),
    Wire("content-length-negative", 400, NOTHING, lambda s: post(s, length=b"-5")),
    Wire("content-length-with-plus", 400, NOTHING, lambda s: post(s, body=b'{"a":1}', length=b"+7")),
    # Over the limit: answered from the declared length, without waiting for the body.
    Wire("over-limit-content-length", 413, REJECTED, lambda s: post(s, body=b"x" * 65536, length=b"10000000")),
    Wire(
        "over-limit-expect-100-continue",
        413,
        REJECTED,
        lambda s: post(s, body=b"", headers=b"Expect: 100-continue\r\n", length=b"10000000"),
    ),
    Wire(
        "gzip-bomb",
        200,
        MESSAGE,
        lambda s: post(s, body=BOMB, headers=b"Content-Encoding: gzip\r\n"),
        then=wire_body_kept(BOMB),
    ),
    # Header limits and raw CR/LF.
    Wire("10k-headers", 431, NOTHING, lambda s: post(s, headers=b"".join(b"X-H%d: v\r\n" % n for n in range(10_000)))),
    Wire(
        "64k-header", 200, MESSAGE, lambda s: post(s, headers=b"X-Big: " + b"a" * 65536 + b"\r\n"), then=big_header_kept
    ),
    Wire("512k-header", 431, NOTHING, lambda s: post(s, headers=b"X-Big: " + b"a" * 524288 + b"\r\n")),
    Wire("bare-cr-in-header", 400, NOTHING, lambda s: post(s, headers=b"X-Evil: a\rInjected: 1\r\n")),
    Wire(
        "bare-lf-in-header",
        200,
        MESSAGE,
        lambda s: post(s, headers=b"X-Evil: a\nInjected: 1\r\n"),
        then=no_crlf_in_stored_headers,
    ),
    Wire("folded-header", 400, NOTHING, lambda s: post(s, headers=b"X-Evil: a\r\n Injected: 1\r\n")),
    Wire("nul-in-header", 400, NOTHING, lambda s: post(s, headers=b"X-Evil: a\x00b\r\n")),
    # Paths are not normalised onto the real slug, and raw non-ASCII is refused.
    Wire("dot-dot-onto-the-slug", 404, NOTHING, lambda s: post(s, path=b"/hooks/x/../{slug}/")),
    Wire("encoded-dot-dot", 404, NOTHING, lambda s: post(s, path=b"/hooks/%2e%2e/admin/")),
    Wire("raw-utf8-slug", 404, NOTHING, lambda s: post(s, path="/hooks/ünï/".encode())),
    Wire("raw-invalid-utf8-slug", 400, NOTHING, lambda s: post(s, path=b"/hooks/\xff\xfe/")),
]


@pytest.mark.parametrize("case", WIRE, ids=[case.id for case in WIRE])
def test_it_answers_hostile_wire_input_with_a_clear_status(server: Server, case: Wire) -> None:
    before = server.counts()
    status, answer = exchange(server, case.request(server), half_close=case.half_close)
    assert status == case.status, answer[:300]
    messages, rejected = server.counts()
    delta = (messages - before[0], rejected - before[1])
    assert delta == {NOTHING: (0, 0), MESSAGE: (1, 0), REJECTED: (0, 1)}[case.stored]
    if case.then is not None:
        case.then(server, answer)
    assert server.errors() == []


def _stall(server: Server) -> socket.socket:
    """Headers announcing 100 bytes, then 10 of them, then nothing: a slowloris body."""
    conn = socket.create_connection((server.host, server.port), timeout=10)
    conn.sendall(post(server, body=b'{"slow": 1', length=b"100").replace(b"Connection: close\r\n", b""))
    return conn


def _stalled_bodies_stored(server: Server) -> int:
    rows = server.query(
        "SELECT count(*) FROM inbox_message WHERE endpoint_id = ? AND body_text LIKE '{\"slow\"%'", server.endpoint_id
    )
    return int(rows[0][0])


def test_it_stores_nothing_from_stalled_bodies_and_serves_again_once_they_go(server: Server) -> None:
    # granian has no body read timeout: each stalled body holds one of its blocking threads
    # for as long as the sender keeps the connection open (measured: 150 s and counting).
    # What must hold whatever the server: a stalled body is never stored, not even when its
    # sender gives up, and the server serves others again once the stalled senders go.
    first = _stall(server)
    status, _ = exchange(server, post(server), timeout=2)
    assert status == 200, "a free thread serves others while one body stalls"

    stalled = [first, *(_stall(server) for _ in range(3))]  # as many as --blocking-threads
    queued: dict[str, Any] = {}

    def deliver() -> None:
        queued["answer"] = exchange(server, post(server, body=b'{"type": "queued"}'), timeout=15)

    behind = threading.Thread(target=deliver)
    behind.start()
    time.sleep(0.5)
    assert _stalled_bodies_stored(server) == 0

    for conn in stalled:
        conn.close()
    behind.join(timeout=15)
    assert queued["answer"][0] == 200, "the delivery queued behind the stalled bodies is served"
    started = time.monotonic()
    assert exchange(server, post(server), timeout=2)[0] == 200
    assert time.monotonic() - started < 1
    time.sleep(0.2)  # the stalled requests finish (400, incomplete body) on their threads
    assert _stalled_bodies_stored(server) == 0
    assert server.errors() == []
