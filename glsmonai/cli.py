"""Command line: ``glsmonai synth | datalist | predict | evaluate | measure | compare | compare-pool | paired | errormap | bench |
bundle | export | review | corrections`` (training runs through the MONAI bundle)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]

logger = logging.getLogger("glsmonai")


def _synth(args: argparse.Namespace) -> int:
    from pathlib import Path

    from glsmonai.measure.phantoms import write_phantoms

    existing = Path(args.out) / "datalist.json"
    if args.if_absent and existing.is_file():
        logger.info("%s exists: nothing generated", existing)
        return 0
    path = write_phantoms(args.kind, args.out, args.n, args.seed, args.size, args.val_fraction, args.test_fraction)
    logger.info("datalist: %s", path)
    return 0


def _datalist(args: argparse.Namespace) -> int:
    from glsmonai.data.builders import camus_datalist, folder_datalist

    if args.source == "review":
        from glsmonai.review.datalist import review_datalist

        review_datalist(args.pred, args.images, args.out, args.model, args.split, args.dataset_dir, args.val_fraction,
                        args.seed, args.group_regex)
    elif args.source == "camus":
        camus_datalist(args.root, args.out, args.views, args.phases, args.target, args.val_fraction,
                       args.test_fraction, args.seed, args.official_split)
    else:
        folder_datalist(args.images, args.labels, args.out, args.keypoints, args.rule, args.dataset_dir,
                        args.val_fraction, args.test_fraction, args.seed, args.label_value, args.group_regex)
    return 0


def _components(value: str) -> int | str:
    """``--components``: a number (0: off) or ``task``."""
    if value == "task":
        return value
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"expected a number (0: off) or 'task', got {value!r}")
    return int(value)


def _predict_options(args: argparse.Namespace):
    """``predict``'s options as :class:`~glsmonai.inference.options.PredictOptions` (unset: as the model folder records)."""
    from glsmonai.inference.options import PredictOptions

    return PredictOptions(tta=args.tta, components=args.components, blend=args.blend, min_confidence=args.min_confidence,
                          amp=args.amp, fusion=not args.no_fusion, keypoint_band=args.keypoint_band, stage=args.stage,
                          engine=args.engine, exported=args.exported)


def _predict(args: argparse.Namespace) -> int:
    from glsmonai.inference import run_inference

    failures = run_inference(args.input, args.output, args.model, _predict_options(args), device=args.device,
                             labels_dir=args.labels, overlays=not args.no_overlays, split=args.split,
                             dataset_dir=args.dataset_dir, batch_size=args.batch_size, num_workers=args.num_workers,
                             num_parts=args.num_parts, part_id=args.part_id, resume=args.resume,
                             keypoints=args.keypoints)
    if args.measure:  # the measures of what was just predicted, as `glsmonai measure` gives them
        from pathlib import Path

        labels = args.labels or (args.input if Path(args.input).is_file() else None)
        failures = list(failures) + _run_measure(args.output, labels, args.measure,
                                                 args.measure_csv or str(Path(args.output) / "measures.csv"),
                                                 args.split, args.dataset_dir)
    if failures:
        print(f"{len(failures)} file(s) failed:", file=sys.stderr)
        for path, reason in failures:
            print(f"  {path}: {reason}", file=sys.stderr)
        return 1
    return 0


def _run_measure(pred, labels, task, csv, split, dataset_dir, spacing=None, label_value=None,
                 use_keypoints=True) -> list[tuple[str, str]]:
    """Measure a prediction folder, print the agreement table (or where the table went); the failures."""
    from glsmonai.measure import measure_folder

    result = measure_folder(pred, task, csv, labels, split, dataset_dir, tuple(spacing) if spacing else None,
                            label_value, use_keypoints)
    if len(result.agreement):
        print(result.agreement.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"{len(result.measures)} scan(s) measured: {csv}")
    return result.failures


def _measure(args: argparse.Namespace) -> int:
    failures = _run_measure(args.pred, args.labels, args.task, args.csv, args.split, args.dataset_dir, args.spacing,
                            args.label_value, not args.ignore_keypoints)
    for path, reason in failures:
        print(f"failed: {path}: {reason}", file=sys.stderr)
    return 1 if failures else 0


def _evaluate(args: argparse.Namespace) -> int:
    from glsmonai.evaluation.reports import evaluate_folder

    table, summary, failures = evaluate_folder(
        args.pred, args.labels, args.csv, args.label_value, args.split, args.dataset_dir, args.key_rule,
        tuple(args.window) if args.window else None, html=not args.no_html, error_map=args.error_map,
    )
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    for path, reason in failures:
        print(f"failed: {path}: {reason.removeprefix(f'{path}: ')}", file=sys.stderr)
    print(f"mean Dice {table['dice'].mean():.4f} over {table['dice'].notna().sum()} image(s)")
    return 1 if failures else 0


