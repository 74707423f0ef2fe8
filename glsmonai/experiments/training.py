"""Training one model of a comparison: the bundle run as a subprocess, resumed when it finished before.

Every model is the bundle ``configs/train.json`` with the preset overlays (e.g. ``cpu.json``), the model's
own overlay (:data:`MODELS`) and the comparison's overrides. With several training seeds each seed's
training is its own run, the seed given to the bundle as its ``seed`` override (:func:`training_seeds`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from glsmonai.experiments.rounds import DatalistFile
from glsmonai.model_folder import read_stage_seconds
from glsmonai.stages import get_stage
from glsmonai.utils import atomic_write

logger = logging.getLogger(__name__)

__all__ = ["MODELS", "TIMING_FILE", "Arm", "TrainingSeed", "bundle_files", "run_bundle", "train_model", "training_seeds"]

#: model name -> overlay on train.json, relative to the bundle's configs folder (None: GLS itself)
MODELS: dict[str, str | None] = {
    "unet": "baselines/unet.json",
    "unetpp": "baselines/unetpp.json",
    "cenet": "baselines/cenet.json",
    "gs": "baselines/gs.json",
    "gls": None,
    "gls_working": "crop_working.json",
    "gls_original": "crop_original.json",
}
#: written into a run's folder after its training succeeded: seconds, overrides and the datalist's digest
TIMING_FILE = "train_time.json"


def bundle_files(configs: Path, model: str, presets: Sequence[str] = ()) -> list[Path]:
    """The config files of ``model``: ``train.json``, each preset overlay, the model's overlay, then the model's
    companion of each preset where there is one (``baselines/unet_cpu.json``: the budget the CPU preset gives the
    U-Net, the minutes GLS takes with it).

    Raises:
        FileNotFoundError: one of them is missing.
    """
    files = [configs / "train.json", *(configs / f"{p}.json" for p in presets)]
    if MODELS[model]:
        overlay = configs / MODELS[model]
        files += [overlay, *(c for p in presets if (c := overlay.with_name(f"{overlay.stem}_{p}.json")).is_file())]
    missing = [c for c in files if not c.is_file()]
    if missing:
        raise FileNotFoundError(f"bundle config not found: {missing[0]}")
    return files


@dataclass(frozen=True)
class Arm:
    """A compared model that is one of :data:`MODELS` trained with bundle overrides of its own: a training-time
    lever (``compare --arm unet_60 unet stage1_epochs=60``: the U-Net given twice the epochs).

    Attributes:
        name: its name in the tables and its run folders (not a name of :data:`MODELS`, no ``+`` or ``@``, which
            mark variants and fold models, no path separator).
        model: the model of :data:`MODELS` it trains.
        overrides: ``--key value`` pairs given after the comparison's own overrides, so they win over them.
        stages_of: ``(stage, compared name)`` pairs (``stage1_of=gls_75``): stages this arm takes from another
            compared model's run of the same round and seed instead of training them (``train.json``'s
            ``stage_from``), so that settings of the later stages are compared on one earlier stage. Its training
            minutes are then those of the stages it trains.
    """

    name: str
    model: str
    overrides: tuple[str, ...] = ()
    stages_of: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, words: Sequence[str]) -> Arm:
        """``[NAME, MODEL, KEY=VALUE, ...]`` (the words of one ``--arm``) as an arm.

        Raises:
            ValueError: too few words, a bad name, an unknown model, a pair without ``=`` or one that sets
                ``seed`` (training seeds are the comparison's: ``--seeds``).
        """
        if len(words) < 2:
            raise ValueError(f"--arm expects NAME MODEL [KEY=VALUE ...], got {' '.join(words)!r}")
        name, model, *pairs = words
        if name in MODELS or not name or any(c in name for c in "+@/\\ "):
            raise ValueError(f"--arm {name}: an arm's name must differ from the models {list(MODELS)} and hold no "
                             "'+', '@', space or path separator")
        if model not in MODELS:
            raise ValueError(f"--arm {name}: unknown model {model!r}; choose from {list(MODELS)}")
        overrides: list[str] = []
        stages_of: dict[str, str] = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise ValueError(f"--arm {name}: expected KEY=VALUE, got {pair!r}")
            if key == "seed":
                raise ValueError(f"--arm {name}: the training seeds are the comparison's (--seeds, --set seed=N), "
                                 "not an arm's")
            if key == "stage_from":
                raise ValueError(f"--arm {name}: an arm takes a stage from another compared model with "
                                 "stageN_of=NAME (e.g. stage1_of=gls_75), not from a folder")
            if re.fullmatch(r"stage\d+_of", key):
                stages_of[get_stage(key.removesuffix("_of")).name] = value
                continue
            overrides += [f"--{key}", value]
        return cls(name, model, tuple(overrides), tuple(sorted(stages_of.items())))

    def stage_from(self, runs: Mapping[str, Path]) -> tuple[str, ...]:
        """The ``--stage_from`` override of a run (none without :attr:`stages_of`): ``runs[name]`` is where the
        compared model ``name`` trained on the same round and seed."""
        if not self.stages_of:
            return ()
        taken = {stage: str(runs[name] / "models") for stage, name in self.stages_of}
        return ("--stage_from", repr(taken))

    def taken_seconds(self, run: Path) -> float | None:
        """The training seconds of the stages this arm's run (``run``, its run folder) took from other runs, as their
        model folders recorded them (``stage_seconds.json``, copied into this run's when it took them): 0 without
        :attr:`stages_of`, ``None`` when a source trained before that record was kept (its minutes are unknown)."""
        if not self.stages_of:
            return 0.0
        record = read_stage_seconds(run / "models")
        last = max(get_stage(stage).number for stage, _ in self.stages_of)
        wanted = [get_stage(n).name for n in range(1, last + 1)]
        if any(name not in record or "taken_from" not in record[name] for name in wanted):
            return None
        return sum(record[name]["seconds"] for name in wanted)

    def training_overrides(self, overrides: Sequence[str]) -> tuple[str, ...]:
        """``overrides`` (a seed's, :attr:`TrainingSeed.overrides`) without the keys this arm sets, then the arm's."""
        own = {self.overrides[i] for i in range(0, len(self.overrides), 2)}
        kept: list[str] = []
        i = 0
        while i < len(overrides):
            if overrides[i] in own and i + 1 < len(overrides):
                i += 2
                continue
            kept.append(overrides[i])
            i += 1
        return (*kept, *self.overrides)


@dataclass(frozen=True)
class TrainingSeed:
    """One training seed of a comparison.

    Attributes:
        value: the bundle's ``seed``.
        folder: ``""`` (one seed per model: the run folders of a comparison without seeds, so such runs
            resume) or ``seed<value>``.
        overrides: the comparison's overrides with this seed's ``--seed`` (unchanged with one seed).
    """

    value: int
    folder: str
    overrides: tuple[str, ...]


def _override(overrides: Sequence[str], key: str) -> str | None:
    """The value of the last ``--key value`` in ``overrides``."""
    values = [overrides[i + 1] for i in range(len(overrides) - 1) if overrides[i] == f"--{key}"]
    return values[-1] if values else None


def _bundle_seed(files: Sequence[Path]) -> int:
    """The ``seed`` the bundle's config files set (the last one that sets it wins), 0 when none does."""
    seed = 0
    for path in files:
        content = json.loads(path.read_text())
        if isinstance(content, dict) and isinstance(content.get("seed"), int):
            seed = content["seed"]
    return seed


def training_seeds(n_seeds: int, overrides: Sequence[str], files: Sequence[Path] = ()) -> list[TrainingSeed]:
    """The training seeds of a comparison: ``base, base + 1, ..., base + n_seeds - 1``.

    ``base`` is the overrides' ``--seed`` (``--set seed=N``), else the ``seed`` of the bundle's config
    ``files``, else 0. With one seed the overrides are left as they are and the runs keep the folders of
    a comparison without seeds; with more, each seed's overrides end in ``--seed <value>`` and its runs
    go into ``seed<value>/``.

    Raises:
        ValueError: ``n_seeds < 1`` or a ``--seed`` override that is not an integer.
    """
    if n_seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {n_seeds}")
    given = _override(overrides, "seed")
    try:
        base = int(given) if given is not None else _bundle_seed(files)
    except ValueError:
        raise ValueError(f"the training seed must be an integer, got seed={given!r}") from None
    if n_seeds == 1:
        return [TrainingSeed(base, "", tuple(overrides))]
    plain = [o for i, o in enumerate(overrides)
             if o != "--seed" and not (i > 0 and overrides[i - 1] == "--seed")]
    return [TrainingSeed(base + i, f"seed{base + i}", (*plain, "--seed", str(base + i))) for i in range(n_seeds)]


def run_bundle(files: Sequence[str], arguments: Sequence[str], out: Path, what: str) -> float:
    """Run ``python -m monai.bundle run training`` with the config ``files`` and ``arguments`` as a subprocess,
    its output in ``out/train.log``; return the seconds it took.

    Raises:
        RuntimeError: it failed (``what`` failed, the message names its log).
    """
    cmd = [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", repr(list(files)), *arguments]
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(out / "train.log", "w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode:
        raise RuntimeError(f"{what} failed (exit {proc.returncode}); see {out / 'train.log'}")
    return time.perf_counter() - start


def train_model(
    model: str, configs: Path, datalist: DatalistFile, out: Path, overrides: Sequence[str], presets: Sequence[str] = (),
) -> tuple[float, bool]:
    """Train one model into ``out``; return the seconds its training took and whether it ran now.

    The bundle is :func:`bundle_files` (``configs/train.json``, each preset overlay ``configs/<preset>.json``,
    the model's overlay), then ``overrides``.

    A model whose training finished earlier (``out/train_time.json`` written after a successful run,
    with the same overrides, the same datalist content and the same config files' content) is not trained
    again: an interrupted comparison goes on where it stopped, and a changed preset trains anew. (Records
    written before a digest was kept are matched without it.)

    Raises:
        FileNotFoundError: a config file is missing.
        RuntimeError: the training failed (the message names its log).
    """
    timing = out / TIMING_FILE
    digest = datalist.sha256
    files = [str(f) for f in bundle_files(configs, model, presets)]
    config_digest = hashlib.sha256(b"".join(Path(f).read_bytes() for f in files)).hexdigest()
    recorded = [*(f"preset={p}" for p in presets), *overrides]  # what the record is matched on
    if timing.is_file():
        done = json.loads(timing.read_text())
        if (done.get("overrides") == recorded and done.get("datalist_sha256", digest) == digest
                and done.get("config_sha256", config_digest) == config_digest):
            logger.info("%s: trained earlier (%s), not retrained", model, timing)
            return float(done["seconds"]), False
        logger.info("%s: earlier training used other overrides %s, another datalist or other config files: retraining",
                    model, done.get("overrides"))
        timing.unlink()
    arguments = ["--dataset_dir", str(datalist.dataset_dir), "--datalist", str(datalist.path), "--output_dir", str(out),
                 "--progress", "false", *overrides]
    seconds = run_bundle(files, arguments, out, f"training {model}")
    record = {"seconds": seconds, "overrides": recorded, "datalist_sha256": digest, "config_sha256": config_digest}
    atomic_write(timing, lambda tmp: tmp.write_text(json.dumps(record)))
    return seconds, True
