"""``glsmonai evaluate``: pair predictions with references and write Dice/IoU/HD95 CSV reports, a
``summary.json`` document in nnU-Net's spirit, and a page to look at (:mod:`glsmonai.evaluation.html_report`)."""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from glsmonai.data.datalist import datalist_keypoints, load_task, scan_list
from glsmonai.data.io import read_image, split_ext
from glsmonai.data.pairs import foreground, pair_predictions, reference_name
from glsmonai.data.prediction_folder import KEYPOINTS_FILE, find_overlay, read_keypoints_csv
from glsmonai.evaluation.html_report import CaseFigures, write_evaluate_report
from glsmonai.evaluation.scoring import COUNTS, score_case, summarise_cases
from glsmonai.keypoints import get_rule
from glsmonai.utils import atomic_write

logger = logging.getLogger(__name__)

__all__ = ["AREAS", "CaseFiles", "FolderScores", "ScoredCase", "compare_summary", "evaluate_folder", "evaluate_summary",
           "score_folder", "statistics_dict", "write_csv", "write_json"]

#: the mask sizes in mm² (NaN where a file records no pixel size), after :data:`~glsmonai.evaluation.scoring.COUNTS`
AREAS = ("ref_mm2", "pred_mm2")


def write_csv(table: pd.DataFrame, path: str | os.PathLike, index: bool = False) -> Path:
    """Write a CSV atomically (temporary sibling, then rename)."""
    return atomic_write(path, lambda tmp: table.to_csv(tmp, index=index))


def _jsonable(value: object) -> object:
    """``value`` with numpy numbers as Python ones, arrays and tuples as lists, paths as strings, and NaN or
    infinite floats as ``None`` (JSON has no NaN; ``json.dump`` would write a token other readers refuse)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def write_json(path: str | os.PathLike, document: Mapping) -> Path:
    """Write ``document`` as indented JSON atomically; NaN becomes ``null``."""
    text = json.dumps(_jsonable(document), indent=2, allow_nan=False) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def package_version() -> str:
    """glsmonai's version, as :data:`glsmonai.__version__` reads it (package metadata, else setup.cfg)."""
    from glsmonai import __version__

    return __version__


def statistics_dict(statistics: pd.DataFrame) -> dict[str, dict]:
    """``{metric: {"n", "mean", "std", "median", "min", "max"}}`` of a
    :func:`~glsmonai.evaluation.scoring.summarise_cases` table (NaN where a statistic is undefined)."""
    return {str(row.pop("metric")): row for row in statistics.to_dict("records")}


def evaluate_summary(
    cases: Sequence[Mapping], statistics: pd.DataFrame, evaluated: Mapping, failures: Sequence[tuple[str, str]] = ()
) -> dict:
    """The ``summary.json`` document of an evaluation.

    Args:
        cases: one dict per scored case (``image``, ``prediction``, ``reference``, ``spacing_mm`` and the
            scores of :func:`~glsmonai.evaluation.scoring.score_case` with ``with_counts``, ``kp_errors``
            as a list).
        statistics: :func:`~glsmonai.evaluation.scoring.summarise_cases` over the cases.
        evaluated: what was evaluated (folders, options), kept as given.
        failures: ``(file, reason)`` of the predictions that could not be scored.

    Returns:
        ``{"tool", "glsmonai_version", "evaluated", "n_cases", "n_failures", "failures", "mean", "statistics",
        "cases"}``: ``mean`` is each metric's mean over the cases where it is defined (``statistics`` has
        its ``n``, ``std``, ``median``, ``min`` and ``max``). NaN values are written as ``null``.
    """
    stats = statistics_dict(statistics)
    return {
        "tool": "glsmonai evaluate",
        "glsmonai_version": package_version(),
        "evaluated": dict(evaluated),
        "n_cases": len(cases),
        "n_failures": len(failures),
        "failures": [{"file": f, "reason": r} for f, r in failures],
        "mean": {metric: values["mean"] for metric, values in stats.items()},
        "statistics": stats,
        "cases": [dict(c) for c in cases],
    }


