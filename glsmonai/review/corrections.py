"""``glsmonai corrections``: what N review corrections buy when the model is fine-tuned on them.

The review loop (``glsmonai review``, ``datalist review``, ``finetune.json``) is simulated end to end on labelled
scans, with the same code a reviewer's clicks run:

1. the labelled cases of one datalist split are dealt by group (patient) into a *pool*, the scans a reviewer
   goes through, and the *scored* scans no one corrects (``pool_fraction`` of the groups in the pool);
2. each trained model folder (one per training seed: the spread between training runs is part of the result)
   predicts both, with its recorded options;
3. for every count N, the model's first N pool scans in a seeded order (nested: the 4 scans of N = 4 are among
   the 8 of N = 8) are *corrected*: their reference keypoints are given as prompts
   (:meth:`~glsmonai.inference.Predictor.predict` with ``keypoints``), the re-segmented mask is accepted into the
   review folder (:meth:`~glsmonai.review.folder.ReviewFolder.accept`), as the app does on a drag and accept;
   with ``control``, the same N scans are also *accepted* as the model predicted them, without a correction,
   to tell what the corrections add from what fine-tuning on more scans adds;
4. ``glsmonai datalist review`` turns the review folder into a datalist, the bundle fine-tunes the model on it
   (``train.json`` + ``finetune.json``, ``--init_model_dir``), and the fine-tuned model predicts the scored scans;
5. every arm's scored predictions are scored against their references (Dice, key-region Dice, HD95), and paired
   with the model before fine-tuning (``N=0``) scan by scan, seed with seed.

Writes into ``out``: ``pool.json`` / ``scored.json`` (the two sets), ``seed<s>/`` per model folder (its predictions,
review folders, fine-tuned models and their logs), ``cases.csv``, ``table.csv`` / ``table.md``, ``paired.csv`` /
``paired.md``. A rerun reuses every fine-tuning that finished (``train_time.json``, as compare's trainings).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from glsmonai.data.datalist import write_datalist
from glsmonai.data.io import read_image, split_ext
from glsmonai.data.pairs import prediction_path
from glsmonai.evaluation.paired import paired_markdown, paired_table
from glsmonai.evaluation.reports import CaseFiles, score_folder
from glsmonai.experiments.compare import key_window
from glsmonai.experiments.rounds import DatalistFile
from glsmonai.experiments.training import TIMING_FILE, run_bundle
from glsmonai.inference import Predictor, run_inference
from glsmonai.keypoints import get_rule
from glsmonai.model_folder import read_model_info
from glsmonai.resources import configs_dir
from glsmonai.review.datalist import review_datalist
from glsmonai.review.folder import ReviewFolder
from glsmonai.utils import atomic_write

logger = logging.getLogger(__name__)

__all__ = ["BASELINE", "correction_gain", "deal_pool"]

#: the arm of the model as trained, before any fine-tuning
BASELINE = "N=0"
#: who the review table says decided
REVIEWER = "simulated"


def deal_pool(cases: Sequence[dict], pool_fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Deal ``cases`` by group into the pool a reviewer corrects and the scans scored: ``round(pool_fraction * G)``
    of the ``G`` groups, drawn with ``seed``, go to the pool (at least one group to each side).

    Raises:
        ValueError: fewer than two groups, or ``pool_fraction`` outside (0, 1).
    """
    if not 0 < pool_fraction < 1:
        raise ValueError(f"--pool-fraction must be between 0 and 1, got {pool_fraction}")
    groups = sorted({c["group"] for c in cases})
    if len(groups) < 2:
        raise ValueError(f"the corrections need cases of two groups at least (a pool and scored scans), got {groups}")
    n_pool = min(len(groups) - 1, max(1, round(pool_fraction * len(groups))))
    pool = set(np.random.default_rng(seed).permutation(groups)[:n_pool].tolist())
    return [c for c in cases if c["group"] in pool], [c for c in cases if c["group"] not in pool]


def _reference_keypoints(case: dict, rule: str | None) -> np.ndarray:
    """A case's reference keypoints ``(K, 2)`` in original pixels: the datalist's, else the task's rule on its label
    map as training runs it (on the map itself: ``lv_apex_base`` reads the LV and the atrium from CAMUS's labels)."""
    if case.get("keypoints") is not None:
        return np.asarray(case["keypoints"], dtype=np.float64).reshape(-1, 2)
    if rule is None:
        raise ValueError(f"{case['image']}: the datalist gives no keypoints and its task names no keypoint_rule")
    label, _ = read_image(case["label"])
    return np.asarray(get_rule(rule)(label), dtype=np.float64).reshape(-1, 2)


