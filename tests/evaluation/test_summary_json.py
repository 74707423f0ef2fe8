"""``summary.json`` of ``evaluate`` and ``compare`` on literal masks, and the page's HTML without a browser."""

from __future__ import annotations

import json
import math
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest

from glsmonai.cli import main as cli_main
from glsmonai.data.io import read_image, write_image, write_mask
from glsmonai.evaluation.reports import compare_summary, evaluate_folder
from glsmonai.evaluation.scoring import score_case


def square(col: int, shape=(20, 20)) -> np.ndarray:
    """10 x 10 square at rows 5-14, columns ``col`` to ``col + 9``."""
    mask = np.zeros(shape, np.uint8)
    mask[5:15, col:col + 10] = 1
    return mask


def strict_json(path: Path) -> dict:
    """The document, refusing the NaN / Infinity tokens that are not JSON."""
    def refuse(token):
        raise ValueError(f"{path}: {token} is not JSON")
    return json.loads(path.read_text(), parse_constant=refuse)


def test_counts_of_two_shifted_squares():
    scores = score_case(square(3), square(5), with_counts=True, spacing=(0.5, 0.25))
    # prediction columns 3-12, reference 5-14: 80 shared, 20 on each side
    assert {k: scores[k] for k in ("tp", "fp", "fn", "ref_px", "pred_px")} == \
        {"tp": 80, "fp": 20, "fn": 20, "ref_px": 100, "pred_px": 100}
    assert scores["ref_mm2"] == pytest.approx(12.5) and scores["pred_mm2"] == pytest.approx(12.5)
    assert scores["dice"] == pytest.approx(2 * 80 / (80 + 20 + 80 + 20))
    assert "ref_mm2" not in score_case(square(3), square(5), with_counts=True)  # no pixel size known
    assert "tp" not in score_case(square(3), square(5))  # counts only when asked


def test_pixel_size_is_known_from_nifti_not_from_png(tmp_path):
    write_image(tmp_path / "a.nii.gz", square(5), spacing=(0.5, 0.25))  # (row, col) mm
    write_image(tmp_path / "a.png", square(5))
    assert read_image(tmp_path / "a.nii.gz")[1].pixel_size_mm() == (0.5, 0.25)
    assert read_image(tmp_path / "a.png")[1].pixel_size_mm() is None
    write_image(tmp_path / "b.nii.gz", square(5), spacing=(1.0, 1.0))  # what the CAMUS subset and phantoms store
    assert read_image(tmp_path / "b.nii.gz")[1].pixel_size_mm() is None


def test_evaluate_summary_json(tmp_path):
    pred, labels = tmp_path / "pred", tmp_path / "labels"
    write_image(labels / "a.nii.gz", square(5), spacing=(0.5, 0.25))
    write_mask(pred / "a_seg.nii.gz", square(3))  # Dice 0.8
    write_mask(labels / "b.png", square(5))
    write_mask(pred / "b_seg.png", np.zeros((20, 20)))  # Dice 0, HD95 undefined
    write_mask(pred / "orphan_seg.png", square(5))  # no reference: a failure
    table, _, failures = evaluate_folder(pred, labels, tmp_path / "out" / "scores.csv")
    assert list(table.columns) == ["image", "dice", "iou", "hd95"]  # the CSV keeps its columns
    summary = strict_json(tmp_path / "out" / "scores_summary.json")
    assert not (tmp_path / "out" / "scores.html").exists()  # the page only when asked
    assert summary["n_cases"] == 2 and summary["n_failures"] == 1 == len(failures)
    assert Path(summary["failures"][0]["file"]).name == "orphan_seg.png" and "no reference" in summary["failures"][0]["reason"]
    assert summary["evaluated"]["predictions"] == str(pred) and summary["evaluated"]["labels"] == str(labels)
    cases = {c["image"]: c for c in summary["cases"]}
    a, b = cases["a.nii.gz"], cases["b.png"]
    assert (a["tp"], a["fp"], a["fn"], a["ref_px"], a["pred_px"]) == (80, 20, 20, 100, 100)
    assert a["dice"] == pytest.approx(0.8) and a["iou"] == pytest.approx(80 / 120) and a["hd95"] == 2.0
    assert a["spacing_mm"] == [0.5, 0.25] and a["ref_mm2"] == pytest.approx(12.5)
    assert Path(a["prediction"]).name == "a_seg.nii.gz" and Path(a["reference"]).name == "a.nii.gz"
    assert (b["tp"], b["fp"], b["fn"], b["pred_px"]) == (0, 0, 100, 0) and b["dice"] == 0.0
    assert b["hd95"] is None and b["spacing_mm"] is None and "ref_mm2" not in b  # a PNG records no pixel size
    mean = summary["mean"]
    assert mean["dice"] == pytest.approx(0.4) and mean["fn"] == pytest.approx(60) and mean["hd95"] == 2.0
    assert mean["ref_mm2"] == pytest.approx(12.5)  # over the one case with a known pixel size
    assert summary["statistics"]["hd95"]["n"] == 1 and summary["statistics"]["ref_mm2"]["n"] == 1
    assert summary["statistics"]["dice"]["min"] == 0.0 and summary["statistics"]["dice"]["max"] == pytest.approx(0.8)


