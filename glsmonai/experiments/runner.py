"""Train and predict every model of a comparison: round by round, model by model, seed by seed."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from glsmonai.experiments.progress import TrainingClock
from glsmonai.experiments.rounds import Round
from glsmonai.experiments.training import Arm, TrainingSeed, train_model
from glsmonai.experiments.variants import predict_round

logger = logging.getLogger(__name__)

__all__ = ["train_and_predict"]


def train_and_predict(
    rounds: Sequence[Round],
    models: Sequence[str],
    seeds: Sequence[TrainingSeed],
    out: Path,
    configs: Path,
    presets: Sequence[str] = (),
    variants: Sequence[str] = (),
    arms: Mapping[str, Arm] | None = None,
) -> list[dict]:
    """Train each model for each round and training seed (every model of round 0 first; a model trained
    earlier with the same overrides and datalist is not trained again), and predict the round's test cases
    with it, plainly and with each variant.

    ``models`` may name ``arms``: such a model is its arm's model trained with the arm's overrides after the
    seed's (:meth:`~glsmonai.experiments.training.Arm.training_overrides`); an arm that takes stages from another
    compared model (``stage1_of=NAME``) starts from that model's run of the same round and seed, so ``NAME`` comes
    earlier in ``models``.

    Returns:
        one row per round, compared name (``<model>`` or ``<model>+<variant>``) and seed: ``model, fold, seed,
        n_training, n_validation, n_testing, test_groups, train_min, infer_s`` (a variant's ``train_min`` is 0:
        it reuses its model's training; an arm that takes stages counts their minutes in the run it took them from,
        where that run recorded them).

    Raises:
        FileNotFoundError, RuntimeError: see :func:`~glsmonai.experiments.training.train_model` and
            :func:`~glsmonai.experiments.variants.predict_round`.
    """
    clock = TrainingClock(len(rounds) * len(models) * len(seeds), len(rounds))
    several = len(seeds) > 1
    rows = []
    for round_ in rounds:  # train and predict every model first: the key-region window is GLS's crop
        sizes = round_.datalist.sizes()
        sizes["test_groups"] = len({c["group"] for c in round_.cases})
        for model in models:
            for seed in seeds:
                run = round_.run(out, model, seed.folder)
                clock.start(model, round_.k, run / "train.log", seed.value if several else None)
                arm = (arms or {}).get(model)
                overrides = seed.overrides
                if arm:
                    sources = {name: round_.run(out, name, seed.folder) for _, name in arm.stages_of}
                    overrides = (*arm.training_overrides(seed.overrides), *arm.stage_from(sources))
                train_s, ran = train_model(arm.model if arm else model, configs, round_.datalist, run, overrides,
                                           presets)
                taken_s = arm.taken_seconds(run) if arm else 0.0
                if taken_s is None:
                    logger.warning("%s: the run it takes %s from recorded no stage seconds (trained before this "
                                   "record was kept): its minutes count only the stages it trains", model,
                                   ", ".join(stage for stage, _ in arm.stages_of))
                train_s += taken_s or 0.0
                clock.finished(model, train_s, ran)
                infer_s = predict_round(round_, run)
                logger.info("%s, fold %d%s: training %.1f min, prediction of %d case(s) %.1f s", model, round_.k,
                            f", seed {seed.value}" if several else "", train_s / 60, sizes[f"n_{round_.split}"], infer_s)
                rows.append({"model": model, "fold": round_.k, "seed": seed.value, **sizes, "train_min": train_s / 60,
                             "infer_s": infer_s})
                for variant in variants:
                    rows.append({"model": f"{model}+{variant}", "fold": round_.k, "seed": seed.value, **sizes,
                                 "train_min": 0.0, "infer_s": predict_round(round_, run, variant)})
    return rows
