"""A small MLP denoiser for flat data (e.g. 2D points): ``net(x, time) -> tensor`` shaped like x.

It knows nothing about diffusion: ``time`` is whatever scalar the caller feeds (a log SNR, a
level k, ...), embedded with the same sinusoidal features as the U-Net.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from model_code.networks.base import NETWORKS, Network, label_embedding, timestep_embedding, with_labels


@NETWORKS.register("mlp")
class MLPDenoiser(Network):
    """[x, emb(time)] -> (Linear, SiLU) x depth -> zero-initialised Linear.

    Args:
        data_dim: D, entries per example.
        hidden: width of the hidden layers.
        depth: number of hidden layers (>= 1).
        time_embedding_dim: size of the sinusoidal time embedding.
        max_period: longest period of the embedding; frequencies run from 1 down to 1/max_period
            (the default suits times of order 1-100, such as log SNRs).
        num_classes: C > 0 for a class-conditional network: a learned vector per class is added to the
            time embedding; 0: unconditional.
    Shapes: x [B, ...] with D entries per example (e.g. points stored as [B, 2, 1, 1]), time [B]
    (or a scalar), labels [B] or None -> shaped like x. The output is exactly zero at initialisation.
    """

    library_only = ("time_embedding_dim", "max_period")

    def __init__(
        self,
        *,
        data_dim: int,
        hidden: int = 128,
        depth: int = 3,
        time_embedding_dim: int = 32,
        max_period: float = 1000.0,
        num_classes: int = 0,
    ):
        super().__init__()
        for name, value in (
            ("data_dim", data_dim),
            ("hidden", hidden),
            ("depth", depth),
            ("time_embedding_dim", time_embedding_dim),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.data_dim = data_dim
        self.time_embedding_dim = time_embedding_dim
        self.max_period = float(max_period)
        self.num_classes = num_classes
        self.label_embedding = label_embedding(num_classes, time_embedding_dim)
        layers = []
        width = data_dim + time_embedding_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        self.body = nn.Sequential(*layers)
        self.output = nn.Linear(hidden, data_dim)
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    def forward(self, x: torch.Tensor, time: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        if x[0].numel() != self.data_dim:
            raise ValueError(f"x must hold {self.data_dim} entries per example, got shape {tuple(x.shape)}")
        time = torch.as_tensor(time, device=x.device).reshape(-1)
        if time.numel() == 1:
            time = time.expand(x.shape[0])
        if time.shape != (x.shape[0],):
            raise ValueError(f"time must be [B] = [{x.shape[0]}] (or a scalar), got shape {tuple(time.shape)}")
        features = timestep_embedding(time, self.time_embedding_dim, self.max_period)
        embedding = with_labels(features, self.label_embedding, labels).to(x.dtype)
        return self.output(self.body(torch.cat([x.flatten(1), embedding], dim=1))).view_as(x)
