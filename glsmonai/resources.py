"""Where the installed package keeps the GLS bundle (its configs, model card and licence).

The repository's ``bundles/gls`` ships inside the package as ``glsmonai/bundles/gls`` (package data; in
the checkout a link to the top-level folder), so a wheel installed anywhere can run ``compare`` and copy
the bundle out for ``python -m monai.bundle run ...``.
"""

from __future__ import annotations

import json
import os
import shutil
from importlib import metadata, resources
from pathlib import Path

from glsmonai import package_version
from glsmonai.utils import atomic_write

__all__ = ["REQUIRED_PACKAGES", "bundle_dir", "configs_dir", "copy_bundle", "record_versions"]

#: the packages whose versions ``metadata.json`` records besides MONAI, PyTorch and NumPy (distribution names)
REQUIRED_PACKAGES = ("pytorch-ignite", "nibabel", "SimpleITK", "pandas", "scipy", "scikit-image", "pillow", "fire",
                     "tqdm", "tensorboard", "glsmonai")


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
    src = bundle_dir()
    # a checkout keeps links at the configs' pre-0.4 paths (bundles/gls/train.json -> configs/train.json):
    # the copy, like the wheel, has the model-zoo layout only
    links = {p.name for p in src.iterdir() if p.is_symlink()}
    shutil.copytree(src, dest, ignore=lambda folder, names: {n for n in names if n in ("__pycache__", "models")}
                    | (links if Path(folder) == src else set()))
    (dest / "models").mkdir()
    return dest


def record_versions(metadata_file: str | os.PathLike) -> dict:
    """Write the versions installed here into a bundle's ``metadata.json`` (``monai_version``,
    ``pytorch_version``, ``numpy_version``, ``required_packages_version``), as the model zoo records
    what a bundle was tested with (glsmonai's own: :func:`glsmonai.package_version`).

    Returns:
        the updated metadata.

    Raises:
        FileNotFoundError: no such file; ValueError: it is not a JSON object.
    """
    path = Path(metadata_file)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such metadata file")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: expected a JSON object")
    installed = {}
    for name in ("monai", "torch", "numpy", *REQUIRED_PACKAGES):
        try:
            installed[name] = package_version() if name == "glsmonai" else metadata.version(name)
        except metadata.PackageNotFoundError:
            raise ValueError(f"{path}: {name} is not installed here, so its version cannot be recorded") from None
    meta["monai_version"] = installed.pop("monai")
    meta["pytorch_version"] = installed.pop("torch").split("+")[0]  # the local tag (+cpu, +cu128) is the build's
    meta["numpy_version"] = installed.pop("numpy")
    meta["required_packages_version"] = installed
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(meta, indent=4) + "\n"))
    return meta
