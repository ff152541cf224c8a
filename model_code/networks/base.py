"""The network interface and what the registered networks share.

A network is a denoiser that knows nothing about the process: ``net(x [B, ...], time [B], labels [B] = None)
-> [B, ...]`` shaped like its output channels, ``time`` being whatever scalar the process feeds it (the IHDM
level k, 1000 t for the gaussian process). Its output is exactly zero at initialisation.

A network built with ``num_classes`` C > 0 is class-conditional: ``labels`` (int64, 0..C-1, or ``NO_LABEL``
for a row seen without its class; None: every row without) enter through ``LabelEmbedding``, added to the time
features as in EDM. With C = 0 it has no label parameters at all and refuses labels, so an unconditional
network, and its checkpoints, are exactly what they were before conditioning existed.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from model_code.conditioning import NO_LABEL
from model_code.registry import Registered, Registry

NETWORKS = Registry("network", package="model_code.networks")


class Network(Registered, nn.Module):
    """Base class of every registered network: ``forward(x, time, labels=None) -> tensor``; ``num_classes`` C
    (0: unconditional)."""

    num_classes: int = 0

    def forward(self, x: torch.Tensor, time: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        raise NotImplementedError


def check_num_classes(num_classes: int) -> None:
    """Refuse a class count that is not an integer >= 0."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
        raise ValueError(f"num_classes must be an integer >= 0 (0: unconditional), got {num_classes!r}")


class LabelEmbedding(nn.Module):
    """Class labels [B] -> [B, dim]: a learned vector per class, exactly zero for NO_LABEL rows (and for every row
    when ``labels`` is None), so a row trained without its label gives no gradient to the table.

    The table starts at zero (it draws no random numbers, so the rest of a conditional network is initialised
    exactly as the unconditional one): at initialisation a conditional network equals the unconditional one.
    """

    def __init__(self, num_classes: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(num_classes, dim))

    def forward(self, labels: Optional[torch.Tensor], batch: int) -> torch.Tensor:
        if labels is None:
            return self.weight.new_zeros(batch, self.weight.shape[1])
        if labels.shape != (batch,) or labels.dtype != torch.int64:
            raise ValueError(f"labels must be int64 [{batch}], got {labels.dtype} {tuple(labels.shape)}")
        known = labels != NO_LABEL
        return self.weight[labels.clamp_min(0)] * known[:, None].to(self.weight.dtype)


def label_embedding(num_classes: int, dim: int) -> Optional[LabelEmbedding]:
    """A LabelEmbedding for a conditional network (num_classes > 0), None for an unconditional one."""
    check_num_classes(num_classes)
    return LabelEmbedding(num_classes, dim) if num_classes else None


def with_labels(
    features: torch.Tensor, embedding: Optional[LabelEmbedding], labels: Optional[torch.Tensor]
) -> torch.Tensor:
    """Time features [B, dim] plus the label embedding (conditional networks); an unconditional network refuses
    labels in one line."""
    if embedding is None:
        if labels is not None:
            raise ValueError("this network is unconditional (num_classes=0): it takes no class labels")
        return features
    return features + embedding(labels, features.shape[0]).to(features.dtype)


def timestep_embedding(time: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of time [B] -> [B, dim]: cos and sin of time / max_period^(i / half)."""
    half = dim // 2
    frequencies = torch.exp(-math.log(max_period) * torch.arange(half, device=time.device, dtype=torch.float32) / half)
    angles = time.float()[:, None] * frequencies[None]
    embedding = torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)
    if dim % 2:
        embedding = F.pad(embedding, (0, 1))
    return embedding