def _datalist_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--split", default="testing", help="datalist split when a datalist JSON is given (default testing)")
    p.add_argument("--dataset-dir", help="folder the datalist paths are relative to (default: its 'dataset_dir' or folder)")


def _compare(args: argparse.Namespace) -> int:
    from glsmonai.experiments.compare import compare
    from glsmonai.experiments.training import Arm

    arms = [Arm.parse(words) for words in args.arm or []]
    overrides: list[str] = ["--epochs", str(args.epochs)] if args.epochs else []
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        overrides += [f"--{key}", value]
    table = compare(args.datalist, args.dataset_dir, args.out, args.models, overrides, n_panels=args.panels,
                    folds=args.folds, reference=args.reference, seed=args.seed, val_fraction=args.val_fraction,
                    variants=args.variants, presets=args.preset, seeds=args.seeds, test=args.test,
                    only_folds=args.fold, arms=arms)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


def _compare_pool(args: argparse.Namespace) -> int:
    from glsmonai.experiments.pool import pool_runs

    table = pool_runs(args.runs, args.out, reference=args.reference, seed=args.seed)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


def _paired(args: argparse.Namespace) -> int:
    from glsmonai.evaluation.paired import paired_runs

    _, text = paired_runs(args.before, args.after, args.models, seed=args.seed)
    print(text)
    return 0


