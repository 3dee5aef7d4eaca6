"""Small helpers for the sentences the program shows people."""

from __future__ import annotations

IRREGULAR = {"index": "indices", "epoch": "epochs", "this": "these", "is": "are", "was": "were", "has": "have"}


def plural(count: int | float, noun: str, many: str | None = None) -> str:
    """``count`` with ``noun`` in the right number: ``1 object``, ``2 objects``, ``0 errors``.

    >>> plural(1, "object"), plural(3, "error"), plural(0, "epoch"), plural(2, "image/mask pair")
    ('1 object', '3 errors', '0 epochs', '2 image/mask pairs')
    >>> plural(1, "cell", "cells"), plural(12_500, "pixel")
    ('1 cell', '12,500 pixels')
    """
    shown = f"{count:,}" if isinstance(count, int) else f"{count:g}"
    if count == 1:
        return f"{shown} {noun}"
    return f"{shown} {many or IRREGULAR.get(noun) or _regular_plural(noun)}"


def _regular_plural(noun: str) -> str:
    """``pair`` → ``pairs``, ``box`` → ``boxes``, ``study`` → ``studies``."""
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"
