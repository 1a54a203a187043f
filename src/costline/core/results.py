"""What every result of an analysis offers besides its fields."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class Result(BaseModel):
    """A typed result: its fields, and the same as plain data."""

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-compatible data (dates as ISO text, enums as their values)."""
        return self.model_dump(mode="json")

    def to_json(self, *, indent: int | None = 2) -> str:
        """The result as JSON text: what the CLI's ``--format json`` prints."""
        return self.model_dump_json(indent=indent)
