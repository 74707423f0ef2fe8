"""Training on several processes (``torchrun``): PyTorch's DistributedDataParallel, and who writes.

``bundles/gls/configs/multi_gpu_train.json`` wires it: :func:`init_distributed` joins the process group and
gives each process its device, the samplers shard the data, :func:`on_this_rank` (which every stage of
``train.json`` applies to its handlers; one process keeps them all) keeps the handlers that write files or
logs on rank 0 only, and :func:`~glsmonai.engines.workflow.run_stage` wraps the
network in DDP *after* the stage has frozen its parts (:func:`wrap_for_stage`): DDP registers the
parameters that require gradients when it is built, so one wrapper built before stage 2 froze the global
branch would leave the local U-Net's gradients unsynchronised.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import torch
import torch.distributed as dist
from monai.handlers import CheckpointSaver, StatsHandler, TensorBoardStatsHandler
from torch.nn.parallel import DistributedDataParallel

from glsmonai.engines.handlers import ProgressHandler

__all__ = ["init_distributed", "is_main_process", "on_this_rank", "unwrap", "wrap_for_stage", "barrier", "check_in_sync"]

logger = logging.getLogger(__name__)

#: handlers that write files or logs: rank 0 runs them alone
RANK_ZERO_HANDLERS = (CheckpointSaver, StatsHandler, TensorBoardStatsHandler, ProgressHandler)


def init_distributed(backend: str | None = None) -> torch.device:
    """Join the process group ``torchrun`` describes (environment ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``)
    and return this process's device: ``cuda:LOCAL_RANK`` (backend ``nccl``) or the CPU (``gloo``).
    Without ``torchrun``'s environment, a group of one. Calling it again returns the same device."""
    cuda = torch.cuda.is_available()
    if not dist.is_initialized():
        os.environ.setdefault("RANK", "0")
        os.environ.setdefault("WORLD_SIZE", "1")
        os.environ.setdefault("LOCAL_RANK", "0")
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29500")
        dist.init_process_group(backend=backend or ("nccl" if cuda else "gloo"))
        logger.info("process %d of %d (%s)", dist.get_rank(), dist.get_world_size(), dist.get_backend())
    if cuda:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
        return device
    return torch.device("cpu")


def is_main_process() -> bool:
    """Rank 0, or not distributed at all."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def _world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def barrier() -> None:
    """Wait for every process (nothing to wait for when not distributed)."""
    if _world() > 1:
        dist.barrier()


def on_this_rank(handlers: Sequence) -> list:
    """``handlers`` less, on ranks other than 0, those that write checkpoints, logs or progress bars."""
    if is_main_process():
        return list(handlers)
    return [h for h in handlers if not isinstance(h, RANK_ZERO_HANDLERS)]


def unwrap(network: torch.nn.Module) -> torch.nn.Module:
    """The network inside a DDP wrapper (or the network itself)."""
    return network.module if isinstance(network, DistributedDataParallel) else network


def wrap_for_stage(network: torch.nn.Module) -> torch.nn.Module:
    """``network`` in a new DDP wrapper built now, with the stage's parts already frozen; unchanged when
    not distributed. Every trainable part gets a gradient in every stage, so no unused-parameter search."""
    if _world() == 1:
        return network
    device = next(network.parameters()).device
    return DistributedDataParallel(network, device_ids=[device] if device.type == "cuda" else None)


def check_in_sync(network: torch.nn.Module, name: str) -> None:
    """After a stage: every process must hold the same weights (DDP keeps them so); ``RuntimeError`` if not."""
    if _world() == 1:
        return
    state = [t.detach().float() for t in network.state_dict().values() if t.is_floating_point()]
    sums = torch.stack([torch.stack([t.sum(), t.abs().sum()]) for t in state]).to(next(network.parameters()).device)
    gathered = [torch.zeros_like(sums) for _ in range(_world())]
    dist.all_gather(gathered, sums)
    if any(not torch.allclose(g, gathered[0], rtol=1e-5, atol=1e-6) for g in gathered[1:]):
        raise RuntimeError(f"{name}: the processes' weights differ after the stage")
    logger.info("%s: weights in sync across %d processes", name, _world())
