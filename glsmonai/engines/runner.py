"""One training loop for every GLS stage: a MONAI ``SupervisedTrainer`` validated by a
``SupervisedEvaluator`` with ``MeanDice`` and ``MeanIoUHandler``, configured by the stage's data.

The bundle (``bundles/gls/train.json``) builds a :class:`GLSTrainingRun` and calls
:meth:`GLSTrainingRun.run` with the stages to train.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
from ignite.engine import Events
from ignite.handlers import ProgressBar
from ignite.metrics import RunningAverage
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import (
    CheckpointLoader,
    CheckpointSaver,
    LrScheduleHandler,
    MeanDice,
    MeanIoUHandler,
    StatsHandler,
    TensorBoardStatsHandler,
    ValidationHandler,
    from_engine,
)
from monai.utils import set_determinism
from torch.utils.data import DataLoader

from glsmonai.engines.stages import GLSLoss, StageOutputd, prepare_gls_batch
from glsmonai.networks.baselines import SegmentationOnly
from glsmonai.networks.gls import GLSNet
from glsmonai.utils import as_bool

logger = logging.getLogger(__name__)

__all__ = ["GLSTrainingRun", "MODEL_INFO_FILE", "stage_checkpoint", "STAGE_NAMES", "load_trained"]

#: the settings a model folder records beside its checkpoints (read by the predictor)
MODEL_INFO_FILE = "gls_model.json"
STAGE_NAMES = ("stage1", "stage2", "stage3")


def stage_checkpoint(ckpt_dir: str | os.PathLike, stage: str, kind: str = "best") -> Path:
    """Path of a stage's checkpoint: ``kind`` is ``best`` (by validation Dice) or ``final``."""
    return Path(ckpt_dir) / f"{stage}_{kind}.pt"


