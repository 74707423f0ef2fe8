"""Refuse a misspelt command-line override instead of training with it ignored.

``python -m monai.bundle run training --epoch 1`` adds a new config key ``epoch`` that nothing reads,
and the run trains the default 100 epochs per stage. MONAI checks no override against the configs, so
:func:`check_overrides` (the first step of ``setup`` in ``bundles/gls/configs/train.json``) reads the command
line the run was started with and raises, before any training, for an override whose top-level key is
in none of the config files, or whose path (``a#b#c``) leaves the config before its last key (a new
last key inside an existing component is allowed: it adds an argument, e.g.
``--network_def#return_key fused``). The message suggests the closest known key.
"""

from __future__ import annotations

import ast
import difflib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["check_ckpt_dir", "check_overrides", "unknown_overrides"]

#: ``monai.bundle run`` arguments that are not config overrides
RUN_ARGS = {"run_id", "init_id", "final_id", "meta_file", "config_file", "logging_file", "tracking", "args_file"}


def _config_files(value: str) -> list[Path]:
    """``--config_file``'s value: a path, or a Python list of paths as a string."""
    value = value.strip()
    files = ast.literal_eval(value) if value.startswith("[") else value.split(",")
    return [Path(str(f).strip()) for f in files]


def _overrides(argv: Sequence[str]) -> tuple[list[str], list[Path]]:
    """The override keys and the config files of a ``monai.bundle run`` command line."""
    keys, files, i = [], [], 0
    while i < len(argv):
        token = argv[i]
        if token.startswith("--"):
            key, _, inline = token[2:].partition("=")
            has_next = not inline and i + 1 < len(argv) and not argv[i + 1].startswith("--")
            value = inline or (argv[i + 1] if has_next else "")
            if key == "config_file":
                files = _config_files(value)
            elif key not in RUN_ARGS:
                keys.append(key)
            i += 2 if has_next else 1
            continue
        i += 1
    return keys, files


def _has(config: object, path: list[str]) -> bool:
    node = config
    for part in path:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def unknown_overrides(keys: Sequence[str], configs: Sequence[dict]) -> list[str]:
    """One message per override key that the merged ``configs`` do not know, with a suggestion."""
    merged: dict = {}
    for config in configs:
        merged.update(config)  # as MONAI merges several config files: top-level keys replaced
    flat = set(merged)
    for name, value in merged.items():
        if isinstance(value, dict):
            flat.update(f"{name}#{sub}" for sub in value)
    problems = []
    for key in keys:
        path = key.split("#")
        if _has(merged, path if len(path) == 1 else path[:-1]):
            continue
        close = difflib.get_close_matches(key, sorted(flat), n=1)
        hint = f"; did you mean --{close[0]}?" if close else ""
        problems.append(f"--{key} matches no key of the bundle's configs{hint}")
    return problems


def check_overrides(argv: Sequence[str] | None = None) -> None:
    """Raise ``ValueError`` listing the misspelt overrides of this ``monai.bundle run`` command line.

    Does nothing when the process was not started as ``monai.bundle run`` with config files (e.g. a
    bundle driven from Python).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if "run" not in argv:
        return
    keys, files = _overrides(argv[argv.index("run") + 1:])
    if not files or not all(f.is_file() for f in files):
        return
    problems = unknown_overrides(keys, [json.loads(f.read_text()) for f in files])
    if problems:
        raise ValueError("; ".join(problems))


def check_ckpt_dir(model_dir: str | Path, ckpt_dir: str | Path) -> None:
    """``ValueError`` when ``ckpt_dir`` names another folder than ``model_dir``.

    In the bundle's configs ``model_dir`` is the trained model folder and ``ckpt_dir`` only its model-zoo
    alias (``"ckpt_dir": "@model_dir"``), which nothing reads: ``--ckpt_dir X`` alone would be ignored.
    """
    if Path(str(ckpt_dir)) != Path(str(model_dir)):
        raise ValueError(
            f"ckpt_dir {ckpt_dir} is not model_dir {model_dir}: ckpt_dir is an alias of model_dir, the model folder; "
            f"set model_dir (--model_dir {ckpt_dir})"
        )
