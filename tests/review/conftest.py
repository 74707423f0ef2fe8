"""A prediction folder of the tiny iris phantoms (an untrained, seeded model with crop_space original) and a
``glsmonai review`` server over it, run as a user runs it: a subprocess on a free local port."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch

from glsmonai.cli import main
from glsmonai.model_folder import ModelFolder, stage_checkpoint
from tests.helpers import untrained_model_folder

ROOT = Path(__file__).resolve().parents[2]
pytest.importorskip("fastapi", reason="glsmonai review needs FastAPI: pip install -e '.[review]' (the test extra has it)")
pytest.importorskip("uvicorn", reason="glsmonai review needs uvicorn: pip install -e '.[review]' (the test extra has it)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(url: str, method: str = "GET", body: bytes | str | None = None,
            content_type: str = "application/json") -> tuple[int, dict | bytes]:
    """``(status, JSON or bytes)`` of one HTTP request (4xx and 5xx answers too), with the standard library."""
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": content_type} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=120) as answer:
            status, raw, kind = answer.status, answer.read(), answer.headers.get("Content-Type", "")
    except urllib.error.HTTPError as err:
        status, raw, kind = err.code, err.read(), err.headers.get("Content-Type", "")
    return status, json.loads(raw) if kind.startswith("application/json") else raw


def folder_state(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``folder`` (hidden ones and lock files included)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def responsive_model_folder(path: Path) -> Path:
    """An untrained stage-3 model folder (crop_space original) whose mask follows its windows: the global branch
    says background everywhere, and the local U-Net's logits are centred on 0, so each window draws a pattern
    that depends on the pixels under it. A moved keypoint moves its part of the mask."""
    folder = untrained_model_folder(path, "original")
    net = ModelFolder.open(folder).build_network()
    net.load_state_dict(torch.load(stage_checkpoint(folder, "stage3"), weights_only=True))
    with torch.no_grad():
        net.global_net.decoders[0].head.bias.fill_(-8.0)
        crops = torch.rand(8, 1, *net.local_size, generator=torch.Generator().manual_seed(0))
        net.local_net.decoders[0].head.bias -= net.local_net(crops)[0].median()
    for stage in ("stage1", "stage2", "stage3"):
        torch.save(net.state_dict(), stage_checkpoint(folder, stage))
    return folder


@pytest.fixture(scope="module")
def predicted(tiny_iris, tmp_path_factory):
    """``(model folder, scans folder, labels folder, prediction folder)``: predict's output, its recorded options."""
    root = tmp_path_factory.mktemp("review")
    model = responsive_model_folder(root / "model")
    pred = root / "predictions"
    assert main(["predict", "-i", str(tiny_iris / "images"), "-o", str(pred), "-m", str(model), "--device", "cpu",
                 "--num-workers", "0", "--no-overlays"]) == 0
    return model, tiny_iris / "images", tiny_iris / "labels", pred


class Server:
    """``glsmonai review PRED -m MODEL --images IMAGES --labels LABELS --port N`` in a subprocess."""

    def __init__(self, predicted, log: Path, reviewer: str = "tester") -> None:
        model, images, labels, self.pred = predicted
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        args = [sys.executable, "-m", "glsmonai", "review", str(self.pred), "-m", str(model), "--images", str(images),
                "--labels", str(labels), "--port", str(self.port), "--device", "cpu", "--reviewer", reviewer]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        self.process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while True:
            try:
                if request(f"{self.url}/api/scans")[0] == 200:
                    break
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"glsmonai review did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)

    def api(self, path: str, method: str = "GET", body=None, **kwargs):
        return request(f"{self.url}{path}", method, body, **kwargs)

    def kill(self) -> None:
        """``kill -9``: no clean-up of any kind."""
        self.process.kill()
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def review_folder(predicted, tmp_path):
    """A fresh copy of the prediction folder (each test reviews its own)."""
    model, images, labels, pred = predicted
    return model, images, labels, Path(shutil.copytree(pred, tmp_path / "predictions"))


@pytest.fixture
def server(review_folder, tmp_path):
    started = Server(review_folder, tmp_path / "server.log")
    yield started
    started.stop()
