"""Small helpers shared by the bundle configs and the package."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path

__all__ = ["as_bool", "atomic_write", "error_line", "stale_temporaries"]


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


# hand-written: the standard library has no atomic file write, and none of our dependencies exposes one
def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Write a file so that a crash never leaves half of it under its final name.

    ``write(tmp)`` writes a hidden, uniquely named sibling ``.<stem>.<8 hex>.tmp<suffixes>``, which is
    then renamed to ``path`` (atomic on one file system). The temporary name ends with the file's own
    suffixes (``.png``, ``.nii.gz``), since writers such as PIL, pandas and SimpleITK pick the format
    from it.

    Args:
        path: the file to write; its folder is created.
        write: writes the whole content to the path it is given.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        Exception: whatever ``write`` raises; the temporary file is removed and an existing ``path``
            is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = "".join(path.suffixes)
    stem = path.name[: len(path.name) - len(ext)]
    tmp = path.with_name(f".{stem}.{uuid.uuid4().hex[:8]}.tmp{ext}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


_TEMPORARY = re.compile(r"^\.(?P<stem>.+)\.[0-9a-f]{8}\.tmp(?P<ext>.*)$")


def stale_temporaries(folder: str | os.PathLike, names: set[str]) -> list[Path]:
    """The temporaries :func:`atomic_write` left in ``folder`` for the files ``names`` when a process
    was killed while writing them (a kill skips ``finally``).

    Only the temporaries of ``names`` are listed, so a run removes its own files' leftovers and never
    those of another run writing other files into the same folder (``predict --num-parts``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for entry in os.scandir(folder):
        match = _TEMPORARY.match(entry.name)
        if match and match["stem"] + match["ext"] in names:
            found.append(Path(entry.path))
    return sorted(found)


def error_line(err: BaseException) -> str:
    """``"Type: first sentence"`` of an error, for one-line messages (torch's message about a corrupt
    checkpoint runs on for several sentences)."""
    text = (str(err).strip().splitlines() or [""])[0].split(". ")[0].rstrip(".")
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
