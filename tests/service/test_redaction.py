"""Customer data never reaches a log record or an exported span."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode
from uvicorn.logging import AccessFormatter

from costline.core.pii import IBAN_LENGTHS, NameIndex
from costline.core.telemetry import tracer_provider
from costline.service.redaction import (
    ACCOUNT_MASK,
    CARD_MASK,
    CUSTOMER_MASK,
    EMAIL_MASK,
    NAME_MASK,
    PHONE_MASK,
    QUERY_MASK,
    RedactingSpanProcessor,
    install_log_redaction,
    redact,
    redact_target,
    redact_values,
    set_known_names,
    set_log_tenant,
    uninstall_log_redaction,
)

IBAN = "GB51ACME00000350012436"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"transfer from {IBAN} refused", f"transfer from {ACCOUNT_MASK} refused"),
        ("customer 1000007 has no consent", f"customer {CUSTOMER_MASK} has no consent"),
        ("customer_id=1000007", f"customer_id={CUSTOMER_MASK}"),
        ('{"customer_id": 1000007}', f'{{"customer_id": {CUSTOMER_MASK}}}'),
        ("Customer #1000014 flagged", f"Customer #{CUSTOMER_MASK} flagged"),
        ("latency 1000007 ns, 12 customers", "latency 1000007 ns, 12 customers"),
    ],
)
def test_redact_masks_account_numbers_and_customer_ids_only(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_the_current_requests_identifiers_are_masked_wherever_they_appear() -> None:
    with redact_values("1000007"):
        assert redact("lookup 1000007 took 3 ms") == f"lookup {CUSTOMER_MASK} took 3 ms"
    assert redact("lookup 1000007 took 3 ms") == "lookup 1000007 took 3 ms"


@given(
    country=st.sampled_from(["GB", "DE", "CH", "FR"]),
    digits=st.text("0123456789", min_size=2, max_size=2),
    bban=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=11, max_size=30),
    before=st.text(" abcxyz:=", max_size=10),
)
def test_no_iban_shaped_account_number_survives(
    country: str, digits: str, bban: str, before: str
) -> None:
    account = f"{country}{digits}{bban}"
    assert account not in redact(f"{before} {account} done")


def test_log_records_are_redacted_when_made_whatever_their_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    install_log_redaction()
    try:
        with caplog.at_level(logging.INFO):
            logging.getLogger("somebody.else").info("paid from %s for customer %d", IBAN, 1000007)
            try:
                raise ValueError(f"bad account {IBAN}")
            except ValueError:
                logging.getLogger("costline.x").exception("failed for customer_id=%s", "1000021")
    finally:
        uninstall_log_redaction()
    logging.getLogger("somebody.else").warning("after: customer 1000007")
    assert caplog.records[-1].getMessage() == "after: customer 1000007"
    text = "\n".join(caplog.text.splitlines()[:-1])
    assert IBAN not in text and "1000007" not in text and "1000021" not in text
    assert f"paid from {ACCOUNT_MASK} for customer {CUSTOMER_MASK}" in text
    assert f"ValueError: bad account {ACCOUNT_MASK}" in text


def test_exported_spans_have_names_attributes_events_and_status_redacted() -> None:
    exporter = InMemorySpanExporter()
    provider = tracer_provider(service_name="t")
    provider.add_span_processor(RedactingSpanProcessor(SimpleSpanProcessor(exporter)))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("lookup customer 1000007") as span:
        span.set_attribute("costline.account", IBAN)
        span.set_attribute("costline.accounts", [IBAN, "FR7630006000011234567890189"])
        span.set_attribute("costline.tier", "mid")
        span.add_event("refused", {"reason": "customer 1000007 not owned"})
        span.set_status(Status(StatusCode.ERROR, f"no consent on {IBAN}"))
    (exported,) = exporter.get_finished_spans()
    dumped = exported.to_json()
    assert IBAN not in dumped and "1000007" not in dumped and "FR76300060" not in dumped
    assert exported.name == f"lookup customer {CUSTOMER_MASK}"
    assert exported.attributes == {
        "costline.account": ACCOUNT_MASK,
        "costline.accounts": (ACCOUNT_MASK, ACCOUNT_MASK),
        "costline.tier": "mid",
    }
    assert exported.status.description == f"no consent on {ACCOUNT_MASK}"


# -- personal data in any form --------------------------------------------------------------

ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
# Text that holds no personal data: no digits, no @ (and no known name).
PLAIN = st.text(
    st.characters(codec="utf-8", exclude_categories=("Nd", "Cs"), exclude_characters="@"),
    max_size=60,
)
SEPARATORS = st.sampled_from(["", "", "", " ", "  ", "-", "\t"])


def _with_check_digits(country: str, bban: str) -> str:
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


@st.composite
def ibans(draw: st.DrawFn) -> str:
    """A valid IBAN of a registered country."""
    country = draw(st.sampled_from(sorted(IBAN_LENGTHS)))
    bban = draw(
        st.text(ALNUM, min_size=IBAN_LENGTHS[country] - 4, max_size=IBAN_LENGTHS[country] - 4)
    )
    return _with_check_digits(country, bban)


def _luhn_digit(payload: str) -> str:
    total = 0
    for i, c in enumerate(reversed(payload)):
        n = int(c)
        if i % 2 == 0:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return str(-total % 10)


@st.composite
def cards(draw: st.DrawFn) -> str:
    """A Luhn-valid card number of a card network's prefix."""
    prefix = draw(st.sampled_from(["4", "51", "55", "2221", "34", "37", "6011", "65", "35", "62"]))
    length = draw(st.integers(13, 19))
    payload = prefix + draw(st.text("0123456789", min_size=length - len(prefix) - 1,
                                    max_size=length - len(prefix) - 1))  # fmt: skip
    return payload + _luhn_digit(payload)


