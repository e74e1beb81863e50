"""Form widget values → config field values: an empty box means "not given" (None), so the
config's own default applies, exactly as a flag left off the command line does.

Optional numbers are text boxes (`number_box`), not gr.Number: Gradio's number widget has no
empty state (it shows and sends 0 for None, and 0 then fails its own minimum or is used as a
value), so a field whose empty value means "not set" cannot be one.
"""

from __future__ import annotations

import math
from typing import Any

from reasonrank.io import InputError


def form_text(value: Any) -> str | None:
    value = value.strip() if isinstance(value, str) else value
    return value or None


def _number(value: Any, field: str, kind: type) -> float | int | None:
    text = value.strip() if isinstance(value, str) else value
    if text in (None, ""):
        return None
    try:
        number = float(text)
    except (TypeError, ValueError):
        raise InputError(f"{field}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise InputError(f"{field}: {value!r} is not a finite number")
    if kind is int:
        if not number.is_integer():
            raise InputError(f"{field}: {value!r} is not a whole number")
        return int(number)
    return number


def form_int(value: Any, field: str = "number", minimum: int | None = None) -> int | None:
    """A whole number, or None for an empty box; anything else is an InputError naming `field`."""
    number = _number(value, field, int)
    if number is not None and minimum is not None and number < minimum:
        raise InputError(f"{field}: {number} is less than {minimum}")
    return number


def form_float(
    value: Any, field: str = "number", minimum: float | None = None, maximum: float | None = None
) -> float | None:
    """A finite number, or None for an empty box; out of [minimum, maximum] is an InputError."""
    number = _number(value, field, float)
    if number is not None and minimum is not None and number < minimum:
        raise InputError(f"{field}: {number:g} is less than {minimum:g}")
    if number is not None and maximum is not None and number > maximum:
        raise InputError(f"{field}: {number:g} is more than {maximum:g}")
    return number


def number_box(
    label: str, value: float | int | None = None, *, elem_id: str | None = None, placeholder: str = "not set"
):
    """A one-line text box for an optional number: empty means "not set" (see the module docstring)."""
    import gradio as gr

    return gr.Textbox(
        "" if value is None else str(value),
        label=label,
        placeholder=placeholder,
        max_lines=1,
        elem_id=elem_id,
    )


def command_box(text: str, *, elem_id: str):
    """The read-only "Equivalent command" a job tab shows under its form (the exact CLI it runs)."""
    import gradio as gr

    return gr.Code(text, label="Equivalent command", language="shell", interactive=False, elem_id=elem_id)
