"""Training: one MONAI/Ignite loop, three stages described as data."""

from glsmonai.engines.runner import MODEL_INFO_FILE, STAGE_NAMES, GLSTrainingRun, load_trained, stage_checkpoint
from glsmonai.engines.stages import STAGE_OUTPUT, GLSLoss, StageOutputd, prepare_gls_batch

__all__ = [
    "MODEL_INFO_FILE", "STAGE_NAMES", "STAGE_OUTPUT", "GLSLoss", "GLSTrainingRun", "StageOutputd", "load_trained",
    "prepare_gls_batch", "stage_checkpoint",
]
