"""LLM providers behind one protocol: OpenAI-compatible HTTP, and a deterministic offline one."""

from costline.agents.llm.base import (
    ChatMessage,
    Completion,
    ConnectionFailed,
    InputRejected,
    LLMError,
    LLMProvider,
    MalformedResponse,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    RequestRejected,
    ResponseTooLarge,
    Usage,
    estimate_text_tokens,
    estimate_tokens,
)
from costline.agents.llm.offline import OfflineProvider
from costline.agents.llm.openai import DEFAULT_MAX_RESPONSE_BYTES, OpenAIChat, parse_retry_after

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "ChatMessage",
    "Completion",
    "ConnectionFailed",
    "InputRejected",
    "LLMError",
    "LLMProvider",
    "MalformedResponse",
    "OfflineProvider",
    "OpenAIChat",
    "ProviderTimeout",
    "ProviderUnavailable",
    "RateLimited",
    "RequestRejected",
    "ResponseTooLarge",
    "Usage",
    "estimate_text_tokens",
    "estimate_tokens",
    "parse_retry_after",
]
