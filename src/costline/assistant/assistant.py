"""The assistant: loads the bank data once, then answers requests through the supervisor."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from costline.agents.llm.base import LLMProvider
from costline.assistant.models import AssistRequest, AssistResponse
from costline.assistant.settings import AssistSettings
from costline.core.budgets import BudgetStore


class FinancialAssistant:
    """Answers :class:`AssistRequest` for the customers of the demo bank."""

    def __init__(self, settings: AssistSettings) -> None:
        """Use :meth:`from_workspace`."""
        self.settings = settings

    @classmethod
    def from_workspace(
        cls,
        workspace_dir: Path,
        *,
        provider: LLMProvider | None = None,
        budget_store: BudgetStore | None = None,
        settings: AssistSettings | Mapping[str, Any] | None = None,
    ) -> FinancialAssistant:
        """An assistant over the bank tables of the demo workspace at ``workspace_dir``."""
        raise NotImplementedError

    def owns(self, tenant: str, customer_id: str) -> bool:
        """Whether ``customer_id`` is a customer of ``tenant``."""
        raise NotImplementedError

    def customers_of(self, tenant: str) -> set[str]:
        """The customer ids of ``tenant``."""
        raise NotImplementedError

    async def assist(self, request: AssistRequest) -> AssistResponse:
        """Answer ``request``."""
        raise NotImplementedError
