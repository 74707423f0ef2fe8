"""Small helpers shared by the bundle configs and the package."""

from __future__ import annotations

__all__ = ["as_bool"]


def as_bool(value: bool | str) -> bool:
    """Read a flag given in a config or on the command line.

    ``python -m monai.bundle ... --resume true`` passes the string ``"true"`` (fire only parses
    ``True``/``False``), so strings are read by their spelling.

    Raises:
        ValueError: a string that is not a yes/no word.
    """
    if isinstance(value, str):
        word = value.strip().lower()
        if word not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"expected true or false, got {value!r}")
        return word in ("true", "1", "yes")
    return bool(value)
