"""A deterministic offline provider: templated answers, estimated token counts, no network.

It lets the whole runtime (budgets, tiers, ledger, spans) run and be tested without an LLM.
The same messages and model always give the same answer and the same usage; usage uses the
documented estimate of :func:`~costline.agents.llm.base.estimate_tokens`, and the answer is cut
to ``max_tokens`` the way a real model stops at its limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from costline.agents.llm.base import (
    TOKENS_PER_WORD,
    ChatMessage,
    Completion,
    Usage,
    estimate_text_tokens,
    estimate_tokens,
)

DEFAULT_TEMPLATE = "[{model}] {prompt}"
# Longest prompt excerpt a default answer quotes, in characters.
_EXCERPT = 200


class OfflineProvider:
    """Answers every chat from a template, optionally after a fixed latency.

    ``template`` may use ``{model}`` and ``{prompt}`` (the last user message, shortened); or
    pass ``answer`` to compute the text from the model and messages.
    """

    def __init__(
        self,
        *,
        name: str = "offline",
        template: str = DEFAULT_TEMPLATE,
        answer: Callable[[str, Sequence[ChatMessage]], str] | None = None,
        latency_s: float = 0.0,
    ) -> None:
        """An offline provider reported as ``name`` in telemetry."""
        self.name = name
        self.endpoint = f"offline://{name}"
        self._template = template
        # The default template is written as an f-string below: str.format parses the
        # template again on every call, which costs more than the rest of the answer.
        self._default_template = template == DEFAULT_TEMPLATE
        self._answer = answer
        self._latency_s = latency_s
        self.calls = 0
        self._counted: tuple[tuple[ChatMessage, ...], int] | None = None

    def count_tokens(self, messages: Sequence[ChatMessage], model: str) -> int:
        """Input tokens, by the same estimate the usage reports (so reservations are exact)."""
        chat = tuple(messages)
        tokens = estimate_tokens(chat)
        self._counted = (chat, tokens)
        return tokens

    def _input_tokens(self, messages: Sequence[ChatMessage]) -> int:
        # A caller counts a chat to reserve its budget, then asks for its completion, whose
        # usage counts the same chat again: reuse the last count if it is for the same chat
        # (messages are immutable; comparing the tuples compares identical ones at once).
        chat = tuple(messages)
        counted = self._counted
        if counted is not None and counted[0] == chat:
            return counted[1]
        return estimate_tokens(chat)

    async def complete(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float | None = None,
    ) -> Completion:
        """The templated answer, truncated to ``max_tokens``."""
        self.calls += 1
        if self._latency_s > 0:
            await asyncio.sleep(self._latency_s)
        if self._answer is not None:
            text = self._answer(model, messages)
        else:
            prompt = ""
            for message in reversed(messages):
                if message.role == "user":
                    prompt = message.content
                    break
            if self._default_template:
                text = f"[{model}] {prompt[:_EXCERPT]}"
            else:
                text = self._template.format(model=model, prompt=prompt[:_EXCERPT])
        output_tokens = estimate_text_tokens(text)
        finish = "stop"
        if output_tokens > max_tokens:
            # Cut the way a model stops at its limit: the answer keeps whole words up to it.
            words = text.split()[: int(max_tokens / TOKENS_PER_WORD)]
            while words and estimate_text_tokens(" ".join(words)) > max_tokens:
                words.pop()
            text = " ".join(words)
            output_tokens = estimate_text_tokens(text)
            finish = "length"
        # Positional: keyword arguments cost measurably more on a path taken by every call.
        usage = Usage(self._input_tokens(messages), output_tokens)
        return Completion(text, model, usage, self.name, finish)