def load_trained(network: GLSNet | SegmentationOnly, ckpt_dir: str | os.PathLike, stage: int | None = None) -> GLSNet:
    """Load a stage's best checkpoint into ``network`` and set that stage (default: the latest trained).

    Raises:
        FileNotFoundError: no such checkpoint in ``ckpt_dir``.
    """
    names = [STAGE_NAMES[stage - 1]] if stage else list(reversed(STAGE_NAMES))
    path = next((stage_checkpoint(ckpt_dir, n) for n in names if stage_checkpoint(ckpt_dir, n).is_file()), None)
    if path is None:
        raise FileNotFoundError(f"{ckpt_dir}: no checkpoint {' / '.join(n + '_best.pt' for n in names)}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    network.load_state_dict(state.get("network", state))
    network.set_stage(STAGE_NAMES.index(path.name.split("_")[0]) + 1)
    logger.info("loaded %s", path)
    return network


def _latest_interval_checkpoint(ckpt_dir: Path, stage: str) -> Path | None:
    found = sorted(ckpt_dir.glob(f"{stage}_checkpoint_epoch=*.pt"), key=lambda p: int(p.stem.split("=")[-1]))
    return found[-1] if found else None


class GLSTrainingRun:
    """Trains the stages of a :class:`GLSNet`, each from the previous stage's best checkpoint.

    Args:
        network: the GLS network (or a baseline wrapped in
            :class:`~glsmonai.networks.baselines.SegmentationOnly`, trained as stage 1).
        train_loader, val_loader: loaders of dicts with ``image``, ``label``, ``heatmap``.
        stages: per stage name (``stage1`` ...), a dict with ``epochs`` and ``lr``.
        seg_loss, heatmap_loss, heatmap_weight, stage3_aux_weight: see :class:`GLSLoss`.
        optimizer: ``callable(params, lr) -> torch.optim.Optimizer`` (default Adam).
        ckpt_dir: where checkpoints and :data:`MODEL_INFO_FILE` go.
        output_dir: TensorBoard logs go to ``<output_dir>/tensorboard/<stage>``.
        model_info: settings recorded in the model folder so prediction needs nothing else.
        device: ``"cpu"``, ``"cuda"`` or a ``torch.device``.
        val_interval: validate every this many epochs (and always after the last one).
        resume: continue an interrupted run: finished stages are skipped, an interrupted stage
            restarts from its last epoch checkpoint.
        seed: for :func:`monai.utils.set_determinism`.
        amp: mixed precision (CUDA only).
        progress: show a tqdm progress bar per epoch.
    """

    def __init__(
        self,
        network: GLSNet | SegmentationOnly,
        train_loader: DataLoader,
        val_loader: DataLoader,
        stages: Mapping[str, Mapping],
        seg_loss: Callable,
        ckpt_dir: str | os.PathLike,
        output_dir: str | os.PathLike,
        model_info: Mapping | None = None,
        heatmap_loss: Callable | None = None,
        heatmap_weight: float = 1.0,
        stage3_aux_weight: float = 0.0,
        optimizer: Callable | None = None,
        device: str | torch.device = "cpu",
        val_interval: int = 1,
        resume: bool = False,
        seed: int | None = 0,
        amp: bool = False,
        progress: bool = True,
    ) -> None:
        self.network = network
        self.train_loader, self.val_loader = train_loader, val_loader
        self.stages = {k: dict(v) for k, v in stages.items()}
        self.seg_loss, self.heatmap_loss = seg_loss, heatmap_loss
        self.heatmap_weight, self.stage3_aux_weight = heatmap_weight, stage3_aux_weight
        self.optimizer = optimizer or (lambda params, lr: torch.optim.Adam(params, lr=lr))
        self.ckpt_dir, self.output_dir = Path(ckpt_dir), Path(output_dir)
        self.model_info = dict(model_info or {})
        self.device = torch.device(device)
        self.val_interval = max(1, int(val_interval))
        self.resume, self.amp, self.progress = as_bool(resume), as_bool(amp), as_bool(progress)
        self.seed = seed

    # ------------------------------------------------------------------ public
    def run(self, names: Sequence[str] = STAGE_NAMES) -> dict[str, float]:
        """Train the named stages in order; returns the best validation Dice of each."""
        unknown = [n for n in names if n not in STAGE_NAMES]
        if unknown:
            raise ValueError(f"unknown stage(s) {unknown}; choose from {STAGE_NAMES}")
        if self.seed is not None:
            set_determinism(seed=self.seed)
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        self._write_model_info()
        self.network.to(self.device)
        results = {}
        for name in names:
            results[name] = self.run_stage(name)
        logger.info("best validation Dice per stage: %s", {k: round(v, 4) for k, v in results.items()})
        return results

    def run_stage(self, name: str) -> float:
        """Train one stage; returns its best validation Dice."""
        stage = STAGE_NAMES.index(name) + 1
        spec = self.stages.get(name, {})
        epochs, lr = int(spec.get("epochs", 1)), float(spec.get("lr", 1e-3))
        final = stage_checkpoint(self.ckpt_dir, name, "final")
        if self.resume and final.is_file():
            logger.info("%s already finished (%s): skipped", name, final)
            return float("nan")
        self.network.set_stage(stage)
        start = self._starting_checkpoint(name, stage)
        params = [p for p in self.network.parameters() if p.requires_grad]
        optimizer = self.optimizer(params, lr)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))
        evaluator = self._evaluator(name, stage)
        trainer = SupervisedTrainer(
            device=self.device,
            max_epochs=epochs,
            train_data_loader=self.train_loader,
            network=self.network,
            optimizer=optimizer,
            loss_function=GLSLoss(
                stage,
                self.seg_loss,
                self.network.crop_size,
                self.heatmap_loss,
                self.heatmap_weight,
                self.stage3_aux_weight,
            ),
            prepare_batch=prepare_gls_batch,
            amp=self.amp and self.device.type == "cuda",
            decollate=False,
            train_handlers=self._train_handlers(name, optimizer, scheduler, evaluator, epochs),
        )
        if start is not None:
            full = start.name.startswith(f"{name}_checkpoint")
            load = {"network": self.network, "optimizer": optimizer, "lr_scheduler": scheduler, "trainer": trainer}
            CheckpointLoader(
                str(start), load if full else {"network": self.network}, map_location=self.device
            ).attach(trainer)
        logger.info("%s: %d epoch(s), lr %g, %d trainable parameters%s", name, epochs, lr,
                    sum(p.numel() for p in params), f", starting from {start}" if start else "")
        trainer.run()
        best = float(evaluator.state.best_metric)
        logger.info("%s finished: best validation Dice %.4f (epoch %d)", name, best, evaluator.state.best_metric_epoch)
        return best

    # ------------------------------------------------------------------ pieces
    def _starting_checkpoint(self, name: str, stage: int) -> Path | None:
        if self.resume:
            latest = _latest_interval_checkpoint(self.ckpt_dir, name)
            if latest is not None:
                return latest
        if stage == 1:
            return None
        previous = stage_checkpoint(self.ckpt_dir, STAGE_NAMES[stage - 2], "best")
        if not previous.is_file():
            raise FileNotFoundError(
                f"{name} starts from {previous}, which does not exist: train {STAGE_NAMES[stage - 2]} first"
            )
        return previous

    def _evaluator(self, name: str, stage: int) -> SupervisedEvaluator:
        metric_io = from_engine(["pred", "label"])
        handlers = [
            StatsHandler(iteration_log=False, name=f"glsmonai.{name}.val"),
            TensorBoardStatsHandler(log_dir=str(self.output_dir / "tensorboard" / name), iteration_log=False),
            CheckpointSaver(
                save_dir=str(self.ckpt_dir),
                save_dict={"network": self.network},
                save_key_metric=True,
                key_metric_filename=stage_checkpoint(self.ckpt_dir, name, "best").name,
            ),
        ]
        return SupervisedEvaluator(
            device=self.device,
            val_data_loader=self.val_loader,
            network=self.network,
            prepare_batch=prepare_gls_batch,
            postprocessing=StageOutputd(stage, self.network.crop_size),
            key_val_metric={"val_mean_dice": MeanDice(include_background=True, output_transform=metric_io)},
            additional_metrics={"val_mean_iou": MeanIoUHandler(include_background=True, output_transform=metric_io)},
            val_handlers=handlers,
            amp=self.amp and self.device.type == "cuda",
            decollate=False,
        )

    def _train_handlers(self, name, optimizer, scheduler, evaluator, epochs) -> list:
        handlers = [
            LrScheduleHandler(lr_scheduler=scheduler, print_lr=False),
            ValidationHandler(validator=evaluator, interval=self.val_interval, epoch_level=True),
            StatsHandler(tag_name="train_loss", output_transform=_loss_value, iteration_log=False, name=f"glsmonai.{name}"),
            TensorBoardStatsHandler(
                log_dir=str(self.output_dir / "tensorboard" / name), tag_name="train_loss", output_transform=_loss_value
            ),
            CheckpointSaver(
                save_dir=str(self.ckpt_dir),
                save_dict={"network": self.network, "optimizer": optimizer, "lr_scheduler": scheduler},
                file_prefix=name,
                save_interval=1,
                n_saved=1,
                save_final=True,
                final_filename=stage_checkpoint(self.ckpt_dir, name, "final").name,
            ),
            _FinalValidation(evaluator, self.val_interval, epochs),
            _RunningLoss(),
        ]
        if self.progress:
            handlers.append(_Progress(name))
        return handlers

    def _write_model_info(self) -> None:
        info = {**self.model_info, "network": self.network.build_args()}
        path = self.ckpt_dir / MODEL_INFO_FILE
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(info, indent=1, default=str))
        os.replace(tmp, path)


def _loss_value(output: Mapping) -> float:
    """The iteration loss from a trainer's (not decollated) output dict."""
    return float(output["loss"])


class _RunningLoss:
    """Ignite's running average of the loss as the trainer metric ``train_loss`` (logged every epoch)."""

    def attach(self, engine) -> None:
        RunningAverage(output_transform=_loss_value).attach(engine, "train_loss")


class _FinalValidation:
    """Validate after the last epoch when ``val_interval`` skipped it."""

    def __init__(self, evaluator: SupervisedEvaluator, interval: int, epochs: int) -> None:
        self.evaluator, self.interval, self.epochs = evaluator, interval, epochs

    def attach(self, engine) -> None:
        if self.epochs % self.interval:
            engine.add_event_handler(Events.COMPLETED, lambda e: self.evaluator.run(e.state.epoch))


class _Progress:
    """Ignite's tqdm progress bar with the running loss."""

    def __init__(self, name: str) -> None:
        self.name = name

    def attach(self, engine) -> None:
        ProgressBar(persist=False, desc=self.name).attach(engine, output_transform=lambda out: {"loss": _loss_value(out)})
