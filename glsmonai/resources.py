"""Where the installed package keeps the GLS bundle (its configs, model card and licence).

The repository's ``bundles/gls`` ships inside the package as ``glsmonai/bundles/gls`` (package data; in
the checkout a link to the top-level folder), so a wheel installed anywhere can run ``compare`` and copy
the bundle out for ``python -m monai.bundle run ...``.
"""

from __future__ import annotations

import os
import shutil
from importlib import resources
from pathlib import Path

__all__ = ["bundle_dir", "configs_dir", "copy_bundle"]


def bundle_dir() -> Path:
    """The GLS bundle folder (``configs/``, ``docs/``, ``LICENSE``) of the installed package.

    Raises:
        FileNotFoundError: the package was installed without its bundle (e.g. from a zip).
    """
    folder = Path(str(resources.files("glsmonai") / "bundles" / "gls"))
    if not (folder / "configs" / "train.json").is_file():
        raise FileNotFoundError(f"{folder}: the GLS bundle is not installed with the package (configs/train.json missing)")
    return folder


def configs_dir() -> Path:
    """``<bundle>/configs``: ``train.json``, ``inference.json``, the overlays and ``baselines/``."""
    return bundle_dir() / "configs"


def copy_bundle(dest: str | os.PathLike) -> Path:
    """Copy the bundle (configs, docs, licence; no weights) to ``dest``, which must not exist yet.

    Returns:
        ``dest``, laid out as the model zoo does: ``dest/configs/train.json`` ...
    """
    dest = Path(dest)
    if dest.exists():
        raise FileExistsError(f"{dest} exists: give a new folder to copy the bundle into")
    shutil.copytree(bundle_dir(), dest, ignore=shutil.ignore_patterns("__pycache__", "models"))
    (dest / "models").mkdir()
    return dest