#: the per-case metric columns a compare ``cases.csv`` may hold, in the order of the summaries
_CASE_METRICS = ("dice", "iou", "hd95", "key_dice", "key_iou", *COUNTS, *AREAS)


def compare_summary(
    cases: pd.DataFrame,
    table: pd.DataFrame,
    paired: pd.DataFrame,
    evaluated: Mapping,
    kp_errors: Mapping[str, Sequence[float]] | None = None,
    kp_windows: Mapping[str, Sequence[Sequence[int]]] | None = None,
    levers: pd.DataFrame | None = None,
) -> dict:
    """The ``summary.json`` document of a ``glsmonai compare`` run.

    Args:
        cases: ``cases.csv``: ``model, fold, image, group`` (and ``seed``) and the per-case scores, one row per model
            and case (and training seed).
        table: ``table.csv``, one row per model.
        paired, levers: ``paired.csv`` and ``levers.csv`` (``None``: no variants).
        evaluated: what was compared (datalist, models, folds, overrides), kept as given.
        kp_errors, kp_windows: per model, the keypoint errors of all its cases and each error's ``(h, w)``
            window (adds the statistics ``kp_error`` and ``kp_missed``).

    Returns:
        ``{"tool", "glsmonai_version", "evaluated", "n_cases", "n_failures", "failures", "models",
        "paired", "levers"}``; ``models`` holds, per model, ``n_cases``, ``mean`` and ``statistics`` of each
        metric (as in :func:`evaluate_summary`), its ``table`` row and its ``cases``.
    """
    models = {}
    for model in dict.fromkeys(cases["model"]):
        one = cases[cases["model"] == model]
        metrics = [m for m in _CASE_METRICS if m in one and (m not in AREAS or one[m].notna().any())]
        errors = np.asarray((kp_errors or {}).get(model, []), np.float64)
        windows = (kp_windows or {}).get(model)
        stats = statistics_dict(summarise_cases(one, metrics, errors, np.asarray(windows) if len(errors) and windows is not None
                                                else None))
        row = table[table["model"] == model].to_dict("records")
        # with several training seeds a case has a row per seed: n_cases counts cases, n_seeds the seeds
        seeds = {"n_seeds": int(one["seed"].nunique())} if "seed" in one and one["seed"].nunique() > 1 else {}
        n_cases = len(one.drop_duplicates(["fold", "image"])) if seeds else len(one)
        models[model] = {"n_cases": n_cases, **seeds, "mean": {m: v["mean"] for m, v in stats.items()},
                         "statistics": stats, "table": row[0] if row else {},
                         "cases": one.drop(columns="model").to_dict("records")}
    return {
        "tool": "glsmonai compare",
        "glsmonai_version": package_version(),
        "evaluated": dict(evaluated),
        "n_cases": max((m["n_cases"] for m in models.values()), default=0),
        "n_failures": 0,  # compare stops at a failed training or prediction
        "failures": [],
        "models": models,
        "paired": paired.to_dict("records"),
        "levers": levers.to_dict("records") if levers is not None else [],
    }


def _predicted_keypoints(pred_dir: Path) -> dict[str, np.ndarray]:
    """``{image stem: (K, 2)}`` from the predictor's ``keypoints.csv`` (empty when there is none)."""
    path = pred_dir / KEYPOINTS_FILE
    return {stem: points for stem, (points, _) in read_keypoints_csv(path).items()} if path.is_file() else {}


@dataclass(frozen=True)
class CaseFiles:
    """One case for :func:`score_folder`.

    Attributes:
        image: the case's name in the tables (the scan's or the reference's file name).
        prediction: the predicted mask ``<stem>_seg.<ext>``; its stem names the case's rows in the folder's
            ``keypoints.csv``.
        reference: the reference label, or ``None`` (the case fails: no reference).
        keypoints: ``(K, 2)`` ``[row, col]`` reference keypoints (e.g. the datalist's), or ``None``: the key
            rule's on the reference, if any.
    """

    image: str
    prediction: Path
    reference: Path | None
    keypoints: np.ndarray | None = None


