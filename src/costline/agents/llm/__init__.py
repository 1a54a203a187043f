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
    Usage,
    estimate_text_tokens,
    estimate_tokens,
)
from costline.agents.llm.offline import OfflineProvider
from costline.agents.llm.openai import OpenAIChat, parse_retry_after

__all__ = [
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
    "Usage",
    "estimate_text_tokens",
    "estimate_tokens",
    "parse_retry_after",
]
