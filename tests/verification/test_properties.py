"""Property: whatever arrives, no verifier raises, and none accepts what was not signed."""

from __future__ import annotations

import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from inbox.secrets import token_digest
from inbox.verification import PRESETS, Delivery, Secret

PUBLIC_KEY = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
SECRETS = {
    "token": token_digest("whi_token"),
    "gitlab": token_digest("gitlab-token"),
    "basic": token_digest("user:password"),
    "discord": PUBLIC_KEY,
    "standard": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "svix": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
}
HEADER_NAMES = sorted(
    {
        name
        for preset in PRESETS.values()
        for name in (
            getattr(preset.scheme, attr, "") for attr in ("header", "timestamp_header", "id_header", "signature_header")
        )
        if name
    }
    | {
        "Authorization",
        "Content-Type",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "svix-signature",
        "svix-id",
        "svix-timestamp",
        "Twitch-Eventsub-Message-Type",
    }
)
header_values = st.one_of(
    st.text(max_size=200),
    st.from_regex(r"(t|ts|v1|h1|sha256|sha1|v0)=[0-9a-f]{0,70}([,;](t|v1|h1)=[0-9a-z]{0,70}){0,3}", fullmatch=True),
    st.from_regex(r"v1,[A-Za-z0-9+/=]{0,60}", fullmatch=True),
    st.from_regex(r"Basic [A-Za-z0-9+/=!]{0,40}", fullmatch=True),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.just(str(int(time.time()))),
)
deliveries = st.builds(
    Delivery,
    method=st.sampled_from(["POST", "GET"]),
    url=st.sampled_from(["https://hooks.example.com/hooks/x/", "http://127.0.0.1:8000/hooks/x/?bodySHA256=abc", "x"]),
    headers=st.dictionaries(st.sampled_from(HEADER_NAMES), header_values, max_size=8),
    body=st.one_of(
        st.binary(max_size=600),
        st.text(max_size=300).map(str.encode),
        st.sampled_from(
            [
                b'{"type": 1}',
                b'{"signature": {"timestamp": "1", "token": "t", "signature": "s"}}',
                b'{"webhookTimestamp": 1}',
                b"[" * 2000,
                b"\xff\xfe",
            ]
        ),
    ),
    now=st.floats(min_value=0, max_value=4e9),
    query=st.dictionaries(st.sampled_from(["bodySHA256", "hub.mode"]), st.text(max_size=80), max_size=2),
)


@settings(max_examples=400, deadline=None)
@given(delivery=deliveries)
def test_no_verifier_raises_or_accepts_what_was_not_signed(delivery: Delivery) -> None:
    for name, preset in PRESETS.items():
        verdict = preset.scheme.verify(delivery, [Secret(SECRETS.get(name, "a-signing-secret-value"))])
        assert verdict.ok is (name == "none"), (name, verdict)
        assert verdict.ok or verdict.reason
        if preset.handshake is not None:
            preset.handshake.answer(delivery, {"type": 1, "event": "endpoint.url_validation"}, "secret")


@settings(max_examples=200, deadline=None)
@given(value=st.text(max_size=600))
def test_no_secret_validation_raises(value: str) -> None:
    for preset in PRESETS.values():
        problem = preset.validate_secret(value)
        assert problem is None or isinstance(problem, str)
