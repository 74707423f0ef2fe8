"""How to predict: one :class:`PredictOptions` for the predictor, ``glsmonai predict``, the bundle and ``compare``.

The options are written once, here. A model folder records some of them (``gls_model.json``'s ``predict``
block, from the bundle's ``predict`` key: the CPU preset records ``tta`` and ``components task``); an option
left unset (``None``) takes the recorded value, else it is off. :meth:`PredictOptions.resolve` does that
once, against the model folder's settings, and the predictor keeps the result::

    options = PredictOptions(tta=True)                      # the rest as the model folder records
    options = dataclasses.replace(options, blend=0.25)      # or options.replace(blend=0.25)
    plain = PLAIN                                           # every prediction-time option off
    variant = variant_options("tta+components")             # compare's variants, as options

``compare --variants NAME`` predicts every trained model again with :func:`variant_options` of each name
(:data:`VARIANTS`); the models themselves are predicted with :data:`PLAIN`, whatever their folder records.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from glsmonai.model_folder import ModelSettings

__all__ = ["ENGINES", "PLAIN", "PLAIN_OPTIONS", "PredictOptions", "VARIANTS", "VARIANT_NAMES", "variant_options"]

#: what runs the network: the PyTorch network from the checkpoints, or a file ``glsmonai export`` wrote
ENGINES: tuple[str, ...] = ("torch", "torchscript", "onnx")


@dataclass(frozen=True)
class PredictOptions:
    """The prediction options, each written once.

    Attributes:
        tta: mirror test-time augmentation: the scan is also predicted flipped left-right, and the two
            probability maps (and keypoints, with the model's ``flip_swap`` pairs swapped) are averaged.
        components: keep this many largest connected components of the mask and fill its holes (MONAI
            ``KeepLargestConnectedComponent``, ``FillHoles``); ``"task"``: the number the model folder
            records for its task (LV 1, iris 2); ``0``: no post-processing.
        blend: 0: the window predictions replace the global one inside the windows (a hard edge); ``> 0``
            (at most 0.5): they are blended in with a weight that is 1 in a window's middle and falls by a
            cosine ramp over this fraction of the window, from each side, to 0 at its border
            (:func:`~glsmonai.transforms.crop.feather_profile`; overlapping windows are averaged by their
            weights). With ``crop_space working`` the weight mixes the fused probability with the global
            one, so outside the windows the global probability stands instead of the fused one.
        min_confidence: keypoints whose ``confidence`` is below it are unsure: their windows are not used
            (the global probability stands there; with ``crop_space working``, inside an unsure window not
            covered by a kept one) and the prediction flags them. 0: off. With ``tta``, a keypoint is flagged
            when either pass dropped its window.
        amp: run the network in mixed precision (bfloat16 on a CPU with bf16 instructions, float16 on CUDA);
            assembly and post-processing stay in float32.
        fusion: with ``False``, a stage-3 model of ``crop_space original`` puts the local prediction inside
            the windows instead of the fused one (the ablation "local alone vs fused").
        keypoint_band: the keypoint search band (working pixels around the predicted boundary; 0: anywhere);
            ``None``: the model's.
        stage: predict with this stage's best checkpoint (``"stage1"``: the global branch alone, the GS
            baseline of the thesis); ``None``: the latest stage trained.
        engine: ``"torch"`` (the network rebuilt from the settings, with a stage's checkpoint), or an exported
            file run in its place: ``"torchscript"`` (``model.ts``) or ``"onnx"`` (``model.onnx``, ONNX
            Runtime). Reading, TTA, assembling and writing are the same for every engine; exported files run
            in float32 and carry their stage and keypoint band.
        exported: the exported file for ``engine``; ``None``: ``model.ts`` / ``model.onnx`` in the model folder
            (``glsmonai export -o DIR`` makes ``DIR`` such a folder).
        threshold: probability threshold of the mask.

    ``tta``, ``components``, ``blend``, ``min_confidence`` and ``amp`` left at ``None`` take what the model
    folder records (:meth:`resolve`), else off; ``False`` / ``0`` switch one off explicitly.
    """

    tta: bool | None = None
    components: int | str | None = None
    blend: float | None = None
    min_confidence: float | None = None
    amp: bool | None = None
    fusion: bool = True
    keypoint_band: int | None = None
    stage: str | int | None = None
    engine: str = "torch"
    exported: str | os.PathLike | None = None
    threshold: float = 0.5

    #: the options a model folder may record, and their value when neither the caller nor the folder sets one
    RECORDED: ClassVar[dict[str, object]] = {"tta": False, "components": 0, "blend": 0.0, "min_confidence": 0.0,
                                             "amp": False}

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {list(ENGINES)}, got {self.engine!r}")
        if self.blend is not None and not 0 <= float(self.blend) <= 0.5:
            raise ValueError(f"blend must be in [0, 0.5], got {self.blend}")
        if isinstance(self.components, str) and self.components != "task":
            raise ValueError(f"components must be a number (0: off) or 'task', got {self.components!r}")

    def replace(self, **changes: object) -> PredictOptions:
        """A copy with ``changes`` (:func:`dataclasses.replace`)."""
        return dataclasses.replace(self, **changes)

    def resolve(self, settings: ModelSettings, where: str | os.PathLike = "the model folder") -> PredictOptions:
        """These options for a model: each unset recorded option takes the folder's value, else off;
        ``components="task"`` becomes the task's number.

        Args:
            settings: the model folder's settings (:class:`~glsmonai.model_folder.ModelSettings`).
            where: the model folder, named in errors.

        Returns:
            options whose ``tta``, ``amp`` (bool), ``components`` (int), ``blend`` and ``min_confidence``
            (float) are set.

        Raises:
            ValueError: ``components="task"`` for a folder that records no ``num_components``; a recorded
                ``blend`` out of range.
        """
        recorded = settings.predict
        chosen = {
            name: getattr(self, name) if getattr(self, name) is not None
            else getattr(recorded, name) if getattr(recorded, name) is not None else off
            for name, off in self.RECORDED.items()
        }
        components = chosen["components"]
        if components == "task":
            components = settings.num_components
            if components is None:
                raise ValueError(f"{where}: the model folder records no num_components for its task; give a number")
        return self.replace(tta=bool(chosen["tta"]), components=int(components), blend=float(chosen["blend"]),
                            min_confidence=float(chosen["min_confidence"]), amp=bool(chosen["amp"]))


#: every prediction-time option off: the network's output as it is (compare's models are predicted so)
PLAIN = PredictOptions(tta=False, components=0, blend=0.0, min_confidence=0.0)
#: :data:`PLAIN`'s recorded options as keyword arguments (``run_inference(..., **PLAIN_OPTIONS)``)
PLAIN_OPTIONS: dict = {"tta": False, "components": 0, "blend": 0.0, "min_confidence": 0.0}

#: compare's prediction-time variants of a trained model: name -> the options changed from :data:`PLAIN`
VARIANTS: dict[str, dict[str, object]] = {
    # a GLS model's global branch alone: the GS baseline, without training it again
    "stage1": {"stage": "stage1"},
    # the options the model folder records (e.g. the CPU preset's): unset, so they are resolved from the folder
    "recorded": {"tta": None, "components": None, "blend": None, "min_confidence": None},
    "tta": {"tta": True},
    "components": {"components": "task"},
    "tta+components": {"tta": True, "components": "task"},
    "tta+components+blend": {"tta": True, "components": "task", "blend": 0.25},
    # windows feathered into the global prediction (cosine ramp over a quarter of the window per side)
    "blend": {"blend": 0.25},
    # windows of keypoints with confidence < 0.5 dropped: the decoder's best peak off the boundary is more than
    # twice as likely as the one on it. Tiny demo-like models scored 0.85 to 1 (most exactly 1), so it drops rarely
    "gate": {"min_confidence": 0.5},
}
#: the variant names, in compare's order
VARIANT_NAMES: tuple[str, ...] = tuple(VARIANTS)


def variant_options(name: str) -> PredictOptions:
    """The options of one of compare's variants (:data:`VARIANTS`): :data:`PLAIN` with the variant's changes.

    ============================  ===========================================================
    name                          options
    ============================  ===========================================================
    ``stage1``                    plain, ``stage="stage1"``
    ``recorded``                  tta, components, blend, min_confidence unset: as recorded
    ``tta``                       plain, ``tta=True``
    ``components``                plain, ``components="task"``
    ``tta+components``            plain, ``tta=True, components="task"``
    ``tta+components+blend``      plain, ``tta=True, components="task", blend=0.25``
    ``blend``                     plain, ``blend=0.25``
    ``gate``                      plain, ``min_confidence=0.5``
    ============================  ===========================================================

    Raises:
        ValueError: an unknown name (naming the known ones).
    """
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; choose from {list(VARIANTS)}")
    return PLAIN.replace(**VARIANTS[name])
