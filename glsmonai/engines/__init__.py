"""Training: MONAI's engines, wired per stage in ``bundles/gls/configs/train.json``, and what a config cannot say."""

from glsmonai.engines.adopt import adopt_stage, take_earlier_stages
from glsmonai.engines.batch import SOURCE_KEYS, StageOutputd, prepare_gls_batch
from glsmonai.engines.distributed import init_distributed, is_main_process, on_this_rank
from glsmonai.engines.handlers import (
    FinalValidation,
    ProgressHandler,
    ResumableCheckpointSaver,
    RunningLoss,
    StageStart,
    loss_value,
)
from glsmonai.engines.loss import GLSLoss, local_target, output_target
from glsmonai.engines.overrides import check_ckpt_dir, check_overrides
from glsmonai.engines.workflow import run_stage, setup_run

__all__ = [
    "SOURCE_KEYS", "adopt_stage", "check_ckpt_dir", "check_overrides", "FinalValidation", "GLSLoss", "ProgressHandler",
    "ResumableCheckpointSaver", "RunningLoss", "StageOutputd", "StageStart", "init_distributed", "is_main_process",
    "on_this_rank", "local_target", "loss_value", "output_target", "prepare_gls_batch", "run_stage", "setup_run",
    "take_earlier_stages",
]
