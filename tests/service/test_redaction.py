"""Customer identifiers and account numbers never reach a log record or an exported span."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from costline.core.telemetry import tracer_provider
from costline.service.redaction import (
    ACCOUNT_MASK,
    CUSTOMER_MASK,
    RedactingSpanProcessor,
    install_log_redaction,
    redact,
    redact_values,
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
