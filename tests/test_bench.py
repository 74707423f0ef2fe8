"""``glsmonai bench`` on a tiny configuration: what it measures and what it writes.

The bench times, on one device and in each requested precision:

* inference images/s of GLS (full forward and global branch alone; crop space working, and original with
  the local input at the crop size and at twice it) and of a MONAI BasicUNet of the same widths;
* training images/s (forward + loss + backward + Adam step) of each GLS stage, of cheaper variants (stage 1
  with the shared heatmap decoders, stage 3 with the global branch frozen) and of the BasicUNet;
* ``glsmonai predict`` end to end on N scans in a subprocess (wall time, peak memory of the process and of
  its workers) against the time of the network alone on the same scans.

It writes ``bench.json`` and ``bench.md``. Only the layout is checked here, never the figures' values.
"""

from __future__ import annotations

import json
import math

from glsmonai.cli import main

#: a run that takes seconds on two CPU cores
#: (in the order of ``glsmonai bench --help``, the order bench.md spells the command in)
TINY = ["--image-size", "32", "32", "--batch", "2", "--crop-size", "8", "8", "--channels", "4", "8", "16",
        "--device", "cpu", "--repeats", "1", "--warmup", "1", "--predict-scans", "2", "3", "--scan-size", "64", "80",
        "--predict-batch", "2", "--precision", "fp32"]


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_tiny_bench_writes_every_section(tmp_path):
    assert main(["bench", *TINY, "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "bench.json").read_text())
    assert set(result) == {"machine", "settings", "inference", "training", "ratios", "predict", "resegment"}

    machine = result["machine"]
    for key in ("cpu", "cpu_count", "torch_threads", "torch", "monai", "device_name", "bf16_supported"):
        assert key in machine
    assert result["settings"]["image_size"] == [32, 32] and result["settings"]["precision"] == ["fp32"]

    # inference: full and global-only GLS in three crop-space variants, then the BasicUNet
    inference = result["inference"]
    assert [(r["name"], r["variant"]) for r in inference] == [
        ("GLS full", "working"), ("GLS global", "working"),
        ("GLS full", "original, local = crop"), ("GLS global", "original, local = crop"),
        ("GLS full", "original, local = 2 x crop (bundle default)"),
        ("GLS global", "original, local = 2 x crop (bundle default)"),
        ("BasicUNet", "baseline"),
    ]
    assert [r["local_size"] for r in inference if r["crop_space"] == "original"] == [[8, 8]] * 2 + [[16, 16]] * 2

    # training: the three GLS stages, stage 1 with the two shared heatmap decoders, stage 3 with the global branch
    # frozen, then the BasicUNet
    training = {r["name"]: r for r in result["training"]}
    assert list(training) == ["GLS stage1", "GLS stage2", "GLS stage3", "GLS stage1, shared heatmap decoder",
                              "GLS stage1, shared_deep heatmap decoder", "GLS stage3, global branch frozen", "BasicUNet"]
    assert (training["GLS stage1, shared heatmap decoder"]["trainable_params"]
            < training["GLS stage1, shared_deep heatmap decoder"]["trainable_params"]
            < training["GLS stage1"]["trainable_params"])
    assert (training["GLS stage3, global branch frozen"]["trainable_params"]
            == training["GLS stage3"]["trainable_params"] - training["GLS stage1"]["trainable_params"])
    for row in inference + result["training"]:
        assert row["precision"] == "fp32"
        assert _positive(row["seconds"]) and _positive(row["images_per_s"])

    ratios = result["ratios"]
    assert set(ratios["inference_full_over_global"]["fp32"]) == {r["variant"] for r in inference[:-1]}
    for value in (*ratios["inference_full_over_global"]["fp32"].values(),
                  ratios["inference_global_over_basicunet"]["fp32"], ratios["training_stage1_over_basicunet"]["fp32"],
                  *ratios["predict_end_to_end_over_network"].values()):
        assert _positive(value)
    assert ratios["predict_memory_growth_mib"]["from_scans"] == 2 and ratios["predict_memory_growth_mib"]["to_scans"] == 3

    # predict: one row per N, with its end-to-end and network times and the peak memory
    predict = result["predict"]
    assert [r["scans"] for r in predict] == [2, 3]
    for row in predict:
        for key in ("seconds", "seconds_per_scan", "network_seconds", "network_seconds_per_scan",
                    "end_to_end_over_network", "peak_rss_main_mib"):
            assert _positive(row[key]), key
        assert row["peak_rss_children_mib"] >= 0  # 0 without DataLoader workers

    # resegment: one window of an open scan, per GLS configuration, plain and with the CPU preset's options
    resegment = result["resegment"]
    pairs = [(v, o) for v in [r["variant"] for r in inference[:-1:2]] for o in ("plain", "tta+components")]
    assert list(dict.fromkeys((r["variant"], r["options"]) for r in resegment)) == pairs
    assert {(r["variant"], r["options"]) for r in resegment if r["threads"] == 1} == set(pairs)  # and with one thread
    for row in resegment:
        assert row["scan_size"] == [64, 80] and _positive(row["seconds"]) and _positive(row["open_seconds"])

    markdown = (tmp_path / "bench.md").read_text()
    assert f"glsmonai bench {' '.join(TINY)} --out {tmp_path}" in markdown  # the command that ran
    assert "untrained" in markdown and "## Re-segmentation of one window" in markdown


def test_one_section_alone(tmp_path):
    """``--sections resegment``: that figure alone; the other sections are empty."""
    assert main(["bench", *TINY, "--out", str(tmp_path), "--sections", "resegment"]) == 0
    result = json.loads((tmp_path / "bench.json").read_text())
    assert result["inference"] == result["training"] == result["predict"] == []
    assert len({(r["variant"], r["options"]) for r in result["resegment"]}) == 6
    assert "--sections resegment" in result["settings"]["command"]
