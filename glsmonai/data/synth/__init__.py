"""Phantom data sets that the project makes itself (no download): ``iris`` AS-OCT B-scans and ``echo``
apical echocardiography views."""

from glsmonai.data.synth.writer import DEFAULT_DEMO_DIR, PHANTOMS, ensure_demo_data, write_phantom_dataset

__all__ = ["DEFAULT_DEMO_DIR", "PHANTOMS", "ensure_demo_data", "write_phantom_dataset"]
