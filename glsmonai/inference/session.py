"""Keypoints as prompts, and a scan held open so that a moved keypoint re-segments its window alone.

A keypoint given for a scan (``predict --keypoints CSV``, a reviewer dragging it) replaces the heatmap peak the
model found: the window is cut there, the local branch and the fusion run on it, and everything else (the
global branch, the other windows) stays the model's own. Given the model's own keypoints, the prediction is
the plain one (``tests/inference/test_session.py``: the masks are byte-equal).

:class:`ScanSession` holds a scan prepared once and the global branch's outputs, so that
:meth:`ScanSession.resegment` runs only the local branch and the fusion of the moved keypoint's window (with
``crop_space working`` the fusion network covers the working image, and runs there again), then pastes the
windows into the global probability on the scan's grid, as :meth:`~glsmonai.inference.Predictor.assemble` does::

    session = predictor.session(image, geometry)          # or predictor.open("scan.nii.gz")
    first = session.prediction                            # the plain prediction
    moved = session.resegment(0, (512.0, 300.0))          # keypoint 0 moved: its window only
    back = session.resegment(0, None)                     # the model's own keypoint again

:func:`prompted_forward` is the same forward pass for a batch of views, as the folder run calls it.

Keypoints are ``[row, col]`` in the scan's own (original) pixels. A given keypoint's window is always used (it
is never ``unsure``), its ``confidence`` is 1 and its ``score`` the heatmap's probability at it; its
``source`` is ``user``. With mirror TTA the given keypoint is mirrored into the flipped view (and its
``flip_swap`` partner's index taken there), so both views cut their windows at it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from glsmonai.data.io import Geometry
from glsmonai.inference.data_iterators import as_tensor as _tensor
from glsmonai.networks import GLSKeys
from glsmonai.precision import autocast

if TYPE_CHECKING:
    from glsmonai.inference.predict_from_raw_data import Prediction, Predictor

__all__ = ["ScanSession", "check_keypoints", "given_sources", "mark_given", "prompted_forward"]

_K = GLSKeys
#: outputs with one row per window, ``(K, ...)`` for one scan (with ``crop_space original``, ``fused`` too)
_WINDOW_ROWS = (_K.LOCAL.value, _K.GLOBAL_WINDOWS.value)
#: per-keypoint outputs of one scan, ``(1, K, ...)``
_KEYPOINT_COLUMNS = (_K.KEYPOINTS.value, _K.SCORES.value, _K.CONFIDENCE.value, _K.CENTRES.value,
                     _K.FRAME_CENTRES.value)


def check_keypoints(keypoints: np.ndarray | Sequence, shape: Sequence[int], num_keypoints: int,
                    where: str | None = None) -> np.ndarray:
    """Given keypoints checked against a scan: ``(K, 2)`` float64 ``[row, col]``, NaN rows for the model's own.

    Args:
        keypoints: ``(K', 2)`` with ``K' <= num_keypoints`` (the missing ones: NaN).
        shape: the scan's ``(rows, cols)``.
        num_keypoints: the model's ``K``.
        where: named in errors (their first words).

    Raises:
        ValueError: more keypoints than the model has, a row that is not two numbers, or a point off the scan
            (outside ``[0, rows - 1] x [0, cols - 1]``).
    """
    at = f"{where}: " if where else ""
    points = np.asarray(keypoints, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"{at}keypoints must be (K, 2) [row, col], got shape {points.shape}")
    if len(points) > num_keypoints:
        raise ValueError(f"{at}{len(points)} keypoints given, the model has {num_keypoints}")
    full = np.full((num_keypoints, 2), np.nan)
    full[: len(points)] = points
    partial = np.isnan(full).any(axis=1) & ~np.isnan(full).all(axis=1)
    if partial.any():
        raise ValueError(f"{at}keypoint {int(np.flatnonzero(partial)[0])} has one coordinate only")
    upper = np.asarray(shape[:2], dtype=np.float64) - 1
    given = ~np.isnan(full[:, 0])
    off = given & ~((full >= 0) & (full <= upper)).all(axis=1)
    if off.any():
        k = int(np.flatnonzero(off)[0])
        raise ValueError(f"{at}keypoint {k} at [{full[k, 0]:g}, {full[k, 1]:g}] is off the scan "
                         f"({int(shape[0])} x {int(shape[1])} pixels: rows 0 .. {int(upper[0])}, cols 0 .. {int(upper[1])})")
    return full


def _members(predictor: Predictor) -> list[torch.nn.Module]:
    """The networks that run (a fold ensemble's members, else the one network); refused for exported files."""
    networks = [m.network for m in getattr(predictor, "members", ())] or [predictor.network]
    if predictor.options.engine != "torch" or not all(hasattr(n, "local_net") for n in networks):
        raise ValueError(f"keypoints as prompts need the PyTorch network (--engine torch), not {predictor.options.engine}")
    return networks


def _view_keypoints(predictor: Predictor, given: np.ndarray, view: dict, flipped: bool) -> np.ndarray:
    """Given ``(K, 2)`` original keypoints (NaN: not given) -> ``(K, 2)`` working keypoints of a view (mirrored
    and re-ordered by the ``flip_swap`` pairs in the flipped view; NaN kept)."""
    points = np.array(given, dtype=np.float64)
    if flipped:
        points[:, 1] = view["working_grid"].original_shape[1] - 1 - points[:, 1]
        points = points[predictor._swap_order(len(points))]
    return view["working_grid"].to_working(points)


def _inputs(predictor: Predictor, view: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One view as a batch of one on the predictor's device: image ``(1, 1, H, W)`` and the original-space inputs."""
    device = predictor.device
    image = _tensor(view["image"]).float()[None].to(device)
    extra = {}
    if predictor.original:
        extra = {key: _tensor(view[key]).float()[None].to(device) for key in ("source", "to_source", "window")}
    return image, extra


def _sample(heatmap: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """``(1, K)`` values of ``heatmap`` ``(1, K, H, W)`` at ``points`` ``(1, K, 2)`` (nearest pixel, each channel
    at its own keypoint)."""
    h, w = heatmap.shape[-2:]
    rows = points[0, :, 0].round().long().clamp(0, h - 1)
    cols = points[0, :, 1].round().long().clamp(0, w - 1)
    return heatmap[0, torch.arange(points.shape[1]), rows, cols][None]


class _ViewState:
    """One view (plain, or mirrored with TTA) of an open scan: its inputs, every member's global outputs, the
    keypoints the model found, and every member's current outputs (a batch of one, on the device)."""

    def __init__(self, predictor: Predictor, networks: list[torch.nn.Module], view: dict, flipped: bool) -> None:
        self.view, self.flipped = view, flipped
        self.image, self.extra = _inputs(predictor, view)
        with autocast(predictor.device, predictor.options.amp):
            self.globals = [network.forward_global(self.image) for network in networks]
        self.found: dict[str, torch.Tensor] = {}
        if networks[0].num_keypoints:
            if len(networks) > 1:  # a fold ensemble decodes its keypoints once, from the averaged probabilities
                from glsmonai.inference.predict_from_raw_data import mean_probability_logits

                merged = [mean_probability_logits([g[key] for g in self.globals]) for key in (_K.GLOBAL.value, _K.HEATMAP.value)]
            else:
                merged = [self.globals[0][_K.GLOBAL.value], self.globals[0][_K.HEATMAP.value]]
            self.found = networks[0].find_keypoints(*merged)
            self.heatmap = torch.stack([torch.sigmoid(g[_K.HEATMAP.value].float()) for g in self.globals]).mean(0)
        self.outputs: list[dict[str, torch.Tensor]] = []
        self.canvas: list[torch.Tensor] | None = None  # the members' global probabilities on the scan's grid

    def keypoint_outputs(self, working: np.ndarray) -> dict[str, torch.Tensor]:
        """``keypoints``, ``scores``, ``confidence`` ``(1, K, ...)`` with the given working keypoints (NaN: the
        model's) in place of the peaks: their confidence 1, their score the heatmap's probability there."""
        found = self.found[_K.KEYPOINTS.value]
        given = torch.as_tensor(working, dtype=found.dtype, device=found.device)[None]
        chosen = torch.isnan(given).any(-1)  # (1, K): True where the model's own keypoint stands
        points = torch.where(chosen[..., None], found, given)
        scores = torch.where(chosen, self.found[_K.SCORES.value], _sample(self.heatmap, points).to(found.dtype))
        confidence = torch.where(chosen, self.found[_K.CONFIDENCE.value], torch.ones_like(scores))
        return {_K.KEYPOINTS.value: points, _K.SCORES.value: scores, _K.CONFIDENCE.value: confidence}


def _run_windows(predictor: Predictor, network: torch.nn.Module, state: _ViewState, out: dict[str, torch.Tensor],
                 index: Sequence[int] | None = None) -> dict[str, torch.Tensor]:
    """The local branch and the fusion of one member for the windows ``index`` (``None``: every window) at
    ``out``'s keypoints; ``out`` is updated in place and returned.

    With ``crop_space original`` only those windows are computed (and spliced into ``out``); with ``crop_space
    working`` their local crops are, and the fusion network runs on the working image again.
    """
    if predictor.stage.output == _K.GLOBAL.value or not network.num_keypoints:
        return out  # the global branch alone: the keypoints do not change the mask
    k = out[_K.KEYPOINTS.value].shape[1]
    index = list(range(k)) if index is None else list(index)
    with autocast(predictor.device, predictor.options.amp):
        crops, placed = network.windows.crop(state.image, out[_K.KEYPOINTS.value][:, index], training=False, **state.extra)
        local = network.local_net(crops)[0]
        fuse = network.output == _K.FUSED.value
        if predictor.original:
            part = {_K.GLOBAL.value: out[_K.GLOBAL.value], **placed, _K.LOCAL.value: local}
            if fuse:
                fusion_input, extra = network.windows.fusion_input(part)
                part.update(extra)
                part[_K.FUSED.value] = network.fusion(fusion_input)
            for key, value in part.items():
                if key in (*_WINDOW_ROWS, _K.FUSED.value):
                    rows = out.get(key)
                    out[key] = value if rows is None or len(index) == k else _splice(rows, value, index, dim=0)
                elif key in _KEYPOINT_COLUMNS:
                    rows = out.get(key)
                    out[key] = value if rows is None or len(index) == k else _splice(rows, value, index, dim=1)
                elif key != _K.GLOBAL.value:
                    out[key] = value
        else:
            rows = out.get(_K.LOCAL.value)
            out[_K.LOCAL.value] = local if rows is None or len(index) == k else _splice(rows, local, index, dim=0)
            if fuse:
                fusion_input, extra = network.windows.fusion_input(out)
                out.update(extra)
                out[_K.FUSED.value] = network.fusion(fusion_input)
    return out


def _splice(rows: torch.Tensor, values: torch.Tensor, index: Sequence[int], dim: int) -> torch.Tensor:
    """``rows`` with its entries ``index`` along ``dim`` replaced by ``values`` (a new tensor)."""
    out = rows.clone()
    out.index_copy_(dim, torch.as_tensor(list(index), device=rows.device), values.to(rows.dtype))
    return out


def _restored(out: dict[str, torch.Tensor], first: dict[str, torch.Tensor], kv: int) -> dict[str, torch.Tensor]:
    """``out`` with window ``kv``'s outputs as ``first`` holds them (``crop_space original``: a window's outputs
    depend on that window alone)."""
    out = dict(out)
    for key, value in first.items():
        if key in (*_WINDOW_ROWS, _K.FUSED.value):
            out[key] = _splice(out[key], value[kv:kv + 1], [kv], dim=0)
        elif key in _KEYPOINT_COLUMNS:
            out[key] = _splice(out[key], value[:, kv:kv + 1], [kv], dim=1)
    return out


def _for_assembly(outputs: list[dict[str, torch.Tensor]]) -> dict | list[dict]:
    """A view's member outputs as :meth:`Predictor.assemble` takes them: float tensors on the CPU, one dict (one
    model) or a list (an ensemble)."""
    cpu = [{key: value.detach().float().cpu() for key, value in out.items()} for out in outputs]
    return cpu[0] if len(cpu) == 1 else cpu


def _open_views(predictor: Predictor, views: Sequence[dict], given: np.ndarray | None) -> list[_ViewState]:
    """Every view's global outputs and, at the keypoints (``given`` ``(K, 2)`` original, NaN: the model's), every
    member's windows."""
    networks = _members(predictor)
    states = []
    for i, view in enumerate(views):
        state = _ViewState(predictor, networks, view, flipped=i == 1)
        for network, out in zip(networks, state.globals):
            out = dict(out)
            if state.found:
                working = _view_keypoints(predictor, given, view, state.flipped) if given is not None else \
                    np.full((network.num_keypoints, 2), np.nan)
                out.update(state.keypoint_outputs(working))
            state.outputs.append(_run_windows(predictor, network, state, out))
        states.append(state)
    return states


@torch.no_grad()
def prompted_forward(predictor: Predictor, views: Sequence[dict], keypoints: np.ndarray) -> list[dict | list[dict]]:
    """:meth:`Predictor.forward` for one scan's views with keypoints given: the global branch, the keypoints
    (given ones in place of the peaks), then the windows, the local branch and the fusion.

    Args:
        predictor: the predictor (``engine`` torch; one model or a fold ensemble).
        views: the scan's prepared views (:attr:`Predictor.preparer`).
        keypoints: ``(K, 2)`` ``[row, col]`` original pixels, NaN rows for the model's own
            (:func:`check_keypoints`).

    Returns:
        one output per view, as :meth:`Predictor.forward` gives them (for :meth:`Predictor.assemble`).
    """
    return [_for_assembly(state.outputs) for state in _open_views(predictor, views, keypoints)]


def given_sources(keypoints: np.ndarray | None, k: int) -> np.ndarray:
    """``(K,)`` ``user`` where a keypoint is given (not NaN), ``model`` elsewhere."""
    source = np.full(k, "model", dtype=object)
    if keypoints is not None and len(keypoints):
        source[~np.isnan(np.asarray(keypoints, dtype=np.float64)[:k, 0])] = "user"
    return source


def mark_given(prediction: Prediction, keypoints: np.ndarray | None) -> Prediction:
    """``prediction`` with the given keypoints (``(K, 2)``, NaN: not given) exactly as given (the windows used
    them through the working grid, in float32) and their ``source`` ``user``; returned for convenience."""
    prediction.source = given_sources(keypoints, len(prediction.keypoints))
    if keypoints is not None and len(keypoints):
        given = np.asarray(keypoints, dtype=np.float64)[: len(prediction.keypoints)]
        chosen = ~np.isnan(given[:, 0])
        prediction.keypoints = np.array(prediction.keypoints, dtype=np.float64)
        prediction.keypoints[: len(given)][chosen] = given[chosen]
    return prediction


class ScanSession:
    """A scan prepared once, with the global branch's outputs kept, whose keypoints can be moved one at a time.

    Made by :meth:`Predictor.session` / :meth:`Predictor.open`. Not safe for two threads at once (hold a lock).

    Args:
        predictor: the predictor (``engine`` torch).
        image: ``(rows, cols)`` the scan.
        geometry: its geometry (``None``: unit spacing).
        keypoints: ``(K, 2)`` keypoints given at the start (original pixels; NaN rows: the model's own).

    Attributes:
        prediction: the current prediction (:class:`Prediction`, with ``source`` per keypoint).
        given: ``(K, 2)`` the keypoints given now (NaN rows: the model's own).
    """

    def __init__(self, predictor: Predictor, image: np.ndarray, geometry: Geometry | None = None,
                 keypoints: np.ndarray | Sequence | None = None) -> None:
        self.predictor, self.image, self.geometry = predictor, np.asarray(image), geometry
        self.num_keypoints = int(getattr(predictor.network, "num_keypoints", 0) or 0)
        self.given = check_keypoints(keypoints if keypoints is not None else np.zeros((0, 2)), self.image.shape,
                                     self.num_keypoints)
        self._networks = _members(predictor)
        with torch.no_grad():
            self._states = _open_views(predictor, predictor.preparer(self.image, geometry), self.given)
        self._first = [[{key: value for key, value in out.items()} for out in state.outputs] for state in self._states]
        self._first_given = self.given.copy()
        self.prediction = self._combine()

    @property
    def shape(self) -> tuple[int, int]:
        """The scan's ``(rows, cols)``."""
        return tuple(self.image.shape[:2])  # type: ignore[return-value]

    @property
    def source(self) -> np.ndarray:
        """``(K,)`` ``model`` or ``user`` per keypoint."""
        return given_sources(self.given, self.num_keypoints)

    @torch.no_grad()
    def resegment(self, k: int, point: Sequence[float] | np.ndarray | None) -> Prediction:
        """Move keypoint ``k`` to ``point`` (``[row, col]``, original pixels; ``None``: back to the model's own)
        and run the local branch and the fusion of its window again, in every view (and member).

        Returns:
            the new :attr:`prediction`.

        Raises:
            ValueError: no keypoint ``k``, or ``point`` off the scan.
        """
        if not isinstance(k, (int, np.integer)) or not 0 <= k < self.num_keypoints:
            raise ValueError(f"no keypoint {k!r}: the model has {self.num_keypoints} (0 .. {self.num_keypoints - 1})")
        given = self.given.copy()
        given[k] = np.nan if point is None else np.asarray(point, dtype=np.float64).reshape(2)
        given = check_keypoints(given, self.shape, self.num_keypoints)
        order = self.predictor._swap_order(self.num_keypoints)
        plain = np.isnan(given).all() and np.isnan(self._first_given).all()
        restore = point is None and np.isnan(self._first_given[k, 0]) and self.predictor.original
        for v, state in enumerate(self._states):
            kv = int(order[k]) if state.flipped else k  # the keypoint's index in this view
            for m, (network, out) in enumerate(zip(self._networks, state.outputs)):
                if plain:  # every keypoint the model's own again: the outputs as first computed
                    state.outputs[m] = dict(self._first[v][m])
                elif restore:  # the model's own window as first computed (original windows stand alone)
                    state.outputs[m] = _restored(out, self._first[v][m], kv)
                else:
                    out = dict(out)
                    out.update(state.keypoint_outputs(_view_keypoints(self.predictor, given, state.view, state.flipped)))
                    state.outputs[m] = _run_windows(self.predictor, network, state, out, [kv])
        self.given = given
        self.prediction = self._combine()
        return self.prediction

    def _assembly_outputs(self, state: _ViewState) -> dict | list[dict]:
        """:func:`_for_assembly`, with ``crop_space original`` each member's global probability on the scan's grid
        added (computed once: a moved keypoint does not change it)."""
        outs = _for_assembly(state.outputs)
        if self.predictor.original:
            members = outs if isinstance(outs, list) else [outs]
            if state.canvas is None:
                grid = state.view["working_grid"]
                state.canvas = [grid.image_to_original(torch.sigmoid(out[_K.GLOBAL.value][0]), mode="bilinear")
                                for out in members]
            for out, canvas in zip(members, state.canvas):
                out["global_original"] = canvas
        return outs

    def _combine(self) -> Prediction:
        results = [self.predictor.assemble(self._assembly_outputs(state), state.view) for state in self._states]
        return mark_given(self.predictor.combine(self.image, self.geometry, results), self.given)

