"""The request contract: malformed requests are refused naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from costline.assistant import AssistRequest, RequestType
from costline.assistant.models import MAX_QUESTION_CHARS

GOOD: dict[str, Any] = {
    "tenant": "acme-retail-uk",
    "customer_id": "1000007",
    "request_types": ["account_summary", "fraud_check"],
    "business_value_usd": 120.0,
}


def test_a_good_request_parses() -> None:
    request = AssistRequest.model_validate(GOOD)
    assert request.request_types == [RequestType.ACCOUNT_SUMMARY, RequestType.FRAUD_CHECK]
    assert request.question == "" and request.transaction_id is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"request_types": []}, "request_types"),
        ({"request_types": ["weather"]}, "request_types.0"),
        ({"business_value_usd": -1}, "business_value_usd"),
        ({"business_value_usd": float("inf")}, "business_value_usd"),
        ({"question": "x" * (MAX_QUESTION_CHARS + 1)}, "question"),
        ({"customer_id": "1; DROP TABLE customers"}, "customer_id"),
        ({"transaction_id": ""}, "transaction_id"),
        ({"payment_amount": 0}, "payment_amount"),
        ({"admin": True}, "admin"),
        ({"tenant": ""}, "tenant"),
    ],
)
def test_malformed_requests_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        AssistRequest.model_validate({**GOOD, **change})
    assert [".".join(str(p) for p in e["loc"]) for e in error.value.errors()] == [field]


def test_missing_fields_are_named() -> None:
    with pytest.raises(ValidationError) as error:
        AssistRequest.model_validate({"tenant": "t"})
    assert {e["loc"][0] for e in error.value.errors()} == {"customer_id", "request_types"}
