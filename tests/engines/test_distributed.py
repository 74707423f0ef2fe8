"""``torchrun`` training: two CPU processes (gloo) through the bundle's multi_gpu_train.json overlay."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import torch

from tests.test_bundle import BUNDLE, ROOT, TINY, bundle, check

OVERLAY = repr([str(BUNDLE / "train.json"), str(BUNDLE / "multi_gpu_train.json")])


def best_dice(log: str) -> dict[str, float]:
    return {m[0]: float(m[1]) for m in re.findall(r"(stage\d) finished: best validation Dice ([0-9.]+)", log)}


@pytest.fixture(scope="module")
def two_processes(tiny_iris, tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29631",
           "-m", "monai.bundle", "run", "training", "--config_file", OVERLAY,
           "--dataset_dir", str(tiny_iris), "--output_dir", str(out), *TINY]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    check(proc)
    return out, proc.stdout + proc.stderr


def test_two_processes_train_every_stage_in_sync_into_one_model_folder(two_processes):
    out, log = two_processes
    for stage in ("stage1", "stage2", "stage3"):
        assert log.count(f"{stage}: weights in sync across 2 processes") == 2  # checked on both ranks
        assert (out / "models" / f"{stage}_best.pt").is_file()
    assert log.count("process 0 of 2 (gloo)") == 1 and log.count("process 1 of 2 (gloo)") == 1
    # rank 0 alone writes: the TensorBoard event files (events.out.tfevents.<time>.<host>.<pid>.<n>) of one process
    assert len({p.name.split(".")[-2] for p in (out / "tensorboard" / "stage1").iterdir()}) == 1
    assert (out / "models" / "gls_model.json").is_file()
    # stage 2 froze the global branch under DDP too
    s1 = torch.load(out / "models" / "stage1_best.pt", weights_only=True)
    s2 = torch.load(out / "models" / "stage2_best.pt", weights_only=True)
    s1, s2 = s1.get("network", s1), s2.get("network", s2)
    assert all(torch.equal(s1[k], s2[k]) for k in s1 if k.startswith("global_net."))
    assert not all(torch.equal(s1[k], s2[k]) for k in s1 if k.startswith("local_net."))


def test_two_processes_score_like_one(two_processes, tiny_iris, tmp_path):
    # not equal: each process takes its half of every epoch's shuffled cases, so an optimizer step sees
    # 2 x batch_size images. One epoch per stage on tiny phantoms: a smoke check of the validation Dice
    _, log = two_processes
    single = bundle("training", ["train.json"], "--dataset_dir", str(tiny_iris), "--output_dir", str(tmp_path), *TINY)
    check(single)
    one, two = best_dice(single.stdout + single.stderr), best_dice(log)
    assert set(one) == set(two) == {"stage1", "stage2", "stage3"}
    assert all(abs(one[s] - two[s]) <= 0.15 for s in one), (one, two)
