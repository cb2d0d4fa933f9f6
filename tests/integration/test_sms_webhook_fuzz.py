"""The SMS webhooks fuzzed on real PostgreSQL and Redis (issue 8, items 1-3): ≥ 2,000 validly signed
requests to ``/twilio/sms`` and ``/twilio/sms/status`` with arbitrary SIDs, numbers, bodies (NUL and
other control characters, emoji, 10,000 characters), extra fields and ``?mid=`` values.

What must hold: never a 500; a SID that cannot be stored as it is gets 400 and nothing is stored; every
accepted text is stored exactly once (a SID posted again is a duplicate), whatever else it carries; and
every stored text is then processed by the real pipeline without an error (no row left for retry).

Bounded and seeded (hypothesis ``derandomize``): the same requests every run, in well under a minute.
"""

from __future__ import annotations

import urllib.parse
from collections import Counter
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.channels.cleaning import PHONE_MAX, SID_MAX, clean_text
from app.messaging.inbound import process_inbound
from app.models import Message
from app.runtime import Runtime
from tests.conftest import FROM_NUMBER
from tests.integration.sms_helpers import install_clock, queue_one, run_worker, signed_post, start_checkin
from tests.support.fake_twilio import FakeTwilio

#: Hypothesis examples; each posts a batch of 1-8 requests (about 4.5 on average).
EXAMPLES = 800
MIN_REQUESTS = 2_000
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)

# Text as a client can form-encode it (UTF-8: no lone surrogates), controls and NUL included.
any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
long_text = st.text(st.characters(exclude_categories=("Cs",)), min_size=1500, max_size=10_000)
#: Stands for a new SID, made unique when the request is sent (hypothesis would repeat its simplest one).
FRESH = "<fresh>"
good_sid = st.one_of(st.just(FRESH), st.from_regex(r"\A(SM|MM)[0-9a-f]{32}\Z"))
hostile_sid = st.one_of(
    any_text,
    st.text(min_size=SID_MAX - 2, max_size=SID_MAX + 3),
    st.builds(lambda s: "SM" + s, st.text(st.sampled_from("\x00\x01\n\t \x7f\x85ab"), min_size=1, max_size=10)),
)
mid_value = st.one_of(
    st.integers(min_value=-5, max_value=2**40).map(str),
    st.sampled_from(["²", "١٢", "1e3", "0x1f", "", " 1", "1\n", "\x00", "9" * 40]),
    any_text,
)
extra_fields = st.dictionaries(
    st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=12).filter(
        lambda key: key not in {"MessageSid", "SmsSid", "From", "To", "Body", "MessageStatus", "SmsStatus"}
    ),
    any_text,
    max_size=3,
)


