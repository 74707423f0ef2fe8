"""The package as a user installs it: a wheel in a fresh environment, run from a folder outside the checkout.

The fresh environment gets glsmonai from the wheel alone; its dependencies (torch, MONAI, ...) are borrowed
from the test's own environment through a path file, since installing them again would take minutes and
the network. Path entries added that way do not run that environment's own ``.pth`` hooks, so the
checkout's editable install of glsmonai stays out of sight: the test checks where glsmonai is imported from.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pandas as pd
import pytest

from tests.test_bundle import ROOT, TINY


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A venv with the glsmonai wheel built from this checkout; returns its ``bin`` folder."""
    root = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root / "dist"), str(ROOT)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = next((root / "dist").glob("glsmonai-*.whl"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "borrowed_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps",
                              "-q", str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    return venv / "bin"


def run(bin_dir: Path, cwd: Path, *cmd: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


def test_the_wheel_runs_the_bundle_predict_and_compare_outside_the_checkout(installed, tmp_path):
    python = str(installed / "python")
    where = run(installed, tmp_path, python, "-c", "import glsmonai; print(glsmonai.__file__)").stdout.strip()
    assert Path(where).is_relative_to(installed.parent), f"glsmonai imported from {where}, not from the wheel"

    run(installed, tmp_path, "glsmonai", "synth", "iris", "--out", "phantoms", "--n", "10", "--seed", "3",
        "--size", "64", "72")
    # the bundle as MONAI users run it: copied out of the package, then python -m monai.bundle
    run(installed, tmp_path, "glsmonai", "bundle", "copy", "gls")
    assert (tmp_path / "gls" / "configs" / "metadata.json").is_file() and (tmp_path / "gls" / "LICENSE").is_file()
    run(installed, tmp_path, python, "-m", "monai.bundle", "run", "training", "--config_file", "gls/configs/train.json",
        "--dataset_dir", "phantoms", "--output_dir", "run", *TINY)
    assert (tmp_path / "run" / "models" / "stage3_best.pt").is_file()

    run(installed, tmp_path, "glsmonai", "predict", "-i", "phantoms/images", "-o", "pred", "-m", "run/models",
        "--no-overlays")
    assert len(list((tmp_path / "pred").glob("*_seg.nii.gz"))) == 10

    # compare finds the bundle inside the installed package
    run(installed, tmp_path, "glsmonai", "compare", "--datalist", "phantoms/datalist.json", "--dataset_dir", "phantoms",
        "--out", "cmp", "--models", "gs", "--reference", "gs", "--folds", "0", "--epochs", "1",
        "--set", "image_size=[64,64]", "crop_size=[24,24]", "channels=[4,8,8,16,16]", "sigma=2.0", "num_workers=0",
        "batch_size=3")
    cases = pd.read_csv(tmp_path / "cmp" / "cases.csv")
    assert set(cases["model"]) == {"gs"} and cases["dice"].between(0, 1).all()


def test_the_wheel_carries_the_review_viewer(installed, tmp_path):
    """``glsmonai review``'s page, script and style sheet are package data, found from the installed wheel."""
    code = ("import glsmonai.review.app as app; print(app.__file__); "
            "print(*sorted(name for name in app.STATIC_FILES if len(app.static_file(name)) > 1000))")
    out = run(installed, tmp_path, str(installed / "python"), "-c", code).stdout.splitlines()
    assert str(ROOT) not in out[0]  # the wheel's copy, not the checkout's
    assert out[1].split() == ["index.html", "review.css", "review.js"]