@dataclass
class ScoredCase:
    """What :func:`score_folder` measured on one case.

    Attributes:
        image, prediction, reference: as in :class:`CaseFiles`.
        spacing: ``(row, col)`` pixel size of the reference in mm, ``None`` when it records none.
        scores: :func:`~glsmonai.evaluation.scoring.score_case` with the pixel counts, without ``kp_errors``.
        kp_errors: ``(K,)`` errors of the predicted keypoints (empty when either side has none).
        window: ``(h, w)`` key-region window of the case (original pixels), or ``None``.
        found: ``(K, 2)`` the predicted keypoints of ``keypoints.csv``, or ``None``.
        centres: ``(K', 2)`` the key-region windows' centres (the rule's keypoints, else the reference's), or ``None``.
    """

    image: str
    prediction: Path
    reference: Path
    spacing: tuple[float, float] | None
    scores: dict
    kp_errors: np.ndarray
    window: tuple[int, int] | None
    found: np.ndarray | None
    centres: np.ndarray | None


@dataclass
class FolderScores:
    """:func:`score_folder`'s result: the scored cases in order and ``(file, reason)`` of each failed one."""

    cases: list[ScoredCase] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)

    def kp_errors(self) -> tuple[np.ndarray, np.ndarray]:
        """``(M,)`` every keypoint error of the cases in order, and ``(M, 2)`` the window of each error's case."""
        errors = [e for c in self.cases for e in c.kp_errors]
        windows = [c.window for c in self.cases for _ in c.kp_errors]
        return np.asarray(errors, np.float64), np.asarray(windows, np.float64).reshape(-1, 2)


def score_folder(
    pred_dir: str | os.PathLike,
    cases: Iterable[CaseFiles],
    label_value: int | None = None,
    key_rule: str | None = None,
    window: tuple[int, int] | Callable[[tuple[int, int]], tuple[int, int]] | None = None,
    on_case: Callable[[int, ScoredCase, np.ndarray, np.ndarray], None] | None = None,
    labels: str | os.PathLike | None = None,
) -> FolderScores:
    """Score one folder of predictions case by case: the folder scorer of both ``evaluate`` and ``compare``.

    Each case's prediction and reference are read, the reference's foreground taken (``label_value``), and
    :func:`~glsmonai.evaluation.scoring.score_case` measures them with the pixel counts and, where the
    reference records it, its pixel size; the predicted keypoints come from ``pred_dir``'s ``keypoints.csv``
    (``predict``'s) and are measured against the case's reference keypoints.

    Args:
        pred_dir: the prediction folder (its ``keypoints.csv``, when there is one).
        cases: the cases, in the order of the result.
        label_value: the reference label that is the foreground (default: any value above 0).
        key_rule: a keypoint rule (:func:`~glsmonai.keypoints.get_rule`) run on each reference: its keypoints
            centre the key-region windows and stand for the reference keypoints a case does not give.
        window: the key-region window ``(h, w)`` in original pixels, or a function of the reference's
            ``(rows, cols)`` giving it (e.g. a GLS model's own crop, which depends on the scan's size).
        on_case: called after each scored case with its index in the result, the case and the two binary
            masks (e.g. to draw its figure while the masks are in memory).
        labels: where the references were looked for, named in the failure of a case without one.

    Returns:
        the scored cases and the failures: a case whose files cannot be read, or whose prediction and
        reference differ in shape, or whose keypoints do not match, is logged and left out, and the others
        are scored.
    """
    predicted = _predicted_keypoints(Path(pred_dir))
    rule = get_rule(key_rule) if key_rule else None
    result = FolderScores()
    for case in cases:
        name = reference_name(case.prediction)
        try:
            if case.reference is None:
                raise FileNotFoundError(f"no reference {name}.*{f' in {labels}' if labels is not None else ''} "
                                        f"for {case.prediction.name}")
            pred = read_image(case.prediction)[0] > 0
            ref_map, geometry = read_image(case.reference)
            ref = foreground(ref_map, label_value)
            points = rule(ref_map) if rule is not None else None  # the key-region windows' centres
            ref_points = case.keypoints if case.keypoints is not None else points
            size = window(geometry.shape) if callable(window) else window
            found = predicted.get(name)
            spacing = geometry.pixel_size_mm()
            try:
                scores = score_case(pred, ref, ref_points, found, size, window_points=points, with_counts=True,
                                    spacing=spacing)
            except ValueError as err:
                raise ValueError(f"{case.prediction} vs {case.reference}: {err}") from None
        except (OSError, ValueError) as err:
            logger.error("%s", err)
            result.failures.append((str(case.prediction), str(err)))
            continue
        errors = np.asarray(scores.pop("kp_errors", ()), np.float64)
        scored = ScoredCase(case.image, case.prediction, case.reference, spacing, scores, errors, size, found,
                            points if points is not None else ref_points)
        result.cases.append(scored)
        if on_case is not None:
            on_case(len(result.cases) - 1, scored, pred, ref)
    return result


