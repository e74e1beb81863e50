"""Form widget values → config field values: an empty box means "not given" (None), so the
config's own default applies, exactly as a flag left off the command line does."""

from __future__ import annotations

from typing import Any


def form_text(value: Any) -> str | None:
    value = value.strip() if isinstance(value, str) else value
    return value or None


def form_int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def form_float(value: Any) -> float | None:
    return None if value in (None, "") else float(value)
