"""Prediction: :mod:`glsmonai.inference.predict_from_raw_data` (``glsmonai/inference.py`` moved into the package
it becomes)."""

from glsmonai.inference.predict_from_raw_data import *  # noqa: F403
from glsmonai.inference.predict_from_raw_data import __all__  # noqa: F401
