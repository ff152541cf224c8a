"""Class conditioning: labels bound to a network, label dropout, classifier-free guidance, labels per image.

A conditional network takes ``net(x [B, ...], time [B], labels [B])`` with labels in 0..C-1, or ``NO_LABEL``
for a row the network sees without its class (the unconditional model that label dropout trains). Processes
and samplers know nothing of labels: ``conditioned(net, labels, guidance)`` binds them to the network, and
the result is called as ``f(x, time)`` like any network, so every process's loss, denoiser, ELBO and
likelihood is conditional without a line of its own.

Classifier-free guidance (Ho & Salimans 2022) with weight w >= 0 guides the network's output, the quantity
each process predicts (eps or v of the gaussian process, the residual u_{k-1} - u_k of ihdm):

    f_w(x, c) = (1 + w) f(x, c) - w f(x, none),

so w = 0 is the conditional network itself. Both evaluations run as one batch of 2B rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import torch

from model_code.randomness import LABEL_STREAM, Randomness, seed_from

NO_LABEL = -1  # the label of a row that the network sees unconditionally


def check_guidance(guidance: float) -> None:
    """Refuse a guidance weight that is not a finite number >= 0."""
    real = not isinstance(guidance, bool) and isinstance(guidance, (int, float)) and math.isfinite(guidance)
    if not real or guidance < 0:
        raise ValueError(f"guidance={guidance!r}: a finite number >= 0 (0: the conditional model)")


class ConditionedNetwork:
    """``net`` with class labels [B] bound, called as ``f(x [B, ...], time [B]) -> [B, ...]``, guided with weight
    ``guidance`` (the module docstring's f_w). Rows labelled NO_LABEL are unconditional (guidance leaves them
    as they are: both halves agree)."""

    def __init__(self, net, labels: torch.Tensor, guidance: float = 0.0):
        check_guidance(guidance)
        self.net, self.labels, self.guidance = net, labels, float(guidance)

    def __call__(self, x: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        labels = self.labels.to(x.device)
        if self.guidance == 0:
            return self.net(x, time, labels)
        none = torch.full_like(labels, NO_LABEL)
        both = self.net(torch.cat([x, x]), torch.cat([time, time]), torch.cat([labels, none]))
        conditional, unconditional = both.chunk(2)
        return conditional + self.guidance * (conditional - unconditional)


def num_classes_of(net) -> int:
    """The class count C of a network (``Network.num_classes``; 0: unconditional, as is a plain function of
    (x, time) such as a test's oracle)."""
    return getattr(net, "num_classes", 0)


def conditioned(net, labels: Optional[torch.Tensor], guidance: float = 0.0):
    """``net`` as a network of (x, time): itself when ``labels`` is None (unconditional: ``guidance`` must be 0),
    else a ``ConditionedNetwork``."""
    if labels is None:
        check_guidance(guidance)
        if guidance:
            raise ValueError(f"guidance={guidance} needs class labels (a class-conditional model)")
        return net
    return ConditionedNetwork(net, labels, guidance)


def drop_labels(labels: Optional[torch.Tensor], probability: float, randomness: Randomness) -> Optional[torch.Tensor]:
    """Label dropout for training: each row becomes NO_LABEL with ``probability`` (one uniform draw per row from
    ``randomness``, the examples' own stream, so any split of the batch drops the same rows). None stays None."""
    if labels is None:
        return None
    dropped = randomness.rand((labels.shape[0],)).to(labels.device) < probability
    return torch.where(dropped, torch.full_like(labels, NO_LABEL), labels)


@dataclass(frozen=True)
class LabelChoice:
    """Which class each image of a sampling request gets.

    ``classes`` None: image i draws its label uniformly from 0..C-1 with a generator seeded by
    (seed, LABEL_STREAM, i), so it depends on its own seed alone. One class: every image gets it. Several: with
    ``per_class`` N, images i = c N .. c N + N - 1 get classes[c] (a grid with one row per class); without, image
    i gets classes[i mod len(classes)].
    """

    classes: Optional[Tuple[int, ...]] = None
    per_class: Optional[int] = None

    def count(self) -> Optional[int]:
        """The number of images the choice fixes (len(classes) * per_class), or None."""
        return None if self.per_class is None else len(self.classes) * self.per_class

    def check(self, num_classes: int) -> None:
        """One line for classes outside 0..num_classes-1, or any class choice on an unconditional model."""
        if num_classes == 0:
            if self.classes is not None:
                raise ValueError(
                    f"class labels {list(self.classes)} given, but this model is unconditional (trained without "
                    "labels, model.num_classes=0); allowed: no class option"
                )
            return
        for label in self.classes or ():
            if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < num_classes:
                raise ValueError(f"class label {label!r} is outside 0..{num_classes - 1} (this model's classes)")

    def labels(self, rows: Sequence[int], seed: int, num_classes: int) -> Optional[torch.Tensor]:
        """int64 labels [len(rows)] of images ``rows`` of the request; None for an unconditional model."""
        if num_classes == 0:
            return None
        rows = list(rows)
        if self.classes is None:
            return torch.tensor([uniform_label(seed, i, num_classes) for i in rows], dtype=torch.int64)
        if self.per_class is not None:
            return torch.tensor([self.classes[i // self.per_class] for i in rows], dtype=torch.int64)
        return torch.tensor([self.classes[i % len(self.classes)] for i in rows], dtype=torch.int64)

    def record(self, num_classes: int) -> dict:
        """How the labels were chosen, as recorded with samples and results."""
        if num_classes == 0:
            return {"labels": "none (unconditional model)"}
        if self.classes is None:
            return {"labels": f"drawn per image, uniform over the {num_classes} classes"}
        return {"labels": list(self.classes), "per_class": self.per_class}


def uniform_label(seed: int, index: int, num_classes: int) -> int:
    """Image ``index``'s label drawn uniformly from 0..num_classes-1 by its own generator (seed, LABEL_STREAM)."""
    generator = torch.Generator().manual_seed(seed_from(seed, LABEL_STREAM, index))
    return int(torch.randint(num_classes, (1,), generator=generator))