def _render(draw: st.DrawFn, value: str, separators: st.SearchStrategy[str]) -> str:
    """``value`` in random case with random separators between its characters."""
    chars = [c.lower() if draw(st.booleans()) else c for c in value]
    return chars[0] + "".join(draw(separators) + c for c in chars[1:])


@given(data=st.data(), iban=ibans(), before=PLAIN, after=PLAIN)
def test_a_valid_iban_in_any_case_and_spacing_is_always_redacted(
    data: st.DataObject, iban: str, before: str, after: str
) -> None:
    written = _render(data.draw, iban, SEPARATORS)
    assert redact(f"{before} {written} {after}") == f"{before} {ACCOUNT_MASK} {after}"


@given(data=st.data(), card=cards(), before=PLAIN, after=PLAIN)
def test_a_valid_card_number_with_any_spacing_is_always_redacted(
    data: st.DataObject, card: str, before: str, after: str
) -> None:
    written = _render(data.draw, card, st.sampled_from(["", "", " ", "-"]))
    assert redact(f"{before} {written} {after}") == f"{before} {CARD_MASK} {after}"


@given(PLAIN)
def test_text_without_personal_data_is_unchanged(text: str) -> None:
    assert redact(text) == text


@given(data=st.data(), iban=ibans(), card=cards())
def test_numbers_failing_their_check_are_left_alone(
    data: st.DataObject, iban: str, card: str
) -> None:
    # Another check digit pair (never one 97 apart, which would pass again) ...
    check = int(iban[2:4])
    wrong = iban[:2] + f"{check + 1 if check < 98 else check - 1:02d}" + iban[4:]
    # ... in lower case somewhere: an upper-case compact token is masked whatever its check.
    i = data.draw(st.integers(0, len(wrong) - 1).filter(lambda i: wrong[i].isalpha()))
    written = wrong[:i] + wrong[i].lower() + wrong[i + 1 :]
    bad_card = card[:-1] + str((int(card[-1]) + 1) % 10)
    text = f"ref {written} and {bad_card} end"
    assert redact(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pay de89 3704 0044 0532 0130 00 now", f"pay {ACCOUNT_MASK} now"),
        ("card 4111-1111-1111-1111 used", f"card {CARD_MASK} used"),
        ("from Anna.Keller@example.com", f"from {EMAIL_MASK}"),
        ("call +44 20 7946 0958 or 020 7946 0958", f"call {PHONE_MASK} or {PHONE_MASK}"),
    ],
)
def test_every_kind_of_personal_data_is_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.fixture
def known_names() -> Iterator[None]:
    set_known_names(NameIndex([("Anna Keller", "1000007")]))
    yield
    set_known_names(None)


def test_customers_names_are_masked_once_known(known_names: None) -> None:
    assert redact("asked by anna  KELLER today") == f"asked by {NAME_MASK} today"
    assert redact("asked by Anna") == "asked by Anna"


def test_a_requests_identifier_is_masked_as_a_whole_token_only() -> None:
    with redact_values("acme"):
        assert (
            redact("tenant acme-retail-uk for acme")
            == f"tenant {CUSTOMER_MASK}-retail-uk for {CUSTOMER_MASK}"
        )
    with redact_values("7"):
        assert redact("took 17 ms for 7") == f"took 17 ms for {CUSTOMER_MASK}"


def test_a_request_targets_query_values_are_masked() -> None:
    assert redact_target("/v1/assist?api_key=demo-key-acme&token=abc&x") == (
        f"/v1/assist?api_key={QUERY_MASK}&token={QUERY_MASK}&{QUERY_MASK}"
    )
    assert redact_target("/healthz") == "/healthz"


# -- log records ----------------------------------------------------------------------------


@pytest.fixture
def redacting() -> Iterator[None]:
    install_log_redaction()
    yield
    uninstall_log_redaction()


def test_control_characters_cannot_forge_a_log_line(
    redacting: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="costline.t"):
        logging.getLogger("costline.t").info("asked by %s", "x\nERROR forged\x1b[31m\x00")
    (record,) = caplog.records
    assert record.getMessage() == "asked by x\\nERROR forged\\x1b[31m\\x00"


def test_access_log_lines_format_and_lose_their_query_values(
    redacting: None, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s'))
    access = logging.getLogger("uvicorn.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        access.info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:5000",
            "POST",
            "/v1/assist?api_key=demo-key-acme-retail-uk",
            "1.1",
            401,
        )
    finally:
        access.removeHandler(handler)
    assert stream.getvalue() == (
        f'127.0.0.1:5000 - "POST /v1/assist?api_key={QUERY_MASK} HTTP/1.1" 401 Unauthorized\n'
    )
    assert "Logging error" not in capsys.readouterr().err


def test_records_carry_the_authenticated_tenant(
    redacting: None, caplog: pytest.LogCaptureFixture
) -> None:
    token = set_log_tenant("acme-retail-uk")
    try:
        # A customer id equal to the tenant's name masks the message, not the tenant.
        with redact_values("acme-retail-uk"), caplog.at_level(logging.INFO, logger="costline.t"):
            logging.getLogger("costline.t").info("refused acme-retail-uk")
    finally:
        set_log_tenant(None)
        del token
    (record,) = caplog.records
    assert record.getMessage() == f"refused {CUSTOMER_MASK}"
    assert record.tenant == "acme-retail-uk"
