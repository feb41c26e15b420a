"""Fuzzing ``POST /webhooks/stripe``: random headers and bodies, signed and unsigned. The edge
never answers 500, always answers JSON, and puts nothing on the real Redis queue unless the
body carries a valid signature."""

from __future__ import annotations

import json
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import event_body, sign

URL = "/webhooks/stripe"
HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=80)
JSON_LEAF = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)
ENVELOPE_FIELDS = ("id", "object", "type", "created", "api_version", "livemode", "data")


@st.composite
def event_variants(draw: st.DrawFn) -> bytes:
    """A Stripe event envelope with some fields replaced by arbitrary JSON, or dropped."""
    event: dict[str, Any] = json.loads(event_body(event_id=f"evt_fuzz_{draw(st.integers(0, 9))}"))
    for name in draw(st.lists(st.sampled_from(ENVELOPE_FIELDS), max_size=3, unique=True)):
        if draw(st.booleans()):
            event.pop(name)
        else:
            event[name] = draw(JSON_VALUE)
    return json.dumps(event).encode()


BODIES = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(str.encode),
    JSON_VALUE.map(lambda value: json.dumps(value).encode()),
    event_variants(),
    st.integers(1, 20_000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.just(event_body().encode()),
)


@st.composite
def unsigned_headers(draw: st.DrawFn, body: bytes) -> str | None:
    """A Stripe-Signature that never carries the body's real signature."""
    now = int(time.time())
    parts = st.one_of(
        HEADER_TEXT,
        st.builds(lambda t: f"t={t}", st.one_of(st.integers(), HEADER_TEXT, st.just(now))),
        st.builds(lambda t: f"t ={t}", st.one_of(st.integers(), st.just(now))),
        st.builds(
            lambda v: f"v1={v}",
            st.one_of(HEADER_TEXT, st.binary(min_size=32, max_size=32).map(bytes.hex)),
        ),
        st.just(sign(body, secret="whsec_not_ours").split(",")[1]),
        st.just(sign(body, timestamp=now - 30 * 86400).split(",")[1]),  # signed at another time
    )
    if draw(st.booleans()):
        return None
    return ",".join(draw(st.lists(parts, max_size=5)))


def _post(client: Any, body: bytes, signature: str | None, extra: dict[str, str]) -> Any:
    headers = dict(extra)
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return client.post(URL, data=body, headers=headers)


def _assert_json_and_no_500(response: Any) -> None:
    assert response.status_code < 500, response.get_data()[:300]
    assert response.mimetype == "application/json"
    assert isinstance(response.get_json(), dict)


EXTRA_HEADERS = st.dictionaries(
    st.sampled_from(["Content-Type", "X-Request-Id", "Accept", "User-Agent", "Content-Encoding"]),
    HEADER_TEXT,
    max_size=3,
)
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(data=st.data(), body=BODIES, extra=EXTRA_HEADERS)
def test_unsigned_deliveries_are_never_enqueued_and_never_500(client, queued, data, body, extra):
    """Whatever the body and the headers, without the real signature: a 4xx, nothing queued."""
    before = queued()
    response = _post(client, body, data.draw(unsigned_headers(body)), extra)
    _assert_json_and_no_500(response)
    assert response.status_code != 200
    assert queued() == before


@FUZZ
@given(body=BODIES, extra=EXTRA_HEADERS)
def test_signed_deliveries_are_accepted_or_refused_never_500(client, queued, body, extra):
    """A correctly signed body of anything is 200 (and queued once) or a JSON 4xx."""
    before = queued()
    response = _post(client, body, sign(body), extra)
    _assert_json_and_no_500(response)
    assert queued() == before + (1 if response.status_code == 200 else 0)
