"""Property tests: whatever arrives, the receiver answers without a 500 and stores only what
it verified; every verifier refuses what was not signed, with a reason, and never raises.

tests/verification/test_properties.py already throws random deliveries at every preset with
one secret each and a random clock. This file adds what it does not cover:
- the whole receiver (methods, header names and values, bodies, query strings, content
  types) against endpoints of several schemes, with what each answer may store;
- genuine signatures on random bodies surrounded by random headers: stored byte for byte;
- verifiers with several, no, or unusable secrets, fed timestamps inside their tolerance so
  random signatures reach the comparison itself, through a case-insensitive header mapping
  with names in any case (HTTP/2 sends them lower-case);
- every signing preset: a genuine signature verifies, and stops verifying when one byte of
  the body changes or the secret differs;
- the generic HMAC scheme under hand-edited options (the admin edits them as raw JSON);
- parse_json: whatever it returns, every database can store.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.test import Client
from django.utils.datastructures import CaseInsensitiveMapping
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from inbox.ingest.body import MAX_JSON_DEPTH, parse_json
from inbox.models import Endpoint, Message
from inbox.secrets import token_digest
from inbox.verification import (
    GENERIC_HEADERS,
    GENERIC_IDEMPOTENCY,
    PRESETS,
    BodyFieldsScheme,
    Delivery,
    Ed25519Scheme,
    Secret,
    StandardWebhooksScheme,
    UrlParamsScheme,
    generic_hmac_scheme,
)
from tests.conftest import make_endpoint

NOW = time.time()
DISCORD_KEY = Ed25519PrivateKey.generate()
DISCORD_PUBLIC = DISCORD_KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
FUNCTION_FIXTURE = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]

# Every header a preset reads, so random values land where verifiers look.
SCHEME_HEADERS = sorted(
    {
        name
        for preset in PRESETS.values()
        for name in (
            *(getattr(preset.scheme, attr, "") for attr in ("header", "timestamp_header", "id_header")),
            getattr(preset.scheme, "signature_header", ""),
            *preset.event_type_headers,
            *preset.idempotency_headers,
        )
        if name
    }
    | {f"{p}-{n}" for p in ("webhook", "svix") for n in ("id", "timestamp", "signature")}
    | {"Authorization", "X-Webhook-Token", "Twitch-Eventsub-Message-Type", *GENERIC_HEADERS, *GENERIC_IDEMPOTENCY}
)
# The test client turns these into WSGI framing (CONTENT_LENGTH) or middleware input (Host):
# lies about them are the wire tests' business (tests/test_bad_input.py), not the receiver's.
FRAMING = {"content-length", "transfer-encoding", "host"}
RESERVED = {name.lower() for name in SCHEME_HEADERS} | FRAMING | {"content-type"}


# --- Strategies --------------------------------------------------------------------------------
def _near_now() -> st.SearchStrategy[str]:
    seconds = st.integers(min_value=-30, max_value=30).map(lambda d: int(NOW) + d)
    return st.one_of(
        seconds.map(str),
        seconds.map(lambda s: str(s * 1000)),
        seconds.map(lambda s: datetime.fromtimestamp(s, UTC).isoformat().replace("+00:00", "Z")),
    )


HEX = st.text(alphabet="0123456789abcdef", max_size=130)
B64 = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", max_size=90)
# What a real server hands over: printable ASCII, tab and Latin-1 (granian refuses other
# control characters, NUL included, with a 400 before the application sees them).
PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.characters(
    min_codepoint=0xA0, max_codepoint=0xFF
)
header_values = st.one_of(
    st.text(alphabet=PRINTABLE | st.just("\t"), max_size=300),
    _near_now(),
    st.tuples(_near_now(), HEX).map(lambda p: f"t={p[0]},v1={p[1]}"),
    st.tuples(_near_now(), HEX).map(lambda p: f"ts={p[0]};h1={p[1]}"),
    st.tuples(st.sampled_from(["sha256=", "sha1=", "v0=", "v1,", ""]), HEX | B64).map("".join),
    B64.map(lambda v: "Basic " + v),
)
HEADER_TOKEN = st.from_regex(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,30}", fullmatch=True)
header_names = st.one_of(st.sampled_from(SCHEME_HEADERS), HEADER_TOKEN).filter(lambda n: n.lower() not in FRAMING)
headers = st.dictionaries(header_names, header_values, max_size=8)
# Headers that leave a genuine signature alone: neither framing nor anything a scheme reads.
extra_headers = st.dictionaries(
    HEADER_TOKEN.filter(lambda n: n.lower() not in RESERVED), st.text(alphabet=PRINTABLE, max_size=100), max_size=6
)

# Strings with what databases choke on: NUL and unpaired surrogates (json.dumps escapes them).
json_text = st.text(alphabet=st.one_of(st.characters(), st.characters(categories=["Cs"]), st.just("\x00")), max_size=20)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), json_text),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(json_text, children, max_size=4),
    max_leaves=15,
)
json_bodies = json_values.map(lambda v: json.dumps(v).encode())  # NaN and Infinity included
bodies = st.one_of(
    st.binary(max_size=400),
    st.text(max_size=200).map(str.encode),
    json_bodies,
    st.sampled_from(
        [
            b"",
            b'{"type": 1}',  # Discord's PING: answered only when signed
            b'{"type": 0}',
            b'{"type": "url_verification", "challenge": "c"}',  # Slack's handshake
            b'{"event": "endpoint.url_validation", "payload": {"plainToken": "p"}}',  # Zoom's
            b"[" * 5000 + b"]" * 5000,
            b"\xef\xbb\xbf{}",
        ]
    ),
)
text_bodies = st.one_of(st.text(max_size=200), json_values.map(json.dumps)).map(str.encode)
queries = st.lists(
    st.tuples(
        st.sampled_from(["hub.mode", "hub.verify_token", "hub.challenge", "bodySHA256", "id", "x"])
        | st.text(max_size=8),
        st.sampled_from(["subscribe", ""]) | st.text(max_size=40),
    ),
    max_size=4,
).map(lambda pairs: "?" + urlencode(pairs) if pairs else "")
# Half the examples POST, so most reach verification; the rest try every other method.
methods = st.just("POST") | st.sampled_from(
    ["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT", "PROPFIND", "BREW", "post", "X" * 40]
)
content_types = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "text/plain; charset=klingon",
            "application/octet-stream",
            "",
        ]
    ),
    st.text(alphabet=PRINTABLE, max_size=60),
)


# --- (a) The receiver, through the test client -----------------------------------------------------
SCHEMES: dict[str, dict[str, Any]] = {
    "none": {"auth": "none", "allowed_methods": "POST,GET,PUT,PATCH,DELETE"},
    "token": {},
    "basic": {"auth": "basic"},
    "github": {"auth": "github"},
    "stripe": {"auth": "stripe", "secret": "whsec_test_secret_for_fuzzing"},
    "standard": {"auth": "standard"},
    "discord": {"auth": "discord", "secret": DISCORD_PUBLIC},
    "twilio": {"auth": "twilio", "secret": "0123456789abcdef0123456789abcdef"},
    "slack": {"auth": "slack", "secret": "8f742231b10e8888abcd99yyyzzz85a5"},
    "meta": {"auth": "meta", "secret": "fedcba9876543210fedcba9876543210"},
    "mailgun": {"auth": "mailgun", "secret": "key-0123456789abcdef0123456789"},
}


@pytest.fixture
def endpoints(db: None) -> dict[str, tuple[Endpoint, str | None]]:
    # One endpoint per scheme for the whole run of examples; a rate far above what the run
    # sends, so every example reaches verification.
    return {name: make_endpoint(f"fuzz-{name}", rate_limit="1000000/m", **fields) for name, fields in SCHEMES.items()}


def _current_secret(endpoint: Endpoint) -> str:
    return next(c.value for c in endpoint.credentials() if c.label == "current")


@settings(max_examples=300, deadline=None, suppress_health_check=FUNCTION_FIXTURE)
@given(
    scheme=st.sampled_from(sorted(SCHEMES)),
    method=methods,
    sent_headers=headers,
    body=bodies,
    query=queries,
    content_type=content_types,
)
def test_it_never_fails_and_stores_only_what_it_verified(
    endpoints: dict[str, tuple[Endpoint, str | None]],
    *,
    scheme: str,
    method: str,
    sent_headers: dict[str, str],
    body: bytes,
    query: str,
    content_type: str,
) -> None:
    endpoint, _ = endpoints[scheme]
    messages, rejected = endpoint.messages.count(), endpoint.rejected_attempts.count()

    response = Client(REMOTE_ADDR="198.51.100.30").generic(
        method, endpoint.path + query, data=body, content_type=content_type, headers=sent_headers
    )

    # Not even the receiver's own last resort (503): that answer means an exception it did not expect.
    assert response.status_code < 500, response.content
    stored = endpoint.messages.count() - messages
    refused = endpoint.rejected_attempts.count() - rejected
    event(f"{scheme}: {response.status_code}{' stored' if stored else ''}")
    # Every 401/403 leaves its trace, and only those do.
    assert refused == (1 if response.status_code in (401, 403) else 0)
    if endpoint.secret_kind != "none":
        # Nothing here is signed with the endpoint's secret: only probes may answer 2xx.
        assert stored == 0
        assert not 200 <= response.status_code < 300 or method.upper() in ("HEAD", "OPTIONS")
        return
    if method.upper() in endpoint.methods and response.status_code == 200:
        keys = {name.lower() for name in GENERIC_IDEMPOTENCY}
        keyed = any(value for name, value in sent_headers.items() if name.lower().replace("_", "-") in keys)
        # Without an idempotency key every accepted delivery is a new message; with one, a
        # repeat of an earlier example's key is counted, not stored twice.
        assert stored == 1 or (keyed and stored == 0)
    else:
        assert stored == 0
    if stored:
        message = endpoint.messages.newest_first().first()
        assert message is not None
        assert (message.body, message.method) == (body, method.upper())


def _signed(endpoint: Endpoint, token: str | None, body: bytes, content_type: str) -> tuple[str, dict[str, str]]:
    """The query string and headers that make `body` a genuine delivery to `endpoint`."""
    scheme, now = endpoint.scheme, time.time()
    if endpoint.secret_kind == "token":
        return "", {endpoint.token_header: token or ""}
    if isinstance(scheme, Ed25519Scheme):
        stamp = str(int(now))
        return "", {
            "X-Signature-Timestamp": stamp,
            "X-Signature-Ed25519": DISCORD_KEY.sign(stamp.encode() + body).hex(),
        }
    query = ""
    if isinstance(scheme, UrlParamsScheme):
        # A body that is not a form is covered by the bodySHA256 parameter of the signed URL.
        query = "?bodySHA256=" + hashlib.sha256(body).hexdigest()
    delivery = Delivery("POST", endpoint.url + query, {"Content-Type": content_type}, body, now)
    return query, scheme.sign(delivery, _current_secret(endpoint))


@settings(max_examples=150, deadline=None, suppress_health_check=FUNCTION_FIXTURE)
@given(
    scheme=st.sampled_from(["token", "github", "stripe", "standard", "discord", "twilio", "slack"]),
    body=text_bodies,
    extra=extra_headers,
)
def test_it_stores_a_genuine_delivery_byte_for_byte_whatever_else_it_carries(
    endpoints: dict[str, tuple[Endpoint, str | None]], scheme: str, body: bytes, extra: dict[str, str]
) -> None:
    endpoint, token = endpoints[scheme]
    Message.objects.all().delete()  # a payload id repeated from an earlier example is no duplicate here
    query, signature = _signed(endpoint, token, body, "application/json")

    response = Client(REMOTE_ADDR="198.51.100.31").post(
        endpoint.path + query, data=body, content_type="application/json", headers={**extra, **signature}
    )

    payload = parse_json(body)
    # Discord's PINGs are the JSON integers 1 (without an "event") and 0, never true or 1.0.
    kind = payload.get("type") if isinstance(payload, dict) else None
    ping = type(kind) is int and (kind == 0 or (kind == 1 and "event" not in payload))
    slack = isinstance(payload, dict) and kind == "url_verification"
    if (scheme == "discord" and ping) or (scheme == "slack" and slack):
        # A signed handshake is answered, not stored: Slack's echoes a usable challenge and
        # refuses any other with 400.
        challenge = payload.get("challenge")
        usable = isinstance(challenge, str) and 0 < len(challenge) <= 1000
        expected = (200, 204) if scheme == "discord" or usable else (400,)
        assert response.status_code in expected, response.content
        assert not endpoint.messages.exists()
        return
    assert response.status_code == 200, response.content
    message = endpoint.messages.get()
    assert (message.body, message.body_size, message.verification) == (body, len(body), "verified")
    # Django names headers from their WSGI keys ("x_a" and "X-A" are one header; the last wins).
    expected = {_stored_name(name): value for name, value in extra.items()}
    for name, value in expected.items():
        assert message.headers[name] in (value, "[redacted]")


def _stored_name(name: str) -> str:
    return name.replace("_", "-").title()


# --- (b) Every verifier, directly --------------------------------------------------------------------
def _any_case(mapping: Mapping[str, str], flips: list[bool]) -> CaseInsensitiveMapping[str]:
    """The headers as Django's request.headers hands them over: case-insensitive, and with
    names in whatever case the sender (or HTTP/2, lower-case) used."""
    cased = {
        (name.lower() if flip else name.upper()): value
        for (name, value), flip in zip(mapping.items(), flips, strict=False)
    }
    return CaseInsensitiveMapping(cased)


def _usable_secret(name: str) -> str:
    if name in ("token", "gitlab"):
        return token_digest("whi_a_token_never_generated_by_hypothesis")
    if name == "basic":
        return token_digest("user:a password never generated by hypothesis")
    if name == "discord":
        return DISCORD_PUBLIC
    if name in ("standard", "svix"):
        return "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    return "a-signing-secret-value"


# Secrets as stored rows can hold them: the real one, a previous one, and garbage left by a
# failed decryption or a hand edit (not hex, not base64, empty).
unusable_secrets = st.one_of(
    st.just(""), st.text(max_size=80), st.just("whsec_!!!"), st.just("zz" * 32), HEX.map(lambda h: "whsec_" + h)
)


@settings(max_examples=250, deadline=None)
@given(
    sent=headers,
    flips=st.lists(st.booleans(), min_size=8, max_size=8),
    body=bodies,
    url=st.sampled_from(["https://hooks.example.com/hooks/x/", "http://127.0.0.1:8000/hooks/x/?a=1", "", "x:/\x00"]),
    query=st.dictionaries(st.sampled_from(["bodySHA256", "hub.mode"]), HEX | st.text(max_size=40), max_size=2),
    garbage=st.lists(unusable_secrets, max_size=3),
    with_real_secret=st.booleans(),
)
def test_it_refuses_unsigned_input_with_a_reason_whatever_secrets_are_stored(
    *,
    sent: dict[str, str],
    flips: list[bool],
    body: bytes,
    url: str,
    query: dict[str, str],
    garbage: list[str],
    with_real_secret: bool,
) -> None:
    delivery = Delivery("POST", url, _any_case(sent, flips), body, NOW, query)
    for name, preset in PRESETS.items():
        secrets_ = [Secret(value, f"old-{n}") for n, value in enumerate(garbage)]
        if with_real_secret:
            secrets_.insert(0, Secret(_usable_secret(name)))
        verdict = preset.scheme.verify(delivery, secrets_)
        if name == "none":
            assert verdict.ok
            continue
        # No secret at all (every one undecryptable) must refuse as firmly as a wrong one.
        assert not verdict.ok, (name, verdict)
        assert verdict.reason, name
        assert verdict.status in (401, 403), name
        assert verdict.matched == "", name


SIGNING_PRESETS = sorted(name for name, preset in PRESETS.items() if preset.secret_kind in ("hmac", "public_key"))


def _genuine(name: str, body: bytes, secret: str, now: float) -> Delivery:
    """A delivery to preset `name` signed as its provider would sign it."""
    scheme = PRESETS[name].scheme
    url, content_type, query = "https://hooks.example.com/hooks/abc/", "application/json", {}
    if name == "linear":
        body = json.dumps({"webhookTimestamp": int(now * 1000), "data": body.decode("utf-8", "replace")}).encode()
    if isinstance(scheme, UrlParamsScheme):
        query = {"bodySHA256": hashlib.sha256(body).hexdigest()}
        url += "?" + urlencode(query)
    if isinstance(scheme, BodyFieldsScheme):
        body = BodyFieldsScheme.sign_body({"event-data": {"note": body.decode("utf-8", "replace")}}, secret, now)
    unsigned = Delivery("POST", url, {"Content-Type": content_type}, body, now, query)
    if isinstance(scheme, Ed25519Scheme):
        stamp = str(int(now))
        signature = {
            "X-Signature-Timestamp": stamp,
            "X-Signature-Ed25519": DISCORD_KEY.sign(stamp.encode() + body).hex(),
        }
    else:
        signature = scheme.sign(unsigned, secret)
    return Delivery("POST", url, {"Content-Type": content_type, **signature}, body, now, query)


def _secret_for(name: str) -> str:
    if name == "discord":
        return DISCORD_PUBLIC
    if isinstance(PRESETS[name].scheme, StandardWebhooksScheme):
        return "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    return "a-signing-secret-value"


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(SIGNING_PRESETS),
    body=text_bodies.filter(bool),
    position=st.integers(min_value=0),
    flip=st.integers(min_value=1, max_value=255),
)
def test_it_accepts_a_genuine_signature_and_refuses_it_after_one_byte_changes(
    name: str, body: bytes, position: int, flip: int
) -> None:
    secret, scheme = _secret_for(name), PRESETS[name].scheme
    genuine = _genuine(name, body, secret, time.time())
    verdict = scheme.verify(genuine, [Secret("not-this-one", "previous"), Secret(secret, "current")])
    assert verdict.ok, (name, verdict)
    assert verdict.matched == "current"

    if name != "discord":  # a public key cannot be "the wrong secret" for a signature made elsewhere
        assert not scheme.verify(genuine, [Secret(secret + "x")]).ok, name
    # Mailgun signs its timestamp and token, not the body (its documented scheme): a changed
    # body keeps a valid signature, and the replayed token is what stops a replay.
    assume(name != "mailgun")
    index = position % len(genuine.body)
    changed = bytearray(genuine.body)
    changed[index] ^= flip
    tampered = Delivery(genuine.method, genuine.url, genuine.headers, bytes(changed), genuine.now, genuine.query)
    verdict = scheme.verify(tampered, [Secret(secret)])
    assert not verdict.ok, (name, index)
    assert verdict.reason


JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
option_values = st.one_of(
    JSON_SCALARS, st.lists(JSON_SCALARS, max_size=2), st.dictionaries(st.text(max_size=5), JSON_SCALARS, max_size=2)
)


@settings(max_examples=300, deadline=None)
@given(
    options=st.fixed_dictionaries(
        {},
        optional={
            "header": st.sampled_from(["X-Signature", "x-signature", ""]) | option_values,
            "digest": st.sampled_from(["sha1", "sha256", "sha512", "md5"]) | option_values,
            "encoding": st.sampled_from(["hex", "base64"]) | option_values,
            "prefix": st.sampled_from(["", "sha256="]) | option_values,
            # What a hand edit can leave: the placeholders the form allows, ones it does
            # not, unbalanced braces.
            "template": st.lists(
                st.sampled_from(["{body}", "{timestamp}", "{url}", "{id}", "{nope}", "{", "}", ".", "v0:"]), max_size=4
            ).map("".join)
            | option_values,
            "timestamp_header": st.sampled_from(["", "X-Timestamp"]) | option_values,
            "tolerance": st.sampled_from([300, "300", "²", "-5", "1e3", 10**30]) | option_values,
        },
    ),
    sent=headers,
    body=bodies,
)
def test_it_refuses_rather_than_raises_under_hand_edited_hmac_options(
    options: dict[str, Any], sent: dict[str, str], body: bytes
) -> None:
    # The admin edits scheme_options as raw JSON, and generic_hmac_scheme promises to fall
    # back rather than fail: every delivery must still get a verdict, never an exception
    # (which the receiver would turn into a 503 for every delivery to the endpoint).
    scheme = generic_hmac_scheme(options)
    delivery = Delivery("POST", "https://hooks.example.com/hooks/x/", CaseInsensitiveMapping(sent), body, NOW)
    verdict = scheme.verify(delivery, [Secret("generic-hmac-secret")])
    assert not verdict.ok
    assert verdict.reason


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


@settings(max_examples=400, deadline=None)
@given(
    raw=st.one_of(
        json_bodies,
        bodies,
        json_values.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    )
)
def test_it_parses_only_what_every_database_can_store(raw: bytes) -> None:
    parsed = parse_json(raw)
    if parsed is None:
        return
    assert isinstance(parsed, dict | list)
    # PostgreSQL's jsonb refuses \u0000, unpaired surrogates, NaN and Infinity; strict
    # encoding finds all four.
    encoded = json.dumps(parsed, allow_nan=False, ensure_ascii=False).encode("utf-8")
    assert b"\\u0000" not in encoded
    assert _depth(parsed) <= MAX_JSON_DEPTH


clean_text = st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=20)
clean_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), clean_text),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(clean_text, children, max_size=4),
    max_leaves=15,
)


@settings(max_examples=200, deadline=None)
@given(document=st.one_of(st.lists(clean_json, max_size=4), st.dictionaries(clean_text, clean_json, max_size=4)))
def test_it_parses_a_clean_document_to_exactly_what_was_sent(document: Any) -> None:
    # The cleaning above must not touch what needs none.
    assert parse_json(json.dumps(document).encode()) == document
