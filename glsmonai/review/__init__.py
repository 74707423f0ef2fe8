"""``glsmonai review``: review and correct a prediction folder in the browser.

* :mod:`~glsmonai.review.folder`: the folder as a reviewer sees it (scans, references, the model's keypoints)
  and the review's own files (``review.csv``, ``corrected/``), written atomically under locks;
* :mod:`~glsmonai.review.app`: :class:`Review` (worst first, a scan held open whose keypoints move one at a
  time, undo, accept, measures);
* :mod:`~glsmonai.review.web`: the FastAPI app around it (``create_app``, ``serve``), the one module that imports
  FastAPI and uvicorn;
* ``static/``: the viewer (plain HTML, JavaScript and SVG, no build step).

FastAPI and uvicorn are the ``review`` extra (``pip install 'glsmonai[review]'``).
"""

from glsmonai.review.app import Review, UnknownScan, contour_paths, task_of
from glsmonai.review.folder import (
    CORRECTED_DIR,
    REVIEW_COLUMNS,
    REVIEW_FILE,
    STATES,
    ReviewFolder,
    ReviewTable,
    ScanEntry,
    reviewer_name,
)

__all__ = [
    "CORRECTED_DIR", "REVIEW_COLUMNS", "REVIEW_FILE", "STATES", "Review", "ReviewFolder", "ReviewTable", "ScanEntry",
    "UnknownScan", "contour_paths", "reviewer_name", "task_of",
]