def _write_set(path: Path, cases: Sequence[dict], dataset_dir: Path, task: dict, name: str) -> Path:
    """The cases as the ``testing`` split of a datalist at ``path`` (paths relative to ``dataset_dir``)."""
    def relative(p: str) -> str:
        return os.path.relpath(Path(p).resolve(), dataset_dir.resolve())

    entries = [{**{k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in c.items() if k not in ("image", "label")},
                "image": relative(c["image"]), "label": relative(c["label"])} for c in cases]
    return write_datalist(path, {"name": name, "dataset_dir": str(dataset_dir.resolve()), "task": task,
                                 "testing": entries})


def _fine_tune(model_dir: Path, datalist: Path, out: Path, seed: int, overrides: Sequence[str]) -> tuple[float, bool]:
    """Fine-tune ``model_dir`` on ``datalist`` into ``out`` (the bundle: ``train.json`` + ``finetune.json``);
    the seconds it took, and whether it ran now. A fine-tuning that finished before with the same overrides and
    the same datalist content is not run again.

    Raises:
        RuntimeError: the training failed (the message names its log).
    """
    digest = hashlib.sha256(datalist.read_bytes()).hexdigest()
    recorded = ["init_model_dir=" + str(model_dir), "datalist_sha256=" + digest, "--seed", str(seed), *overrides]
    timing = out / TIMING_FILE
    if timing.is_file():
        done = json.loads(timing.read_text())
        if done.get("overrides") == recorded:
            return float(done["seconds"]), False
    configs = configs_dir()
    files = [str(configs / "train.json"), str(configs / "finetune.json")]
    dataset_dir = json.loads(datalist.read_text())["dataset_dir"]
    arguments = ["--init_model_dir", str(model_dir), "--dataset_dir", str(dataset_dir), "--datalist", str(datalist),
                 "--output_dir", str(out), "--progress", "false", "--seed", str(seed), *overrides]
    seconds = run_bundle(files, arguments, out, "fine-tuning")
    record = json.dumps({"seconds": seconds, "overrides": recorded})
    atomic_write(timing, lambda tmp: tmp.write_text(record))
    return seconds, True


def _review(pool_predictions: Path, pool_list: Path, folder: Path, predictor: Predictor, chosen: Sequence[dict],
            rule: str | None, correct: bool) -> None:
    """A review folder ``folder`` (a copy of the pool's predictions) in which the ``chosen`` scans are corrected to
    their reference keypoints (``correct``) or accepted as predicted, as the review app records them."""
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(pool_predictions, folder, ignore=shutil.ignore_patterns("overlays"))
    review = ReviewFolder(folder, pool_list)
    for case in chosen:
        name = Path(case["image"]).name
        if correct:
            prediction = predictor.predict(case["image"], keypoints=_reference_keypoints(case, rule))
            review.accept(name, prediction, "keypoints: the reference's (simulated correction)", REVIEWER)
        else:
            review.accept(name, None, "", REVIEWER)


def _score(predictions: Path, cases: Sequence[dict], window, label_value: int | None, arm: str, seed: int) -> list[dict]:
    """One arm's scores on the scored cases: a row per case.

    Raises:
        RuntimeError: a case could not be scored (named).
    """
    files = [CaseFiles(Path(c["image"]).name, prediction_path(predictions, *split_ext(Path(c["image"]))),
                       Path(c["label"]), c.get("keypoints")) for c in cases]
    scored = score_folder(predictions, files, label_value, window=window)
    if scored.failures:
        raise RuntimeError(f"{arm}, seed {seed}: {scored.failures[0][0]} could not be scored: {scored.failures[0][1]}")
    groups = {Path(c["image"]).name: c["group"] for c in cases}
    return [{"model": arm, "fold": 0, "seed": seed, "image": case.image, "group": groups[case.image],
             **{m: case.scores.get(m, np.nan) for m in ("dice", "iou", "hd95", "key_dice")}} for case in scored.cases]