def test_signed_webhooks_with_arbitrary_values_never_500_and_store_each_text_once(
    rt: Runtime,
    client: FlaskClient,
    fake_twilio: FakeTwilio,
    make_patient: Callable[..., Any],
    run_jobs: Callable[[], int],
) -> None:
    install_clock(rt)
    patients = [make_patient(), make_patient(language="es"), make_patient(opted_out=True)]
    start_checkin(rt, patients[0], rt.now())
    sent_ids = [queue_one(rt, patients[1], "hello")]
    run_jobs()
    with rt.sessions() as session:
        sent_sids = [s for s in session.scalars(select(Message.provider_sid).where(Message.id.in_(sent_ids))) if s]
    phones = [p.phone for p in patients] + ["+13125550199"]
    seen_sids: list[str] = []

    sid = st.one_of(good_sid, good_sid, good_sid, hostile_sid, st.sampled_from(sent_sids))
    fresh = iter(range(1, 10**9))
    sender = st.one_of(st.sampled_from(phones), any_text, st.just(""))
    body = st.one_of(
        any_text,
        long_text,
        st.sampled_from(["182", "STOP", "stop!", "HELP", "START", "I have chest pain", "NO", "sí", "\x00"]),
    )
    inbound = st.fixed_dictionaries(
        {"MessageSid": sid, "From": sender, "To": st.one_of(st.just(FROM_NUMBER), any_text), "Body": body},
        optional={"SmsSid": sid, "NumMedia": any_text},
    )
    status = st.fixed_dictionaries(
        {"MessageSid": sid, "MessageStatus": st.one_of(st.sampled_from(["sent", "delivered", "failed"]), any_text)},
        optional={"ErrorCode": st.one_of(st.just("30003"), any_text), "SmsSid": sid},
    )
    # Last element: about 1 in 20 requests re-sends an earlier accepted SID (Twilio delivering a text twice).
    again = st.sampled_from([None] * 19 + [0]).flatmap(
        lambda x: st.just(None) if x is None else st.integers(min_value=0, max_value=10**6)
    )
    request = st.one_of(
        st.tuples(st.just("/twilio/sms"), inbound, extra_fields, st.just(None), again),
        st.tuples(st.just("/twilio/sms/status"), status, extra_fields, st.one_of(st.none(), mid_value), again),
    )

    outcomes: Counter[tuple[str, int]] = Counter()
    accepted: set[str] = set()
    refused: set[str] = set()

    @FUZZ
    @given(st.lists(request, min_size=1, max_size=8))
    def post_batch(batch: list[tuple[str, dict[str, str], dict[str, str], str | None, int | None]]) -> None:
        for path, fields, extra, mid, repeat in batch:
            fields = {k: f"SM{next(fresh):032x}" if v == FRESH else v for k, v in fields.items()}
            if seen_sids and repeat is not None:
                fields = {**fields, "MessageSid": seen_sids[repeat % len(seen_sids)]}
            params = {**extra, **fields}
            query = "" if mid is None else "mid=" + urllib.parse.quote(mid, safe="")
            response = signed_post(client, path, params, token=fake_twilio.auth_token, query=query)
            outcomes[(path, response.status_code)] += 1
            assert response.status_code < 500, (path, params, query)
            message_sid = params.get("MessageSid") or params.get("SmsSid") or ""
            if path != "/twilio/sms":
                assert response.status_code in {204, 400}
                continue
            assert response.status_code in {200, 400}
            if response.status_code == 400:
                refused.add(message_sid)
            elif message_sid and clean_text(params.get("From", ""), PHONE_MAX).strip():
                # (a sender of control characters only is no sender: answered 200, nothing to store)
                accepted.add(message_sid)
                seen_sids.append(message_sid)

    post_batch()
    total = sum(outcomes.values())
    print(f"webhook fuzz: {total} requests, outcomes {dict(sorted(outcomes.items()))}")
    assert total >= MIN_REQUESTS
    assert not any(code >= 500 for (_path, code) in outcomes)
    # Every kind of answer was exercised, not only refusals.
    for path in ("/twilio/sms", "/twilio/sms/status"):
        for code in (200 if path == "/twilio/sms" else 204, 400):
            assert outcomes[(path, code)] >= 200, (path, code)

    with rt.sessions() as session:
        rows = session.execute(
            select(Message.id, Message.provider_sid, Message.body).where(Message.direction == "inbound")
        ).all()
    stored = Counter(row.provider_sid for row in rows)
    # Every accepted text, and nothing refused (an outbound message's SID is a duplicate, not a new text).
    assert set(stored) == accepted - set(sent_sids)
    assert set(stored.values()) == {1}  # exactly once each
    assert not (refused & set(stored))
    assert all("\x00" not in row.body and len(row.body) <= 1600 for row in rows)

    # Every stored text through the real pipeline, in arrival order: none is left failing.
    results = Counter(process_inbound(rt, row.id) for row in sorted(rows, key=lambda r: r.id))
    print(f"stored: {len(rows)} texts; processing: {dict(results)}")
    assert set(results) <= {"processed", "done"}
    with rt.sessions() as session:
        left = session.scalars(
            select(Message.status).where(Message.direction == "inbound", Message.status != "received")
        ).all()
    assert left == []
    run_worker(rt)  # and the replies they queued go out without an error
