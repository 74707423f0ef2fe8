"""glsmonai: Global-Local Segmentation (GLS) of small, blurred key regions, built on MONAI.

``glsmonai.__version__`` is the one version of the package: the installed package's metadata (from
``setup.cfg`` at install time), read on first use; ``glsmonai --version``, the reports'
``glsmonai_version`` and the bundle's ``metadata.json`` say the same.
"""

from __future__ import annotations

import logging

__all__ = ["__version__", "package_version"]

logging.getLogger(__name__).addHandler(logging.NullHandler())

_version: str | None = None


def package_version() -> str:
    """The installed package's version; in a checkout that was never installed (no metadata), the version
    its ``setup.cfg`` gives, else ``0+unknown``."""
    global _version
    if _version is None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            _version = version("glsmonai")
        except PackageNotFoundError:
            import configparser
            from pathlib import Path

            setup_cfg = configparser.ConfigParser()
            setup_cfg.read(Path(__file__).resolve().parent.parent / "setup.cfg")
            _version = setup_cfg.get("metadata", "version", fallback="0+unknown")
    return _version


def __getattr__(name: str) -> str:
    # __version__ is read when asked for: importing glsmonai (as every DataLoader worker does) stays cheap
    if name == "__version__":
        return package_version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
