"""Prediction, shaped like nnU-Net's ``nnunetv2/inference``, one module per job:

==========================  ========================================================================
module                      job
==========================  ========================================================================
``options``                 :class:`PredictOptions`: how to predict, written once; compare's variants
``predict_from_raw_data``   :class:`Predictor`: a model folder run on scans (forward, assemble, combine)
``data_iterators``          reading and preparing scans ahead of the network (DataLoader workers)
``export_prediction``       what is written per scan: mask, overlay, keypoint rows
``exported_networks``       ``--engine torchscript|onnx``: an exported file behind the network's contract
``folder_run``              :func:`run_inference` / :func:`predict_folder`: a folder in, a folder out
``session``                 keypoints as prompts; :class:`ScanSession`: a scan held open, one window re-segmented
==========================  ========================================================================

The Python API (``docs/python-api.md``)::

    from glsmonai.inference import PredictOptions, Predictor, predict_folder

    predictor = Predictor("runs/mine/models", device="cpu", options=PredictOptions(tta=True))
    prediction = predictor.predict("scan.nii.gz")            # or predictor.predict_array(array, geometry)
    failures = predict_folder(predictor, "scans/", "out/")
    ensemble = Predictor(["cv/fold0/models", "cv/fold1/models"], device="cpu")  # a fold ensemble, used alike
"""

from glsmonai.data.prediction_folder import KeypointTable, read_keypoints_csv
from glsmonai.inference.data_iterators import ReadScan, ScanPreparer, ScanReader, default_workers
from glsmonai.inference.export_prediction import write_prediction
from glsmonai.inference.exported_networks import EXPORTED_FILES, ExportedNetwork, load_exported, open_exported
from glsmonai.inference.folder_run import PREDICT_EXTENSIONS, predict_folder, run_inference
from glsmonai.inference.options import ENGINES, PLAIN, PLAIN_OPTIONS, VARIANT_NAMES, VARIANTS, PredictOptions, variant_options
from glsmonai.inference.predict_from_raw_data import Prediction, Predictor
from glsmonai.inference.session import ScanSession

__all__ = [
    "ENGINES", "EXPORTED_FILES", "ExportedNetwork", "KeypointTable", "PLAIN", "PLAIN_OPTIONS", "PREDICT_EXTENSIONS",
    "PredictOptions", "Prediction", "Predictor", "ReadScan", "ScanPreparer", "ScanReader", "ScanSession", "VARIANTS",
    "VARIANT_NAMES",
    "default_workers", "load_exported", "open_exported", "predict_folder", "read_keypoints_csv",
    "run_inference", "variant_options", "write_prediction",
]
