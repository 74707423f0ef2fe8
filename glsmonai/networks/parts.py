"""Named parts of a network that can be frozen, in the style of segmentation_models_pytorch's
``freeze_encoder`` / ``unfreeze_encoder``: a frozen part gets no gradients and stays in eval mode."""

from __future__ import annotations

from collections.abc import Iterator

import torch.nn as nn

__all__ = ["FreezableParts"]


class FreezableParts:
    """Mixin for an ``nn.Module`` whose sub-networks are named in :attr:`parts`.

    A training stage says which parts train (see :mod:`glsmonai.stages`); the network itself knows
    nothing of stages. PyTorch has ``requires_grad_`` per module, but no notion of a part that stays
    frozen through ``model.train()``, hence this small mixin.
    """

    #: the names of the sub-networks, in forward order
    parts: tuple[str, ...] = ()

    def part(self, name: str) -> nn.Module:
        """The sub-network called ``name``; ``ValueError`` for an unknown name."""
        if name not in self.parts:
            raise ValueError(f"unknown part {name!r}; this network has {list(self.parts)}")
        return getattr(self, name)

    @property
    def frozen(self) -> frozenset[str]:
        """The names of the frozen parts."""
        return frozenset(getattr(self, "_frozen", ()))

    def is_frozen(self, name: str) -> bool:
        return name in self.frozen

    def freeze(self, *names: str) -> None:
        """No gradients for these parts (all when none is named), and eval mode until unfrozen."""
        for name in names or self.parts:
            for p in self.part(name).parameters():
                p.requires_grad_(False)
            self.part(name).eval()
        self._frozen = self.frozen | set(names or self.parts)

    def unfreeze(self, *names: str) -> None:
        """Gradients again for these parts (all when none is named); they follow ``train()`` again."""
        for name in names or self.parts:
            for p in self.part(name).parameters():
                p.requires_grad_(True)
            self.part(name).train(self.training)  # type: ignore[attr-defined]
        self._frozen = self.frozen - set(names or self.parts)

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        """The parameters of the parts that are not frozen (what an optimizer should get)."""
        return (p for p in self.parameters() if p.requires_grad)  # type: ignore[attr-defined]

    def train(self, mode: bool = True):
        """Like :meth:`nn.Module.train`, but frozen parts stay in eval mode."""
        super().train(mode)  # type: ignore[misc]
        for name in self.frozen:
            self.part(name).eval()
        return self
