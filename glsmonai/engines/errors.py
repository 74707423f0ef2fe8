"""One clear line instead of a traceback when a bundle run meets bad input.

``python -m monai.bundle run`` is MONAI's command: an error raised while the config is being built
(a datalist entry whose file is missing, a malformed settings file) reaches the user wrapped in
MONAI's "Failed to instantiate" / "Failed to evaluate" errors, below some seventy lines of parser
traceback. :func:`install` (the first step of ``initialize`` in ``bundles/gls/configs/train.json``; importing
this module changes nothing) makes the interpreter's ``sys.excepthook`` look through the chain of the
uncaught exception for the innermost ``ValueError`` or ``OSError`` raised by glsmonai's own code, whose
message names the file and what is wrong, and print that alone; every other error keeps Python's full
traceback. ``GLSMONAI_TRACEBACK=1`` keeps the traceback always.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import TracebackType

__all__ = ["input_error", "install"]

_PACKAGE = Path(__file__).resolve().parents[1]


def _raised_here(err: BaseException) -> bool:
    """Whether the innermost frame of ``err``'s traceback lies in the glsmonai package."""
    tb = err.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(_PACKAGE)


def input_error(err: BaseException) -> BaseException | None:
    """The innermost ``ValueError`` / ``OSError`` raised by glsmonai in ``err``'s chain, if any."""
    chain, seen = [], set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        chain.append(err)
        # ``raise ... from None`` hides the context: the message that names the file is then the outer one
        err = err.__cause__ or (None if err.__suppress_context__ else err.__context__)
    return next((e for e in reversed(chain) if isinstance(e, (ValueError, OSError)) and _raised_here(e)), None)


def _hook(kind: type[BaseException], err: BaseException, tb: TracebackType | None) -> None:
    found = None if os.environ.get("GLSMONAI_TRACEBACK") else input_error(err)
    if found is None:
        _previous(kind, err, tb)
        return
    print(f"error: {found}", file=sys.stderr)


_previous = sys.__excepthook__


def install() -> None:
    """Make :func:`_hook` the interpreter's ``sys.excepthook``; the hook it replaces handles every other error.
    Calling it again changes nothing."""
    global _previous
    if sys.excepthook is not _hook:
        _previous, sys.excepthook = sys.excepthook, _hook