def evaluate_folder(
    pred_dir: str | os.PathLike,
    labels_dir: str | os.PathLike,
    csv_path: str | os.PathLike,
    label_value: int | None = None,
    split: str = "testing",
    dataset_dir: str | os.PathLike | None = None,
    key_rule: str | None = None,
    window: tuple[int, int] | None = None,
    html: bool = False,
    error_map: str | os.PathLike | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, list[tuple[str, str]]]:
    """Score every ``<name>_seg.<ext>`` in ``pred_dir`` against ``<name>.<ext>`` in ``labels_dir``
    (a reference ``<name>`` with another extension is used when none has the same one).

    Writes ``csv_path`` (``image, dice, iou, hd95`` per case, scored by :func:`score_folder`) and
    ``<csv stem>_summary.csv`` beside it.
    When ``pred_dir`` holds the predictor's ``keypoints.csv`` and references keypoints are known (given
    by the datalist, or found by ``key_rule`` on each reference), also ``<csv stem>_keypoints.csv``
    (``image, k, error`` in original pixels) and summary rows ``kp_error`` and, with ``window``,
    ``kp_missed`` (the rate of errors above half the window's smaller side, in the ``mean`` column).

    Also writes ``<csv stem>_summary.json`` (:func:`evaluate_summary`: per case and mean Dice, IoU, HD95,
    key-region Dice and IoU, TP / FP / FN pixel counts, the reference's and the prediction's size in
    pixels and, where the reference file records its pixel size, in mm², keypoint errors; what was
    evaluated and what failed) and, with ``html``, the page ``<csv stem>.html`` with its figures in
    ``<csv stem>_files/`` (:func:`~glsmonai.evaluation.html_report.write_evaluate_report`; each case's
    thumbnail is made from ``predict``'s ``overlays/`` picture, else drawn from the masks, on the scan
    when ``labels_dir`` is a datalist). Names follow the CSV's, so two evaluations written into one
    folder keep their own.

    Args:
        labels_dir: a folder of references, or a datalist JSON whose ``split`` gives the references
            of its images (then ``label_value`` defaults to the datalist task's).
        label_value: the reference label that is the foreground (default: any value above 0).
        key_rule, window: with both, also Dice and IoU inside the ``window``-sized regions (original
            pixels) centred on the keypoints that the rule finds on each reference (``key_dice``,
            ``key_iou``): where GLS is meant to win.
        html: also write the page.
        error_map: an error-frequency map PNG (``glsmonai errormap --out``) shown on the page.

    Returns:
        ``(per_case, summary, failures)``; a prediction without reference, or with a reference of
        another size, is a failure naming the file, and evaluation goes on.
    """
    labels_dir, csv_path = Path(labels_dir), Path(csv_path)
    pairs = pair_predictions(pred_dir, labels_dir, split, dataset_dir)
    if label_value is None and labels_dir.is_file():
        label_value = load_task(labels_dir).get("label_value")
    if (key_rule is None) != (window is None):
        raise ValueError("key-region metrics need both a keypoint rule and a window size")
    columns = ["image", "dice", "iou", "hd95"] + (["key_dice", "key_iou"] if key_rule else [])
    # a datalist's keypoints are the references of the predicted ones (only read when there are predicted ones)
    given = datalist_keypoints(labels_dir, split, dataset_dir) \
        if labels_dir.is_file() and (Path(pred_dir) / "keypoints.csv").is_file() else {}
    given = {split_ext(image)[0]: np.asarray(points, float) for image, points in given.items()}
    page = csv_path.with_name(f"{csv_path.stem}.html")
    figures = CaseFigures(page) if html else None
    scans = {split_ext(image)[0]: image for image, _ in scan_list(labels_dir, split, dataset_dir)} \
        if html and labels_dir.is_file() else {}  # a datalist names the scans: the drawn thumbnails show them
    links: list[dict[str, str] | None] = []

    def figure(index: int, case: ScoredCase, pred: np.ndarray, ref: np.ndarray) -> None:
        name = reference_name(case.prediction)
        keypoints = case.found if case.found is not None else (case.centres if key_rule else None)
        links.append(_case_figure(figures, index, Path(pred_dir), name, case.prediction, pred, ref, scans.get(name),
                                  keypoints, window))

    wanted = [CaseFiles(ref.name if ref is not None else pred.name, pred, ref, given.get(reference_name(pred)))
              for pred, ref in pairs]
    scored = score_folder(pred_dir, wanted, label_value, key_rule, window, figure if figures is not None else None,
                          labels=labels_dir)
    failures = scored.failures
    rows = [{"image": c.image, **c.scores} for c in scored.cases]
    kp_rows = [{"image": c.image, "k": k, "error": e} for c in scored.cases for k, e in enumerate(c.kp_errors)]
    cases = [{"image": c.image, "prediction": os.path.abspath(c.prediction), "reference": os.path.abspath(c.reference),
              "spacing_mm": c.spacing, **c.scores, **({"kp_errors": list(c.kp_errors)} if len(c.kp_errors) else {})}
             for c in scored.cases]
    table = pd.DataFrame(rows, columns=columns)
    kp_table = pd.DataFrame(kp_rows, columns=["image", "k", "error"])
    if kp_rows:
        write_csv(kp_table, csv_path.with_name(f"{csv_path.stem}_keypoints.csv"))
    summary = summarise_cases(table, columns[1:], kp_table["error"].to_numpy(), window)
    write_csv(table, csv_path)
    write_csv(summary, csv_path.with_name(f"{csv_path.stem}_summary.csv"))
    full = pd.DataFrame(rows, columns=[*columns, *COUNTS, *AREAS])
    metrics = [*columns[1:], *COUNTS, *(a for a in AREAS if full[a].notna().any())]
    statistics = summarise_cases(full, metrics, kp_table["error"].to_numpy(), window)
    summary_json = csv_path.with_name(f"{csv_path.stem}_summary.json")
    evaluated = {
        "predictions": os.path.abspath(pred_dir), "labels": os.path.abspath(labels_dir),
        "split": split if labels_dir.is_file() else None,
        "dataset_dir": os.path.abspath(dataset_dir) if dataset_dir is not None else None,
        "label_value": label_value, "key_rule": key_rule, "window": list(window) if window else None,
        "csv": os.path.abspath(csv_path), "summary_json": os.path.abspath(summary_json),
    }
    document = evaluate_summary(cases, statistics, evaluated, failures)
    write_json(summary_json, document)
    if html:
        write_evaluate_report(page, document, statistics, links, error_map)
        logger.info("report page: %s", page)
    return table, summary, failures


def _case_figure(
    figures: CaseFigures, index: int, pred_dir: Path, name: str, pred_path: Path, pred: np.ndarray, ref: np.ndarray,
    scan: Path | None, keypoints: np.ndarray | None, window: tuple[int, int] | None,
) -> dict[str, str] | None:
    """A case's thumbnail and full-size overlay links: ``predict``'s overlay when it drew one, else drawn here
    (on the scan when it is known and of the mask's size). A figure that cannot be made is logged and
    left out; the scores stand."""
    try:
        overlay = find_overlay(pred_dir, pred_path)  # the one predict drew, when it did
        if overlay is not None:
            return figures.from_overlay(index, overlay)
        image = read_image(scan)[0] if scan is not None else None
        return figures.draw(index, pred, ref, image, keypoints, window)
    except (OSError, ValueError) as err:
        logger.warning("%s: no thumbnail (%s)", pred_path, err)
        return None
