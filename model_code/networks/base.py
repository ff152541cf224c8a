"""The network interface and what the registered networks share.

A network is a denoiser that knows nothing about the process: ``net(x [B, ...], time [B]) -> [B, ...]``
shaped like its output channels, ``time`` being whatever scalar the process feeds it (the IHDM level k,
1000 t for the gaussian process). Its output is exactly zero at initialisation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from model_code.registry import Registered, Registry

NETWORKS = Registry("network", package="model_code.networks")


class Network(Registered, nn.Module):
    """Base class of every registered network: ``forward(x, time) -> tensor``."""

    def forward(self, x: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def timestep_embedding(time: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of time [B] -> [B, dim]: cos and sin of time / max_period^(i / half)."""
    half = dim // 2
    frequencies = torch.exp(-math.log(max_period) * torch.arange(half, device=time.device, dtype=torch.float32) / half)
    angles = time.float()[:, None] * frequencies[None]
    embedding = torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)
    if dim % 2:
        embedding = F.pad(embedding, (0, 1))
    return embedding
