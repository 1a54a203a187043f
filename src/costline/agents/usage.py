"""Checking the usage a provider reports before it is paid for.

The guardian reserves a call's worst case before it is made — the local estimate of its input
tokens, ``max_tokens`` of output — and settles what the provider then reports. A report is not
taken on trust: a server that claims a million input tokens for a short question (a bug, a
proxy adding up the wrong counters, a hostile endpoint) would otherwise settle a charge far
beyond every budget, and lock its tenant out of a period's spend.

* Output tokens above ``max_tokens`` are capped at it: the request forbade more.
* Input tokens above :func:`input_token_bound` of the local estimate are capped at that bound.

Either is an anomaly: the guardian logs it, counts it (``costline.llm.usage_anomalies``),
marks the ``chat`` span and the cost event with it, and settles the capped usage. So a settled
cost never exceeds :data:`INPUT_TOKENS_FACTOR` times the reservation, plus the price of
:data:`INPUT_TOKENS_MARGIN` input tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from costline.agents.llm.base import Usage

# How far above the local estimate a reported input count may be and still be believed.
# A byte-level tokenizer (GPT's, Llama 3's; SentencePiece with byte fallback alike) never
# counts more tokens than the text has UTF-8 bytes, and the estimate
# (costline.agents.llm.base.estimate_text_tokens) gives at least a quarter token per ASCII
# character and a whole one per other character, which is at most four bytes: four times the
# estimate is at least the text's size in bytes. No honest count of the text exceeds it.
INPUT_TOKENS_FACTOR = 4
# Tokens a server may add to the messages it was sent, beyond the estimate's three per message
# (already multiplied above): a beginning-of-text token, a chat template's role headers, the
# default system line some local servers prepend.
INPUT_TOKENS_MARGIN = 64

INPUT = "input_tokens"
OUTPUT = "output_tokens"


def input_token_bound(estimate: int) -> int:
    """The most input tokens a request estimated at ``estimate`` can honestly have used."""
    return INPUT_TOKENS_FACTOR * estimate + INPUT_TOKENS_MARGIN


@dataclass(frozen=True, slots=True)
class UsageAnomaly:
    """A reported usage beyond what the request can have used, and the usage settled instead."""

    reported: Usage
    settled: Usage
    input_bound: int
    max_tokens: int

    @property
    def capped(self) -> tuple[str, ...]:
        """Which counts were capped: ``input_tokens``, ``output_tokens`` or both."""
        fields: list[str] = []
        if self.reported.input_tokens > self.input_bound:
            fields.append(INPUT)
        if self.reported.output_tokens > self.max_tokens:
            fields.append(OUTPUT)
        return tuple(fields)

    def describe(self) -> str:
        """One line for the log: what was reported, what the bounds are, what is settled."""
        return (
            f"reported {self.reported.input_tokens} input / {self.reported.output_tokens} "
            f"output tokens; bounds {self.input_bound} input (x{INPUT_TOKENS_FACTOR} the "
            f"estimate + {INPUT_TOKENS_MARGIN}) / {self.max_tokens} output (max_tokens); "
            f"settled {self.settled.input_tokens} / {self.settled.output_tokens}"
        )


def check_usage(usage: Usage, input_estimate: int, max_tokens: int) -> UsageAnomaly | None:
    """``None`` if ``usage`` is believable for a request estimated at ``input_estimate`` input
    tokens and limited to ``max_tokens`` output tokens; otherwise the anomaly, whose
    ``settled`` usage is the reported one capped at both bounds."""
    bound = INPUT_TOKENS_FACTOR * input_estimate + INPUT_TOKENS_MARGIN
    if usage.input_tokens <= bound and usage.output_tokens <= max_tokens:
        return None
    settled = Usage(
        min(usage.input_tokens, bound), min(usage.output_tokens, max_tokens), usage.estimated
    )
    return UsageAnomaly(usage, settled, bound, max_tokens)
