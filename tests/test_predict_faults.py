"""Prediction that scales out and survives being killed: parts, ``--continue`` after ``kill -9``, two
processes in one output folder, and scans that share a name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from glsmonai.cli import main as cli_main
from glsmonai.data.io import read_image
from tests.helpers import random_scans, untrained_model_folder

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return untrained_model_folder(tmp_path_factory.mktemp("model"))


def predict_cmd(scans: Path, out: Path, model: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "glsmonai", "predict", "-i", str(scans), "-o", str(out), "-m", str(model),
            "--device", "cpu", *extra]


def check_complete(scans: list[Path], out: Path) -> pd.DataFrame:
    """Every scan has a readable mask and an overlay, and exactly one row per keypoint in keypoints.csv."""
    table = pd.read_csv(out / "keypoints.csv")
    for path in scans:
        stem, ext = path.name.split(".", 1)
        mask, _ = read_image(out / f"{stem}_seg.{ext}")  # raises on a truncated file
        assert mask.shape == read_image(path)[0].shape
        assert (out / "overlays" / f"{stem}.png").stat().st_size > 0
    assert sorted(table["image"]) == sorted([p.name for p in scans] * 2)  # two keypoints each
    assert not table.duplicated(["image", "k"]).any()
    return table


def test_a_killed_run_continues_where_it_stopped(model, tmp_path):
    scans = random_scans(tmp_path / "scans", [(48, 56)] * 40)
    out = tmp_path / "out"
    proc = subprocess.Popen(predict_cmd(tmp_path / "scans", out, model, "--batch-size", "1", "--num-workers", "0"),
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(list(out.glob("*_seg*"))) < 5 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    written = len(list(out.glob("*_seg*")))
    assert 5 <= written < 40, "the run was to be killed in the middle"
    rerun = subprocess.run(predict_cmd(tmp_path / "scans", out, model, "--continue"), cwd=ROOT, capture_output=True,
                           text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    skipped = int(rerun.stderr.split("--continue: ")[1].split(" of")[0])
    assert 4 <= skipped <= written  # every scan with rows was complete; the one being written is redone
    check_complete(scans, out)
    assert not list(out.rglob(".*.tmp*"))  # no temporary file left behind under the final names


def test_parts_share_one_output_folder(model, tmp_path):
    scans = random_scans(tmp_path / "scans", [(40, 44)] * 9)
    out = tmp_path / "out"
    procs = [subprocess.Popen(predict_cmd(tmp_path / "scans", out, model, "--num-parts", "3", "--part-id", str(i)),
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for i in range(3)]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read()[-2000:]
    check_complete(scans, out)


def test_a_rerun_without_continue_redoes_its_scans_and_keeps_the_others(model, tmp_path):
    scans = random_scans(tmp_path / "scans", [(40, 44)] * 4)
    out = tmp_path / "out"
    assert cli_main(predict_cmd(tmp_path / "scans", out, model)[3:]) == 0
    first = pd.read_csv(out / "keypoints.csv")
    assert cli_main(predict_cmd(tmp_path / "scans", out, model, "--num-parts", "2", "--part-id", "1")[3:]) == 0
    second = check_complete(scans, out)
    pd.testing.assert_frame_equal(first.sort_values(["image", "k"]).reset_index(drop=True),
                                  second.sort_values(["image", "k"]).reset_index(drop=True))


def test_scans_sharing_a_stem_get_their_own_overlays(model, tmp_path):
    folder = tmp_path / "scans"
    random_scans(folder, [(40, 44), (40, 44)])
    (folder / "scan001.png").rename(folder / "scan000.png")  # scan000.nii.gz and scan000.png
    assert cli_main(predict_cmd(folder, tmp_path / "out", model)[3:]) == 0
    assert sorted(p.name for p in (tmp_path / "out" / "overlays").iterdir()) == ["scan000_nii_gz.png", "scan000_png.png"]
    assert {p.name for p in (tmp_path / "out").glob("scan000_seg*")} == {"scan000_seg.nii.gz", "scan000_seg.png"}
    assert np.isfinite(pd.read_csv(tmp_path / "out" / "keypoints.csv")[["row", "col"]].to_numpy()).all()


def test_a_rerun_removes_what_a_kill_left_in_the_middle_of_a_write(model, tmp_path):
    # a kill -9 inside atomic_write leaves its temporary; these are the names it would have left
    scans = random_scans(tmp_path / "scans", [(40, 44)] * 2)
    out = tmp_path / "out"
    (out / "overlays").mkdir(parents=True)
    left = [out / ".scan000_seg.0123abcd.tmp.nii.gz", out / "overlays" / ".scan001.89abcdef.tmp.png",
            out / ".keypoints.fedcba98.tmp.csv"]
    for path in left:
        path.write_bytes(b"half")
    other = out / ".notes.0123abcd.tmp.txt"  # not a file this run writes: not its to remove
    other.write_bytes(b"someone else's")
    assert cli_main(predict_cmd(tmp_path / "scans", out, model)[3:]) == 0
    check_complete(scans, out)
    assert not any(path.exists() for path in left) and other.exists()