def test_evaluate_summary_json_key_regions_and_keypoints(tmp_path):
    pred, labels = tmp_path / "pred", tmp_path / "labels"
    ref = np.zeros((20, 40), np.uint8)
    ref[8:12, 4:16] = 1  # left segment, root at col 4
    ref[8:12, 24:36] = 1  # right segment, root at col 35
    out = ref.copy()
    out[8:12, 4:6] = 0
    write_mask(labels / "a.nii.gz", ref)
    write_mask(pred / "a_seg.nii.gz", out)
    pd.DataFrame({"image": ["a.nii.gz"] * 2, "k": [0, 1], "row": [12.5, 9.5], "col": [9.0, 35.0], "score": 1.0,
                  "confidence": 1.0}).to_csv(pred / "keypoints.csv", index=False)
    evaluate_folder(pred, labels, tmp_path / "r.csv", key_rule="iris_roots", window=(6, 6))
    summary = strict_json(tmp_path / "r_summary.json")
    case = summary["cases"][0]
    # as test_reports: 6 x 6 windows at the roots hold 16 + 20 reference pixels, 8 + 20 predicted
    assert case["key_dice"] == pytest.approx(2 * 28 / (36 + 28))
    assert case["kp_errors"] == pytest.approx([5.0, 1.0])  # from (9.5, 5) and (9.5, 34)
    assert summary["evaluated"]["key_rule"] == "iris_roots" and summary["evaluated"]["window"] == [6, 6]
    assert summary["statistics"]["kp_error"]["n"] == 2 and summary["mean"]["kp_missed"] == pytest.approx(0.5)


def test_compare_summary_per_model():
    cases = pd.DataFrame([
        {"model": "unet", "fold": 0, "image": "a", "group": "p", "dice": 0.6, "hd95": 4.0, "tp": 60, "fp": 20, "fn": 60},
        {"model": "unet", "fold": 1, "image": "b", "group": "q", "dice": 0.8, "hd95": np.nan, "tp": 80, "fp": 20, "fn": 20},
        {"model": "gls", "fold": 0, "image": "a", "group": "p", "dice": 0.9, "hd95": 1.0, "tp": 90, "fp": 10, "fn": 10},
        {"model": "gls", "fold": 1, "image": "b", "group": "q", "dice": 0.7, "hd95": 2.0, "tp": 70, "fp": 30, "fn": 30},
    ])
    table = pd.DataFrame([{"model": "unet", "dice": 0.7, "gflops": 1.5}, {"model": "gls", "dice": 0.8, "gflops": 2.5}])
    paired = pd.DataFrame([{"model": "gls", "reference": "unet", "metric": "dice", "mean": 0.1, "lo": -0.1, "hi": 0.3,
                            "n": 2, "n_groups": 2}])
    summary = compare_summary(cases, table, paired, {"datalist": "d.json"}, kp_errors={"gls": [1.0, 3.0]},
                              kp_windows={"gls": [(4, 4), (4, 4)]})
    assert summary["tool"] == "glsmonai compare" and summary["n_cases"] == 2 and list(summary["models"]) == ["unet", "gls"]
    unet, gls = summary["models"]["unet"], summary["models"]["gls"]
    assert unet["mean"]["dice"] == pytest.approx(0.7) and unet["mean"]["fn"] == 40 and unet["mean"]["hd95"] == 4.0
    assert unet["statistics"]["hd95"]["n"] == 1 and "kp_error" not in unet["mean"]
    assert gls["mean"]["kp_error"] == 2.0 and gls["mean"]["kp_missed"] == 0.5  # 3 > half of 4
    assert gls["table"]["gflops"] == 2.5 and [c["image"] for c in gls["cases"]] == ["a", "b"]
    assert summary["paired"][0]["mean"] == 0.1 and summary["levers"] == []
    assert math.isnan(unet["cases"][1]["hd95"])  # NaN stays NaN in the document; written as null


class _Links(HTMLParser):
    """Every ``src`` and ``href`` of a page, and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.targets += [v for k, v in attrs if k in ("src", "href")]

    def handle_data(self, data):
        self.text.append(data)


def test_evaluate_page_escapes_names_and_links_files_next_to_it(tmp_path):
    """Without a browser: a file name with HTML and URL characters is text, and every link is a file."""
    pred, labels = tmp_path / "pred", tmp_path / "labels"
    name = "x&<i>#1 %.nii.gz"
    write_mask(labels / name, square(5))
    write_mask(pred / "x&<i>#1 %_seg.nii.gz", square(3))
    assert cli_main(["evaluate", "--pred", str(pred), "--labels", str(labels), "--csv", str(tmp_path / "r" / "s.csv")]) == 0
    page = tmp_path / "r" / "s.html"
    source = page.read_text()
    assert "<i>" not in source and "x&amp;&lt;i&gt;#1 %.nii.gz" in source
    parser = _Links()
    parser.feed(source)
    assert name in "".join(parser.text)
    assert len(parser.targets) == 2  # the thumbnail and the full-size overlay drawn for it
    for target in parser.targets:
        assert not target.startswith(("http:", "https:", "//", "/")) and (page.parent / unquote(target)).is_file()
    assert cli_main(["evaluate", "--pred", str(pred), "--labels", str(labels), "--csv", str(tmp_path / "n" / "s.csv"),
                     "--no-html"]) == 0
    assert (tmp_path / "n" / "s_summary.json").is_file() and not (tmp_path / "n" / "s.html").exists()
