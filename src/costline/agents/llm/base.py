"""The LLM provider protocol, the values it exchanges, and its errors.

A provider turns chat messages into a :class:`Completion` whose :class:`Usage` is what the
provider reported (the cost guardian prices it). Errors say whether retrying can help:
rate limits, server errors, timeouts and dropped connections can; a rejected request or a
malformed answer cannot. They also say whose fault they are: a request refused for its own
content (:class:`InputRejected`) says nothing about the provider's health, so circuit breakers
do not count it. And they say whether the provider may bill the request (``billable``): one it
received and did not refuse — unanswered (a read timeout, a connection dropped after the
request went out), or answered with something unusable — is paid for all the same, so the cost
guardian charges its worst case; one that never left (connection refused, a DNS failure) or
that the server refused with an error status costs nothing.

Whether a request went out is known only inside the provider, and a caller that gives up
waiting (its own deadline, a cancelled request) gets no error to read it from: the caller
opens an :class:`Exchange` around the call (:func:`exchange`) and the provider marks on it when
the request has been sent (:func:`current_exchange`).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from costline.core.errors import CostlineError

Role = Literal["system", "user", "assistant", "tool"]


class ChatMessage(BaseModel):
    """One chat message."""

    model_config = ConfigDict(frozen=True)

    role: Role
    content: str


@dataclass(slots=True)
class Usage:
    """Tokens a call consumed. ``estimated`` is true when the provider did not report them.

    A plain dataclass, like the other values made on every call: validation of numbers the
    runtime computed itself would only add latency. Not frozen, for the same reason (a frozen
    dataclass sets each field through ``object.__setattr__``, three times the cost); treat it
    as a value all the same.
    """

    input_tokens: int
    output_tokens: int
    estimated: bool = False

    def __post_init__(self) -> None:
        if self.input_tokens < 0 or self.output_tokens < 0:
            raise ValueError(f"token counts must be >= 0, got {self}")

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


@dataclass(slots=True)
class Completion:
    """A provider's answer: the text, the model that produced it, and the usage it reported.

    A value, made on every call (not frozen, like :class:`Usage`).
    """

    text: str
    model: str
    usage: Usage
    provider: str
    finish_reason: str | None = None


@runtime_checkable
class LLMProvider(Protocol):
    """A chat-completions backend.

    ``name`` is the provider as OpenTelemetry's ``gen_ai.provider.name`` spells it
    (``openai``, ``ollama``...); ``endpoint`` identifies the server (a base URL) so circuit
    breakers can be kept per endpoint and model.
    """

    name: str
    endpoint: str

    async def complete(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float | None = None,
    ) -> Completion:
        """Answer ``messages`` with ``model``, producing at most ``max_tokens`` tokens."""
        ...

    def count_tokens(self, messages: Sequence[ChatMessage], model: str) -> int:
        """Input tokens ``messages`` will use (exact if a tokenizer is at hand, else an upper
        estimate): the guardian reserves budget from it before the call."""
        ...


class Exchange:
    """What a caller learns of one request besides its outcome: whether it was sent.

    ``sent`` is ``None`` until a provider that can tell says so: ``False`` once it starts
    talking to the server, ``True`` once the whole request is out. A value made per attempt.
    """

    __slots__ = ("sent",)

    def __init__(self) -> None:
        self.sent: bool | None = None


_exchange: ContextVar[Exchange | None] = ContextVar("costline_llm_exchange", default=None)


def current_exchange() -> Exchange | None:
    """The exchange the current call's caller opened, if any (providers mark it)."""
    return _exchange.get()


def open_exchange(exchange: Exchange) -> Token[Exchange | None]:
    """Make ``exchange`` the current one; pass the returned token to :func:`close_exchange`."""
    return _exchange.set(exchange)


def close_exchange(token: Token[Exchange | None]) -> None:
    """Restore the exchange current before :func:`open_exchange`."""
    _exchange.reset(token)


