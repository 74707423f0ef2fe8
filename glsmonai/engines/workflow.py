"""The steps of a training run that the bundle calls around the engines it wires.

``train.json`` builds one ``SupervisedTrainer`` and one ``SupervisedEvaluator`` per stage; these
functions do what a config cannot say: record the model folder and seed the run once the network
exists (:func:`setup_run`), and run one stage, skipping a finished one on resume, or take it from another
model folder instead of training it (:func:`run_stage`; :mod:`glsmonai.engines.adopt`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from ignite.engine import Events
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.utils import set_determinism

from glsmonai.engines.adopt import adopt_stage
from glsmonai.engines.distributed import barrier, check_in_sync, is_main_process, unwrap, wrap_for_stage
from glsmonai.model_folder import record_stage_seconds, stage_checkpoint, write_model_info
from glsmonai.stages import enter_stage, get_stage
from glsmonai.utils import as_bool

logger = logging.getLogger(__name__)

__all__ = ["run_stage", "setup_run"]


def setup_run(
    network: torch.nn.Module,
    model_dir: str | os.PathLike,
    settings: Mapping | None = None,
    seed: int | None = 0,
    device: str | torch.device = "cpu",
) -> torch.nn.Module:
    """Before the first stage: seed everything, record the model folder's settings, move the network.

    The seed is set again here, after the network was built, so that the stages draw the same random
    numbers whatever the config built before them.
    """
    if seed is not None:
        set_determinism(seed=int(seed))
    Path(model_dir).mkdir(parents=True, exist_ok=True)
    if is_main_process():  # with torchrun, rank 0 writes the model folder
        write_model_info(model_dir, network, settings)
    return network.to(torch.device(device))


def run_stage(
    stage: str,
    trainer: SupervisedTrainer,
    evaluator: SupervisedEvaluator,
    model_dir: str | os.PathLike,
    resume: bool | str = False,
    frozen: Sequence[str] = (),
    take_from: str | os.PathLike | None = None,
) -> float:
    """Train one stage with its trainer; returns the best validation Dice (NaN when skipped or taken).

    With ``resume``, a stage whose final checkpoint exists is skipped. ``frozen``: parts kept frozen although
    the stage trains them (:func:`~glsmonai.stages.enter_stage`). ``take_from``: a model folder whose stage this
    run takes instead of training it (:func:`adopt_stage`; ``train.json``'s ``stage_from``).

    A finished stage's wall-clock seconds (its epochs with their validation) go into the model folder's
    ``stage_seconds.json``; a stage resumed from an epoch checkpoint counts only the epochs this run trained, and
    its entry says ``resumed``.
    """
    stage = get_stage(stage)
    if take_from:
        adopt_stage(stage, unwrap(trainer.network), model_dir, take_from)
        return float("nan")
    final = stage_checkpoint(model_dir, stage, "final")
    if as_bool(resume) and final.is_file():
        logger.info("%s already finished (%s): skipped", stage.name, final)
        return float("nan")
    network = unwrap(trainer.network)
    params = enter_stage(network, stage, frozen)
    trainer.network = wrap_for_stage(network)  # with torchrun: DDP over the parts this stage trains
    logger.info(
        "%s: %d epoch(s), lr %g, %d trainable parameters", stage.name, trainer.state.max_epochs,
        trainer.optimizer.param_groups[0]["lr"], sum(p.numel() for p in params),
    )
    epochs = []  # the epochs this run trains (fewer than max_epochs when it resumes an interrupted stage)
    count = trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda engine: epochs.append(engine.state.epoch))
    start = time.perf_counter()
    trainer.run()
    seconds = time.perf_counter() - start
    count.remove()
    if is_main_process():
        record_stage_seconds(model_dir, stage, seconds, epochs=len(epochs),
                             **({"resumed": True} if len(epochs) < trainer.state.max_epochs else {}))
    barrier()  # with torchrun: every process waits for rank 0's checkpoints before the next stage reads them
    trainer.network = network
    check_in_sync(network, stage.name)
    best = float(evaluator.state.best_metric)
    logger.info("%s finished: best validation Dice %.4f (epoch %d)", stage.name, best, evaluator.state.best_metric_epoch)
    return best