def correction_gain(
    model_dirs: Sequence[str | os.PathLike],
    datalist: str | os.PathLike,
    dataset_dir: str | os.PathLike,
    out: str | os.PathLike,
    counts: Sequence[int] = (4, 8),
    split: str = "testing",
    pool_fraction: float = 0.5,
    seed: int = 0,
    control: bool = False,
    overrides: Sequence[str] = (),
    n_boot: int = 10000,
) -> pd.DataFrame:
    """Measure what ``counts`` review corrections buy (see the module's description).

    Args:
        model_dirs: trained model folders of one GLS model, one per training seed (their index is the seed in the
            tables, and seeds the scans each one's reviewer is given).
        datalist, dataset_dir, split: the labelled cases, dealt into the pool and the scored scans.
        out: output folder; a rerun reuses what finished.
        counts: the numbers N of corrected pool scans (each at most the pool's size).
        pool_fraction: the share of groups in the pool.
        seed: seed of the deal and of each model's scan order.
        control: also fine-tune on the same N scans accepted uncorrected (arms ``accepted N=<n>``).
        overrides: bundle overrides of the fine-tuning, ``--key value`` (e.g. ``--finetune_epochs 20``).
        n_boot: bootstrap resamples of the paired intervals.

    Returns:
        the table: one row per arm (``N=0``, ``corrected N=<n>``, ``accepted N=<n>``) with its mean scores, the
        number of scored cases and seeds, and the fine-tuning minutes per seed.

    Raises:
        ValueError: no model folder, a count below 1 or above the pool's size, too few groups.
        FileNotFoundError: a model folder or the datalist is missing.
        RuntimeError: a fine-tuning or a prediction failed.
    """
    if not model_dirs:
        raise ValueError("give at least one trained model folder (-m)")
    out, models = Path(out), [Path(m) for m in model_dirs]
    for model in models:
        if not (model / "gls_model.json").is_file():
            raise FileNotFoundError(f"{model}: not a trained model folder (no gls_model.json)")
    source = DatalistFile.read(datalist, dataset_dir)
    cases = [c for c in source.cases(split) if c.get("label")]
    pool, scored = deal_pool(cases, pool_fraction, seed)
    bad = [n for n in counts if not 1 <= n <= len(pool)]
    if bad:
        raise ValueError(f"--counts {bad}: each count must be between 1 and the pool's {len(pool)} scans")
    task, rule = source.task, source.task.get("keypoint_rule")
    label_value = task.get("label_value")
    pool_list = _write_set(out / "pool.json", pool, source.dataset_dir, task, "the pool a reviewer corrects")
    scored_list = _write_set(out / "scored.json", scored, source.dataset_dir, task, "the scans no one corrects")
    logger.info("corrections: pool of %d scans (%d groups), %d scored scans (%d groups), N = %s, %d model(s)",
                len(pool), len({c['group'] for c in pool}), len(scored), len({c['group'] for c in scored}),
                list(counts), len(models))
    window = key_window(read_model_info(models[0]))
    rows, minutes, reviewed = [], [], []
    for s, model in enumerate(models):
        run = out / f"seed{s}"
        base = run / "scored" / BASELINE
        run_inference(scored_list, base, model, overlays=False, raise_on_failure=True, resume=True)
        rows += _score(base, scored, window, label_value, BASELINE, s)
        run_inference(pool_list, run / "pool", model, overlays=False, raise_on_failure=True, resume=True)
        order = np.random.default_rng([seed, s]).permutation(len(pool))
        predictor = Predictor(model)
        for n in counts:
            chosen = [pool[i] for i in order[:n]]
            for arm, correct in (("corrected", True), ("accepted", False))[: 2 if control else 1]:
                name, where = f"{arm} N={n}", run / f"{arm}{n}"
                tuned = where / "finetune"
                _review(run / "pool", pool_list, where / "review", predictor, chosen, rule, correct)
                review_datalist(where / "review", pool_list, where / "datalist.json", model_dir=model, seed=seed)
                seconds, ran = _fine_tune(model.resolve(), where / "datalist.json", tuned, s, overrides)
                minutes.append({"model": name, "seed": s, "finetune_min": seconds / 60})
                predictions = run / "scored" / name.replace(" ", "_")
                if ran and predictions.exists():  # an earlier model's predictions
                    shutil.rmtree(predictions)
                run_inference(scored_list, predictions, tuned / "models", overlays=False, raise_on_failure=True,
                              resume=True)
                rows += _score(predictions, scored, window, label_value, name, s)
        # the corrected scans themselves (the largest N holds every smaller one's): the model's mask, the corrected
        chosen = [pool[i] for i in order[:max(counts)]]
        largest = run / f"corrected{max(counts)}" / "review"
        reviewed += _score(run / "pool", chosen, window, label_value, "as predicted", s)
        reviewed += _score(largest / "corrected", chosen, window, label_value, "corrected", s)
    table_cases, pool_cases = pd.DataFrame(rows), pd.DataFrame(reviewed)
    atomic_write(out / "cases.csv", lambda tmp: table_cases.to_csv(tmp, index=False))
    atomic_write(out / "corrected_scans.csv", lambda tmp: pool_cases.to_csv(tmp, index=False))
    return _write_tables(out, table_cases, pd.DataFrame(minutes, columns=["model", "seed", "finetune_min"]),
                         pool_cases, len(pool), max(counts), n_boot, seed)