def _errormap(args: argparse.Namespace) -> int:
    from pathlib import Path

    from glsmonai.evaluation.errormap import error_map_from_folders, save_error_map, save_rule, suggest_keypoints

    emap, n_cases = error_map_from_folders(args.pred, args.labels, args.label_value, n_components=args.objects,
                                           margin=args.margin)
    if n_cases == 0:
        logger.error("no case had %d reference component(s): no error map", args.objects)
        return 1
    save_error_map(args.out, emap)
    logger.info("error map of %d case(s): %s (and .npy)", n_cases, args.out)
    if args.suggest:
        spots = suggest_keypoints(emap, args.objects, args.suggest)
        rule_path = Path(args.out).with_name(f"{Path(args.out).stem}_rule.json")
        save_rule(rule_path, spots, args.objects, args.margin, args.label_value)
        for i, spot in enumerate(spots):
            logger.info("key region %d: component %d at (%.2f, %.2f) of its box, heat %.3f", i, spot["component"],
                        spot["u"], spot["v"], spot["heat"])
        print(f"keypoint rule: errormap:{rule_path}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from glsmonai.export import DEFAULT_EXPORT_DIR, export_model

    out = args.output or DEFAULT_EXPORT_DIR
    record = export_model(args.model, out, args.format, args.stage, args.device)
    for fmt, entry in record["files"].items():
        print(f"{out}/{entry['file']} ({fmt}, {record['stage']}): largest difference from PyTorch "
              f"{entry['max_abs_diff_all']:.3g}")
    print(f"{out}/export.json")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from glsmonai.bench import BenchSettings, markdown_report, run_bench, write_report

    result = run_bench(BenchSettings.from_args(args))
    write_report(result, args.out)
    print(markdown_report(result))
    return 0


def _corrections(args: argparse.Namespace) -> int:
    from glsmonai.review.corrections import correction_gain

    overrides: list[str] = []
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        overrides += [f"--{key}", value]
    table = correction_gain(args.model, args.datalist, args.dataset_dir, args.out, args.counts, args.split,
                            args.pool_fraction, args.seed, args.control, overrides)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print((Path(args.out) / "paired.md").read_text())
    return 0


def _review(args: argparse.Namespace) -> int:
    import importlib.util

    missing = [name for name in ("fastapi", "uvicorn") if importlib.util.find_spec(name) is None]
    if missing:
        raise ValueError(f"glsmonai review needs {' and '.join(missing)}: pip install 'glsmonai[review]'")
    import torch

    from glsmonai.inference import Predictor
    from glsmonai.review import Review, ReviewFolder, reviewer_name
    from glsmonai.review.web import serve

    if args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    folder = ReviewFolder(args.pred, args.images, args.labels, args.split, args.dataset_dir)
    predictor = Predictor(args.model[0] if len(args.model) == 1 else args.model, args.device)
    try:
        serve(Review(folder, predictor, reviewer_name(args.reviewer), args.task), args.host, args.port)
    except OSError as err:
        raise ValueError(str(err)) from None
    return 0


def _bundle(args: argparse.Namespace) -> int:
    from glsmonai.resources import bundle_dir, copy_bundle, record_versions

    if args.action == "versions":
        dest = args.dest or "bundles/gls/configs/metadata.json"
        meta = record_versions(dest)
        logger.info("%s: MONAI %s, PyTorch %s, NumPy %s and %d packages recorded", dest, meta["monai_version"],
                    meta["pytorch_version"], meta["numpy_version"], len(meta["required_packages_version"]))
    elif args.action == "copy":
        dest = copy_bundle(args.dest or "gls")
        logger.info("bundle copied to %s: python -m monai.bundle run training --config_file %s", dest,
                    dest / "configs" / "train.json")
    else:
        print(bundle_dir())
    return 0


def _version() -> str:
    """The package's one version (:func:`glsmonai.package_version`)."""
    from glsmonai import package_version

    return package_version()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glsmonai",
        description="Global-Local Segmentation of small, blurred key regions (MONAI). Training runs through the bundle: "
        "python -m monai.bundle run training --config_file bundles/gls/configs/train.json")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="write a phantom data set (images/, labels/, datalist.json, measures_true.csv)")
    p.add_argument("kind", choices=["iris", "echo"], help="phantom kind: iris (AS-OCT) or echo (apical echocardiography)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--n", type=int, default=60, help="number of cases (default 60)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="image rows and columns")
    p.add_argument("--val-fraction", type=float, default=0.2, help="share of the cases in the validation split (default 0.2)")
    p.add_argument("--test-fraction", type=float, default=0.2, help="share of the cases in the testing split (default 0.2)")
    p.add_argument("--if-absent", action="store_true", help="do nothing when OUT/datalist.json exists")
    p.set_defaults(func=_synth)

    p = sub.add_parser("datalist", help="build a datalist JSON (CAMUS or a folder of images and labels)")
    kinds = p.add_subparsers(dest="source", required=True)
    camus = kinds.add_parser("camus", help="CAMUS, NIfTI or MetaImage release; split by patient")
    camus.add_argument("--root", required=True, help="CAMUS folder (use it as dataset_dir when training)")
    camus.add_argument("--views", nargs="+", default=["2CH", "4CH"], help="apical views to take (default 2CH 4CH)")
    camus.add_argument("--phases", nargs="+", default=["ED", "ES"], help="cardiac phases to take (default ED ES)")
    camus.add_argument("--target", default="lv_endo", choices=["lv_endo", "myocardium", "left_atrium"],
                       help="the structure to segment (default lv_endo: label 1)")
    camus.add_argument("--official-split", action="store_true", help="use database_split/subgroup_*.txt")
    folder = kinds.add_parser("folder", help="pair images/<name> with labels/<name>")
    folder.add_argument("--images", required=True, help="folder of scans")
    folder.add_argument("--labels", required=True, help="folder of labels named like the scans")
    folder.add_argument("--keypoints", help="CSV with image, k, row, col columns")
    folder.add_argument("--rule", help="keypoint rule for images without keypoints (e.g. iris_roots)")
    folder.add_argument("--dataset-dir", help="paths are written relative to it (default: common parent)")
    folder.add_argument("--label-value", type=int, help="label value of the structure (default: > 0)")
    folder.add_argument("--group-regex", metavar="REGEX",
                        help="each image's group (patient), from its file name: the first capture group, or the match "
                        r"(e.g. '^(patient\d+)_'); default: the keypoints CSV's 'group' column, else the file stem. "
                        "Splits and cross-validation keep a group together")
    for q in (camus, folder):
        q.add_argument("--out", required=True, help="datalist JSON to write")
        q.add_argument("--val-fraction", type=float, default=0.2,
                       help="share of the groups (patients) in the validation split (default 0.2)")
        q.add_argument("--test-fraction", type=float, default=0.0,
                       help="share of the groups (patients) in the testing split (default 0)")
        q.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    reviewed = kinds.add_parser(
        "review", help="the accepted and corrected scans of a reviewed prediction folder (glsmonai review), to fine-tune on",
        description="One entry per scan whose latest decision in PRED_DIR/review.csv is accepted (the model's mask and "
        "keypoints) or corrected (PRED_DIR/corrected/: the reviewer's mask and keypoints); scans still to review are left "
        "out. Split into training and validation by group. Fine-tune with bundles/gls/configs/finetune.json.")
    reviewed.add_argument("pred", metavar="PRED_DIR", help="the reviewed prediction folder")
    reviewed.add_argument("--images", required=True, help="the scans predicted: their folder, or a datalist JSON (see --split)")
    reviewed.add_argument("--out", required=True, help="datalist JSON to write")
    reviewed.add_argument("-m", "--model", metavar="MODEL_DIR",
                          help="the model folder that predicted them: its task settings (pieces, keypoint rule and names, "
                          "flip pairs) go into the task block (default: the pieces most masks have)")
    reviewed.add_argument("--val-fraction", type=float, default=0.2,
                          help="share of the groups in the validation split (default 0.2; at least one scan when there "
                          "are two or more)")
    reviewed.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    reviewed.add_argument("--group-regex", metavar="REGEX",
                          help="each image's group (patient), from its file name: the first capture group, or the match; "
                          "default: the file stem")
    _datalist_options(reviewed)
    p.set_defaults(func=_datalist)

    p = sub.add_parser("predict", help="segment every scan in a folder (NIfTI, MetaImage, NRRD, PNG, JPEG, BMP, TIFF, DICOM)")
    p.add_argument("-i", "--input", required=True, help="folder of scans, or a datalist JSON (see --split)")
    p.add_argument("-o", "--output", required=True, help="output folder (not the input folder)")
    p.add_argument("-m", "--model", required=True, nargs="+", metavar="MODEL_DIR",
                   help="trained model folder; several (e.g. the five folds of a cross-validation): one ensemble, whose "
                        "members' probabilities and keypoint heatmaps are averaged (the keypoints decoded once from the "
                        "averaged heatmaps); they must agree on working size, keypoints, crop space and intensity "
                        "settings, and their recorded options are the first one's; OUT/ensemble.json records them")
    p.add_argument("--labels", help="folder of reference labels <name>.<ext>, drawn in green on the overlays")
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when available")
    p.add_argument("--no-overlays", action="store_true", help="skip the overlay PNGs")
    p.add_argument("--batch-size", type=int, default=4, metavar="B", help="scans per network call (default 4)")
    p.add_argument("--num-parts", type=int, default=1, metavar="N",
                   help="split the sorted scan list into N parts (every N-th scan) for N runs, e.g. a SLURM array; "
                        "the runs may share the output folder (default 1)")
    p.add_argument("--part-id", type=int, default=0, metavar="I", help="which part this run predicts, 0 .. N-1 (default 0)")
    p.add_argument("--continue", dest="resume", action="store_true",
                   help="skip scans whose outputs are complete (e.g. after a killed run); redo the rest")
    p.add_argument("--keypoints", metavar="CSV",
                   help="keypoints given as prompts, in predict's keypoints.csv format (image, k, row, col in the scan's "
                        "pixels; a scan may give some of its keypoints): they replace the heatmap peaks, the local branch "
                        "and the fusion run in their windows; OUT/keypoints.csv says source 'user' for them")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="run the network in mixed precision: bfloat16 on a CPU with bf16 instructions, float16 on "
                        "CUDA (default: as the model folder records, else off)")
    p.add_argument("--num-workers", type=int, metavar="W",
                   help="processes reading and preparing scans ahead of the network (0: none; default: the CPU "
                        "cores less one, at most 2)")
    p.add_argument("--no-fusion", action="store_true",
                   help="crop_space original, stage 3: the local prediction inside the windows instead of the fused one")
    p.add_argument("--keypoint-band", type=int, metavar="PX",
                   help="search keypoints within PX working pixels of the predicted boundary (0: anywhere; default: the model's)")
    p.add_argument("--stage", choices=["stage1", "stage2", "stage3"],
                   help="predict with this stage's best checkpoint (stage1: the global branch alone; default: the latest "
                        "stage trained)")
    # left unset, the four options below take what the model folder records (the CPU preset records TTA and components)
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="mirror test-time augmentation: average with the prediction of the left-right flipped scan "
                        "(default: as the model folder records, else off)")
    p.add_argument("--components", type=_components, metavar="N|task",
                   help="keep the N largest connected pieces of each mask and fill holes ('task': the task's number, "
                        "LV 1, iris 2; 0: off; default: as the model folder records, else off)")
    p.add_argument("--blend", type=float, metavar="F",
                   help="feather the window predictions into the global one: weight 1 in a window's middle, a cosine "
                        "ramp over the outer F of it (each side, at most 0.5) to 0 at its border (0: hard paste; "
                        "default: as the model folder records, else 0)")
    p.add_argument("--min-confidence", type=float, metavar="C",
                   help="keypoints with confidence below C are unsure: their windows are not used (the global prediction "
                        "stands there) and keypoints.csv flags them 'unsure' (0: off; default: as recorded, else 0)")
    p.add_argument("--measure", choices=["iris", "lv"],
                   help="after predicting, measure the masks as `glsmonai measure --task` does (against --labels, or "
                        "the datalist's references) into OUT/measures.csv")
    p.add_argument("--measure-csv", metavar="CSV", help="where --measure writes its table (default OUT/measures.csv)")
    p.add_argument("--engine", choices=["torch", "torchscript", "onnx"], default="torch",
                   help="what runs the network: torch (the PyTorch network and the model folder's checkpoint), "
                        "torchscript (model.ts) or onnx (model.onnx, ONNX Runtime) written by glsmonai export; "
                        "reading, TTA, assembling and writing are the same; torchscript and onnx take one -m folder "
                        "(default torch)")
    p.add_argument("--exported", metavar="PATH",
                   help="the exported file for --engine torchscript|onnx (default: model.ts / model.onnx in the -m folder)")
    _datalist_options(p)
    p.set_defaults(func=_predict)

    p = sub.add_parser("evaluate", help="Dice/IoU of <name>_seg.<ext> predictions against <name>.<ext> labels")
    p.add_argument("--pred", required=True, help="prediction folder")
    p.add_argument("--labels", required=True, help="reference label folder, or a datalist JSON (see --split)")
    p.add_argument("--csv", required=True, help="per-image CSV; beside it <stem>_summary.csv, <stem>_summary.json (per case "
                   "and mean Dice, IoU, HD95, key-region Dice, TP/FP/FN, sizes) and the page <stem>.html with <stem>_files/")
    p.add_argument("--no-html", action="store_true", help="skip the page <stem>.html and its thumbnails")
    p.add_argument("--error-map", metavar="PNG", help="an error-frequency map (glsmonai errormap --out PNG) to show on the page")
    p.add_argument("--label-value", type=int, help="reference label value that is the foreground "
                   "(default: the datalist task's, else > 0)")
    p.add_argument("--key-rule", help="keypoint rule for key-region Dice/IoU (e.g. iris_roots, lv_apex_base, errormap:F)")
    p.add_argument("--window", type=int, nargs=2, metavar=("H", "W"), help="key-region window in original pixels")
    _datalist_options(p)
    p.set_defaults(func=_evaluate)

    p = sub.add_parser(
        "measure", help="clinical measures of predicted masks (iris biometrics; LV volumes, EF) and their agreement",
        description="One row per prediction <name>_seg.<ext>: iris (per half: area, thickness at 750 and 2000 um from "
        "the root and its maximum, length, curvature; pupil diameter, root-to-root distance) or LV (area, long axis, "
        "annulus width, area-length volume; per CAMUS patient: ED/ES volumes, EF, biplane discs). In mm where the "
        "files carry a pixel spacing (other than 1 x 1) or --spacing gives one, else in pixels; each column names "
        "its unit. The points come from PRED/keypoints.csv when predict wrote one, else from the task's keypoint "
        "rule. With --labels also the references' measures (<stem>_reference.csv), the Bland-Altman statistics "
        "(<stem>_agreement.csv) and plots (<stem>_bland_altman/*.png) beside the CSV.")
    p.add_argument("--pred", required=True, help="prediction folder (predict's output)")
    p.add_argument("--labels", help="reference label folder, or a datalist JSON (see --split)")
    p.add_argument("--task", required=True, choices=["iris", "lv"], help="which measures")
    p.add_argument("--csv", required=True, help="the table to write (measures.csv); the others go beside it")
    p.add_argument("--spacing", type=float, nargs=2, metavar=("ROW_MM", "COL_MM"),
                   help="pixel size in mm for every file, overriding theirs")
    p.add_argument("--label-value", type=int, help="reference label value of the structure "
                   "(default: the datalist task's; iris any foreground, LV 1)")
    p.add_argument("--ignore-keypoints", action="store_true",
                   help="find every point with the task's rule on the mask, even where PRED/keypoints.csv has it")
    _datalist_options(p)
    p.set_defaults(func=_measure)

    p = sub.add_parser(
        "compare", help="train GLS and baselines on one datalist (cross-validated by patient); one table, panel figures",
        description="Train every model with the same bundle, data and overrides and score them per case. With --folds K "
        "(default 5) every labelled case of the datalist, whatever its split, is pooled, the groups (the entries' "
        "'group', e.g. the CAMUS patient) are dealt into K folds, and each fold is tested once by models trained on "
        "the other groups; --folds 0 uses the datalist's own training/validation/testing split instead. Writes "
        "cases.csv, folds.csv, kp_errors.csv, table.csv/.md, seeds.csv, paired.csv/.md, panels/, summary.json (per model, "
        "per case and mean "
        "scores) and report.html (a page that opens from disk, with report_files/) into --out.")
    p.add_argument("--datalist", required=True, help="datalist JSON of the labelled cases")
    p.add_argument("--dataset_dir", "--dataset-dir", dest="dataset_dir", required=True,
                   help="folder the datalist's paths are relative to")
    p.add_argument("--models", nargs="*", default=["unet", "unetpp", "cenet", "gs", "gls"],
                   choices=["unet", "unetpp", "cenet", "gs", "gls", "gls_working", "gls_original"],
                   help="gls: the bundle's default crop_space; gls_working / gls_original: that crop_space; "
                   "--models with no name: the --arm models alone")
    p.add_argument("--epochs", type=int, help="epochs of every stage of every model")
    p.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="bundle overrides for every model, e.g. image_size=[128,128]")
    p.add_argument("--preset", nargs="+", default=[], metavar="NAME",
                   help="bundle overlays bundles/gls/configs/NAME.json for every model, before its own, and a "
                   "model's companion <overlay>_NAME.json after it where there is one (e.g. cpu: the CPU preset, "
                   "and baselines/unet_cpu.json, the U-Net given GLS's minutes; cpu_0.4: release 0.4's preset)")
    p.add_argument("--panels", type=int, default=4, help="test cases drawn as panel figures (fold 0's first)")
    p.add_argument("--folds", type=int, default=5, metavar="K",
                   help="K >= 2: group K-fold cross-validation over all labelled cases, each case tested once, all cases "
                   "of a group (patient) in one fold; validation: --val-fraction of the other groups, training: the rest. "
                   "0: the datalist's own split (test split, else validation). Default 5")
    p.add_argument("--fold", type=int, nargs="+", metavar="k",
                   help="train and score only these folds (0 .. K-1) of the --folds K split, the same folds as the full "
                   "run: a cheap screen, or a cross-validation run fold by fold (a later call with more folds reuses "
                   "what is trained). Default: every fold")
    p.add_argument("--arm", nargs="+", action="append", metavar="WORD",
                   help="--arm NAME MODEL [KEY=VALUE ...]: a training-time lever, compared as one more model: NAME "
                   "is MODEL (one of --models' choices) trained with these bundle overrides on top of --set, on "
                   "the same folds and seeds, e.g. --arm unet_60 unet stage1_epochs=60 (the U-Net given the "
                   "minutes GLS takes); stageN_of=NAME takes stage N from the compared model NAME (given before "
                   "it) of the same fold and seed instead of training it, e.g. --arm gls_mean gls fusion_init=mean "
                   "stage1_of=gls (stages 2 and 3 compared on one stage 1); repeat for more arms")
    p.add_argument("--reference", default="unet",
                   help="one of --models or an --arm NAME: paired.csv/.md give every other model's per-case "
                   "difference to it (model - reference) for dice, key_dice and hd95, with a 95%% bootstrap "
                   "interval that resamples whole groups; an interval that contains 0 does not tell the two apart. Default unet")
    p.add_argument("--variants", nargs="+", default=[],
                   choices=["stage1", "recorded", "tta", "components", "tta+components", "tta+components+blend", "blend", "gate",
                            "ref_keypoints"],
                   help="prediction-time levers measured on the same trained models: every model also predicts with "
                   "its stage-1 checkpoint (stage1: for GLS, its global branch alone, i.e. GS), mirror test-time "
                   "augmentation (tta), the task's component post-processing, windows feathered in (blend: "
                   "--blend 0.25) and/or unsure keypoints' windows dropped (gate: --min-confidence 0.5), or with the "
                   "windows at the reference keypoints (ref_keypoints, an oracle: what the model loses to its keypoint "
                   "errors); scored as <model>+<variant>, and levers.csv/.md give each variant's paired difference "
                   "to its own model")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the folds, the validation draw and the bootstrap (training's seed: --set seed=N). Default 0")
    p.add_argument("--seeds", type=int, default=1, metavar="S",
                   help="train every model S times per fold, with the training seeds N .. N+S-1 (N: --set seed=N, else "
                   "the bundle's), each in <model>/fold<k>/seed<s>/ when S > 1; cases.csv gets a row per seed, table.md "
                   "and seeds.csv the seed-to-seed spread, and the paired intervals resample each model's seeds within "
                   "each group, so they cover training runs as well as patients. Default 1")
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="share of the cases outside the test fold used for validation (whole groups). Default 0.2")
    p.add_argument("--test", metavar="DATALIST",
                   help="a datalist whose testing entries (paths relative to --dataset_dir) are an external test set "
                   "sharing no group with --datalist (e.g. data_lists/camus_lockbox.json): after the cross-validation "
                   "every model's fold ensemble (all its fold models, per seed) and each fold model alone predict it; "
                   "writes test_cases.csv, test_table.csv/.md (ensemble and one fold model, with their prediction "
                   "seconds) and test_paired.csv/.md (each ensemble against the reference's, and against one of its "
                   "fold models). Needs --folds K >= 2")
    p.add_argument("--out", required=True, help="output folder (models, predictions, tables); a rerun resumes it")
    p.set_defaults(func=_compare)

    p = sub.add_parser(
        "compare-pool", help="pool compare runs that differ only in the training seed into one comparison",
        description="Read the cases.csv (and folds.csv, kp_errors.csv, table.csv, summary.json) of compare runs of the "
        "same models, folds and cases that differ only in their training seed (--set seed=N; a run's seed is its "
        "cases.csv seed column, else that override, else the next free number) and write the tables compare writes "
        "into --out: cases.csv with each row's seed, folds.csv, table.csv/.md with each model's seed-to-seed spread "
        "and training minutes per seed, seeds.csv, paired.csv/.md (95 % interval resampling patients and, within "
        "them, each model's seeds), levers.csv/.md when the runs hold variants, summary.json and report.html.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="compare output folders")
    p.add_argument("--out", required=True, help="folder of the pooled tables (not one of the runs)")
    p.add_argument("--reference", default="unet", help="the model the others are paired with (default unet)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.set_defaults(func=_compare_pool)

    p = sub.add_parser(
        "paired", help="paired per-case differences of two compare runs on the same folds (after - before)",
        description="Read two compare cases.csv tables of the same cases (e.g. the same compare command before and "
        "after a change of the code) and print, per model, the mean per-case difference after - before of dice, "
        "key_dice and hd95 with a 95%% bootstrap interval that resamples whole groups (patients).")
    p.add_argument("before", help="cases.csv of the first run")
    p.add_argument("after", help="cases.csv of the second run")
    p.add_argument("--models", nargs="+", help="models to pair (default: every model in both)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.set_defaults(func=_paired)

    p = sub.add_parser("errormap", help="where predictions err: error pixels aligned to the object, averaged")
    p.add_argument("--pred", required=True, help="prediction folder (<name>_seg.<ext>)")
    p.add_argument("--labels", required=True, help="reference label folder")
    p.add_argument("--out", required=True, help="PNG to write (the raw map goes to the .npy beside it)")
    p.add_argument("--objects", type=int, default=2, metavar="N",
                   help="align to the N largest connected pieces of each reference, one panel each (iris: 2, LV: 1)")
    p.add_argument("--margin", type=float, default=0.25, help="box margin around each component (fraction)")
    p.add_argument("--label-value", type=int, help="reference label value of the object (default: > 0)")
    p.add_argument("--suggest", type=int, metavar="K", help="propose K key regions as a keypoint rule file")
    p.set_defaults(func=_errormap)

    p = sub.add_parser(
        "export", help="export a trained GLS model folder to TorchScript (model.ts) and ONNX (model.onnx)",
        description="Export the whole GLS forward pass (global branch, keypoint decoding, windows, local U-Net, fusion) "
        "of a trained model folder, built from its recorded settings, with a stage's best checkpoint. Writes model.ts "
        "and/or model.onnx, export.json (settings, stage, input and output names, versions, and each file's largest "
        "difference from PyTorch on check scans) and a copy of gls_model.json into OUT, so that "
        "glsmonai predict -m OUT --engine torchscript|onnx runs the exported file.")
    p.add_argument("-m", "--model", required=True, metavar="MODEL_DIR", help="trained model folder")
    p.add_argument("-o", "--output", help="output folder (default bundles/gls/models under the current folder, the "
                   "model zoo's place for exported weights)")
    p.add_argument("--format", nargs="+", choices=["torchscript", "onnx"], default=["torchscript", "onnx"],
                   help="the formats to write (default torchscript onnx)")
    p.add_argument("--stage", choices=["stage1", "stage2", "stage3"],
                   help="export this stage's best checkpoint (default: the latest stage trained)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="where the TorchScript trace runs, and so where model.ts runs (a trace keeps its device); "
                        "ONNX is device-free (default cpu)")
    p.set_defaults(func=_export)

    p = sub.add_parser("bench", help="inference, training and predict throughput of GLS against a BasicUNet",
                       description="Measure, in one process: inference images/s of GLS (full forward and global "
                       "branch alone, both crop spaces) and of a MONAI BasicUNet of the same widths; training images/s "
                       "of each GLS stage and of the BasicUNet; glsmonai predict end to end on N scans (wall time, peak "
                       "memory) against the network time alone; one window re-segmented on an open scan (a dragged "
                       "keypoint). Each figure is the median of --repeats timed runs after "
                       "--warmup untimed ones. Writes OUT/bench.json and OUT/bench.md and prints the tables.")
    p.add_argument("--image-size", type=int, nargs=2, default=[256, 256], metavar=("H", "W"),
                   help="working image size of the networks (default 256 256)")
    p.add_argument("--batch", type=int, default=8, help="images per forward pass (default 8)")
    p.add_argument("--crop-size", type=int, nargs=2, default=[100, 100], metavar=("H", "W"),
                   help="GLS local window in working pixels (default 100 100)")
    p.add_argument("--channels", type=int, nargs="+", default=[16, 32, 64, 128, 256], metavar="C",
                   help="encoder widths of GLS; the BasicUNet gets the same five and the first again "
                   "(default 16 32 64 128 256)")
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when available")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per figure, the median is reported (default 5)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs before the timed ones (default 2)")
    p.add_argument("--predict-scans", type=int, nargs="*", default=[50, 500], metavar="N",
                   help="run glsmonai predict on N scans, for each N (default 50 500; 0 or no number: skip)")
    p.add_argument("--scan-size", type=int, nargs=2, default=[1459, 1713], metavar=("H", "W"),
                   help="size of the predict scans and of the original-space source scan (default 1459 1713)")
    p.add_argument("--predict-batch", type=int, default=4, metavar="B",
                   help="scans per network call for predict and its network time (default 4)")
    p.add_argument("--precision", nargs="+", default=["fp32", "bf16", "fp16"], choices=["fp32", "bf16", "fp16"],
                   help="fp32; bf16 autocast; fp16 autocast with a gradient scaler (CUDA only). Precisions the "
                   "machine lacks are skipped with a logged reason (default fp32 bf16 fp16)")
    p.add_argument("--out", default="runs/bench", help="output folder of bench.json and bench.md (default runs/bench)")
    p.add_argument("--sections", nargs="+", default=["inference", "training", "predict", "resegment"],
                   choices=["inference", "training", "predict", "resegment"],
                   help="what to measure; resegment: one window re-segmented on an open --scan-size scan, as glsmonai "
                   "review does when a keypoint is dragged (--sections resegment: that figure alone). Default: all four")
    p.set_defaults(func=_bench)

    p = sub.add_parser(
        "review", help="review and correct a prediction folder in the browser (a local web app)",
        description="Serve a local web app over predict's output folder: the scans worst first (unsure keypoints, a "
        "wrong number of pieces, low keypoint confidence; Dice with --labels), each drawn full size with the mask's "
        "contour, its keypoints as handles and their windows. Dragging a keypoint re-segments its window (the local "
        "branch and the fusion only); Ctrl+z undoes, a accepts, n / p go to the next / previous scan. Accepting "
        "writes review.csv (scan, state, reviewer, what changed, when) and, for a corrected scan, "
        "PRED_DIR/corrected/<name>_seg.<ext> (the scan's geometry) and corrected/keypoints.csv; the model's own "
        "outputs are never overwritten. See docs/review.md.")
    p.add_argument("pred", metavar="PRED_DIR", help="prediction folder (predict's output)")
    p.add_argument("-m", "--model", required=True, nargs="+", metavar="MODEL_DIR",
                   help="the model folder that predicted it (several: the fold ensemble predict was given); it "
                        "predicts with the options the folder records, as predict does by default")
    p.add_argument("--images", required=True,
                   help="the scans predict read: their folder, or a datalist JSON (see --split)")
    p.add_argument("--labels", help="reference labels (a folder of <name>.<ext>, or a datalist JSON): Dice in the list")
    p.add_argument("--port", type=int, default=8765, help="port to serve on (0: a free one; default 8765)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to serve on (default 127.0.0.1: this machine only; the app has no login)")
    p.add_argument("--reviewer", help="who reviews, for review.csv (default: the operating-system user)")
    p.add_argument("--task", choices=["iris", "lv"],
                   help="the measures shown (default: by the keypoint count, iris 2, LV 3)")
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when available")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="PyTorch CPU threads (default 1: a window's small networks run fastest on one thread, and "
                        "far faster than on two when other work shares the cores; see docs/speed.md)")
    _datalist_options(p)
    p.set_defaults(func=_review)

    p = sub.add_parser(
        "corrections", help="what N review corrections buy: simulated corrections, fine-tuning, the uncorrected scans scored",
        description="Deal the labelled cases of a datalist split by group into a pool a reviewer corrects and scans no "
        "one corrects. For every model folder (one per training seed) and every count N: give N pool scans their "
        "reference keypoints as the review app does (the window re-segmented, the scan accepted as corrected), turn "
        "the review into a datalist (datalist review), fine-tune the model on it (finetune.json) and score the "
        "uncorrected scans against the model before fine-tuning, paired scan by scan and seed with seed. Writes "
        "pool.json, scored.json, seed<s>/, cases.csv, table.csv/.md and paired.csv/.md into --out; a rerun reuses "
        "what finished.")
    p.add_argument("-m", "--model", required=True, nargs="+", metavar="MODEL_DIR",
                   help="trained GLS model folders, one per training seed (e.g. compare's <model>/fold0/seed<s>/models)")
    p.add_argument("--datalist", required=True, help="datalist JSON of labelled scans the models were not trained on")
    p.add_argument("--dataset_dir", "--dataset-dir", dest="dataset_dir", required=True,
                   help="folder the datalist's paths are relative to")
    p.add_argument("--split", default="testing", help="the datalist's split to use (default testing)")
    p.add_argument("--counts", type=int, nargs="+", default=[4, 8], metavar="N",
                   help="numbers of corrected scans (default 4 8)")
    p.add_argument("--pool-fraction", type=float, default=0.5,
                   help="share of the groups (patients) in the pool; the rest are scored (default 0.5)")
    p.add_argument("--control", action="store_true",
                   help="also fine-tune on the same N scans accepted uncorrected: what the corrections add to "
                        "fine-tuning on more scans")
    p.add_argument("--set", nargs="*", metavar="KEY=VALUE",
                   help="bundle overrides of the fine-tuning, e.g. finetune_epochs=20")
    p.add_argument("--seed", type=int, default=0, help="seed of the deal, the scans' order and the bootstrap (default 0)")
    p.add_argument("--out", required=True, help="output folder; a rerun resumes it")
    p.set_defaults(func=_corrections)

    p = sub.add_parser("bundle", help="where the installed GLS bundle is, or a copy of it to run and edit")
    p.add_argument("action", choices=["path", "copy", "versions"],
                   help="path: print the bundle folder; copy: copy it to DEST; versions: record the installed versions "
                   "of MONAI, PyTorch, NumPy and the other packages in the metadata file DEST")
    p.add_argument("dest", nargs="?", help="copy: a new folder (default ./gls); versions: a metadata.json "
                   "(default bundles/gls/configs/metadata.json)")
    p.set_defaults(func=_bundle)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        logger.error("%s", err)
        return 2


if __name__ == "__main__":
    sys.exit(main())
