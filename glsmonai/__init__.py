"""glsmonai: Global-Local Segmentation (GLS) of small, blurred key regions, built on MONAI."""

from __future__ import annotations

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
