"""How long work reports its progress: ``progress(step, fraction)``, fraction in 0..1."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, float], None]