class LLMError(CostlineError):
    """A failed LLM call. ``retryable`` says whether trying again may succeed; ``billable``
    whether the provider may charge for it (it received the request and did not refuse it)."""

    retryable: ClassVar[bool] = False
    # The caller's own input caused it (not the provider, not the agent): breakers ignore it.
    caller_error: ClassVar[bool] = False
    # What ``billable`` is when the raiser does not say: an error status is not billed.
    billable_by_default: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
        billable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s
        self.billable = self.billable_by_default if billable is None else billable

    @property
    def error_type(self) -> str:
        """A low-cardinality identifier for ``error.type``: the HTTP status if there was one."""
        return str(self.status) if self.status is not None else type(self).__name__


class RateLimited(LLMError):
    """HTTP 429: retry, after ``retry_after_s`` if the server said so."""

    retryable = True


class ProviderUnavailable(LLMError):
    """HTTP 5xx (or 408): a server-side failure worth retrying."""

    retryable = True


class ProviderTimeout(LLMError):
    """No answer in time. Billable unless the request never went out (a connect timeout)."""

    retryable = True
    billable_by_default = True

    @property
    def error_type(self) -> str:
        """``timeout``, as OpenTelemetry's well-known value spells it."""
        return "timeout"


class ConnectionFailed(LLMError):
    """The connection could not be made or was dropped mid-call. Billable when it was dropped
    after the request went out (the raiser says so)."""

    retryable = True


class RequestRejected(LLMError):
    """HTTP 4xx other than 408/429: the request itself is wrong; retrying will not help."""


class InputRejected(RequestRejected):
    """The provider refused the request for its content: malformed (HTTP 400), too large (413),
    unprocessable (422), or against its content policy.

    The caller's input is at fault, not the provider nor the agent that relayed it: one
    tenant's bad questions must not open a breaker that the other tenants' calls go through.
    """

    caller_error = True


class MalformedResponse(LLMError):
    """The server answered 2xx with something that is not a chat completion: it did the work,
    so the call is billable."""

    billable_by_default = True


class ResponseTooLarge(MalformedResponse):
    """The server's answer exceeded the client's size limit; it was not read to the end."""

    @property
    def error_type(self) -> str:
        """``response_too_large``."""
        return "response_too_large"


# Token estimate used where no tokenizer is available (the offline provider, and reservations
# for HTTP providers, which then settle on the usage the server reports). OpenAI's published
# rules of thumb for English are ~4 characters per token and ~3/4 of a word per token; the
# estimate takes the larger of the two, so punctuation- or digit-heavy text (where the
# character rule undercounts) and long-word text (where the word rule does) both stay close.
# Chat formatting adds a few tokens per message and for priming the reply, as OpenAI's cookbook
# documents for its chat models. Both rules are cheap (str methods in C): the estimate runs on
# every guarded call.
#
# A character outside ASCII counts as one token of its own: tokenizers trained mostly on English
# spend about one token per CJK character, and up to one per UTF-8 byte on rarer ones (emoji,
# most scripts' combining marks); four ASCII characters per token would undercount such text
# fourfold or more. With that rule, four times the estimate is at least the text's UTF-8 size,
# which bounds what any byte-level tokenizer can count (see costline.agents.usage).
CHARS_PER_TOKEN = 4
# 4/3 tokens per word, kept as a ratio of integers so the estimate is exact integer arithmetic.
WORD_TOKENS, PER_WORDS = 4, 3
TOKENS_PER_WORD = WORD_TOKENS / PER_WORDS
TOKENS_PER_MESSAGE = 3
TOKENS_REPLY_PRIMING = 3


def estimate_text_tokens(text: str) -> int:
    """Estimated tokens of ``text`` (documented above; exact counts come from the provider)."""
    if not text:
        return 0
    chars = len(text)
    if text.isascii():  # a flag of the string object: no scan
        by_chars = -(-chars // CHARS_PER_TOKEN)
    else:
        ascii_chars = len(text.encode("ascii", "ignore"))
        by_chars = -(-ascii_chars // CHARS_PER_TOKEN) + chars - ascii_chars
    by_words = -(-len(text.split()) * WORD_TOKENS // PER_WORDS)  # ceil(words * TOKENS_PER_WORD)
    return by_words if by_words > by_chars else by_chars


def estimate_tokens(messages: Sequence[ChatMessage]) -> int:
    """Estimated input tokens of a chat, formatting overhead included."""
    tokens = TOKENS_REPLY_PRIMING
    for message in messages:
        tokens += TOKENS_PER_MESSAGE + estimate_text_tokens(message.content)
    return tokens