def _write_tables(out: Path, cases: pd.DataFrame, minutes: pd.DataFrame, reviewed: pd.DataFrame, n_pool: int,
                  largest: int, n_boot: int, seed: int) -> pd.DataFrame:
    """``table.csv`` / ``.md`` (per arm: means, cases, seeds, fine-tuning minutes) and ``paired.csv`` / ``.md``
    (every arm against ``N=0``, seed with seed; with the control, each corrected arm against its accepted one;
    then the corrected scans themselves, corrected against as predicted)."""
    arms = list(dict.fromkeys(cases["model"]))
    table = cases.groupby("model", sort=False)[["dice", "iou", "key_dice", "hd95"]].mean().reindex(arms)
    table["n_cases"] = cases.groupby("model", sort=False)["image"].nunique().reindex(arms)
    table["n_seeds"] = cases.groupby("model", sort=False)["seed"].nunique().reindex(arms)
    table["finetune_min"] = minutes.groupby("model")["finetune_min"].mean().reindex(arms).fillna(0.0)
    table = table.reset_index()
    paired = paired_table(cases, BASELINE, n_boot=n_boot, seed=seed, paired_seeds=True)
    text = paired_markdown(paired, n_boot, seed, 0.95, paired_seeds=True)
    controls = [a for a in arms if a.startswith("accepted ")]
    for accepted in controls:
        corrected = accepted.replace("accepted", "corrected", 1)
        pair = paired_table(cases[cases["model"].isin([accepted, corrected])], accepted, n_boot=n_boot, seed=seed,
                            paired_seeds=True)
        paired = pd.concat([paired, pair], ignore_index=True)
        text += f"\n\n## {corrected} against {accepted}: what the corrections add to fine-tuning on the same scans\n\n"
        text += paired_markdown(pair, n_boot, seed, 0.95, paired_seeds=True)
    # each model corrected scans of its own: every (model, scan) is a case of its patient
    each = reviewed.assign(image=reviewed["seed"].map("seed{}/".format) + reviewed["image"], seed=0)
    direct = paired_table(each, "as predicted", n_boot=n_boot, seed=seed)
    paired = pd.concat([paired, direct], ignore_index=True)
    means = reviewed.groupby("model", sort=False)[["dice", "key_dice"]].mean()
    text += ("\n\n## The corrected scans themselves: the corrected mask against the model's own\n\n"
             f"Mean Dice as predicted {means.loc['as predicted', 'dice']:.4f}, corrected "
             f"{means.loc['corrected', 'dice']:.4f} (key-region {means.loc['as predicted', 'key_dice']:.4f}, "
             f"{means.loc['corrected', 'key_dice']:.4f}) over {len(each) // 2} corrections ({largest} per model, "
             f"{reviewed['image'].nunique()} distinct pool scans; each model's scans are cases of their patients)."
             "\n\n"
             + paired_markdown(direct, n_boot, seed, 0.95))
    atomic_write(out / "table.csv", lambda tmp: table.to_csv(tmp, index=False))
    atomic_write(out / "paired.csv", lambda tmp: paired.to_csv(tmp, index=False))
    head = ("| arm | Dice | IoU | key-region Dice | HD95 (px) | scored cases | seeds | fine-tuning (min) |\n"
            "|---|---|---|---|---|---|---|---|\n")
    body = "".join(f"| {r.model} | {r.dice:.4f} | {r.iou:.4f} | {r.key_dice:.4f} | {r.hd95:.2f} | {r.n_cases} | "
                   f"{r.n_seeds} | {r.finetune_min:.2f} |\n" for r in table.itertuples())
    note = (f"\nA pool of {n_pool} scans; `corrected N=n`: the model fine-tuned on n pool scans whose keypoints were "
            "set to the reference's and re-segmented; `accepted N=n`: on the same n scans as the model predicted "
            "them; scored on the scans no one corrected. Means over every seed's predictions.\n")
    atomic_write(out / "table.md", lambda tmp: tmp.write_text(head + body + note))
    atomic_write(out / "paired.md", lambda tmp: tmp.write_text(text + "\n"))
    return table
