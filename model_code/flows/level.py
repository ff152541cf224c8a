"""The flow of one pyramid level: flow steps over a tensor, conditioned on features of a coarser image."""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from model_code.flows.layers import ActNorm, AffineCoupling, InvertibleConv1x1


def squeezes(channels: int, latent_channels: int) -> int:
    """j with latent_channels = channels 4^j (j >= 0): the space-to-depth squeezes from the level's tensor to its
    latent; a ValueError in one line when there is none."""
    j, count = 0, channels
    while count < latent_channels:
        j, count = j + 1, count * 4
    if count != latent_channels:
        allowed = ", ".join(str(channels * 4**i) for i in range(3))
        raise ValueError(
            f"latent_channels={latent_channels}: a level of {channels} channels squeezes to {channels} x 4^j "
            f"channels; allowed: {allowed}, ..."
        )
    return j


class ConditionEncoder(nn.Module):
    """Features [B, F, h, w] of a coarser image [B, C, h, w]: 3x3 conv -> ReLU -> 3x3 conv -> ReLU."""

    def __init__(self, channels: int, features: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, features, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(features, features, 3, padding=1),
            nn.ReLU(),
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image)


class LevelFlow(nn.Module):
    """x [B, c, h, w] -> z [B, c 4^j, h / 2^j, w / 2^j] (j squeezes, ``squeezes``) through ``layers`` steps of
    ActNorm -> invertible 1x1 conv -> affine coupling (masks alternating), log|det dz/dx| [B] the sum of the
    steps'; with ``cond_channels`` > 0 every coupling also sees ``ConditionEncoder`` features of a coarser image
    [B, C, h, w] (squeezed likewise), otherwise the flow is unconditional."""

    def __init__(
        self, *, channels: int, latent_channels: int, layers: int, hidden: int, image_channels: int, cond_channels: int
    ):
        super().__init__()
        self.squeezes = squeezes(channels, latent_channels)
        self.latent_channels = latent_channels
        cond_latent = cond_channels * 4**self.squeezes
        self.encoder = ConditionEncoder(image_channels, cond_channels) if cond_channels else None
        self.steps = nn.ModuleList(
            nn.ModuleList(
                [
                    ActNorm(latent_channels),
                    InvertibleConv1x1(latent_channels),
                    AffineCoupling(latent_channels, hidden, cond_latent, flip=i % 2 == 1),
                ]
            )
            for i in range(layers)
        )

    def condition(self, coarser: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        if self.encoder is None:
            return None
        features = self.encoder(coarser)
        return F.pixel_unshuffle(features, 2**self.squeezes) if self.squeezes else features

    def forward(
        self, x: torch.Tensor, coarser: Optional[torch.Tensor] = None, initialize: bool = False
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """(z, log|det| [B]); ``initialize`` first sets every ActNorm from the batch reaching it (data-dependent
        initialisation), so that its output has zero mean and unit variance per channel."""
        cond = self.condition(coarser)
        h = F.pixel_unshuffle(x, 2**self.squeezes) if self.squeezes else x
        logdet = h.new_zeros(h.shape[0])
        for step in self.steps:
            for layer in step:
                if initialize and isinstance(layer, ActNorm):
                    layer.initialize_from(h)
                h, layer_logdet = layer(h, cond)
                logdet = logdet + layer_logdet
        return h, logdet

    def inverse(self, z: torch.Tensor, coarser: Optional[torch.Tensor] = None) -> torch.Tensor:
        cond = self.condition(coarser)
        h = z
        for step in reversed(self.steps):
            for layer in reversed(step):
                h = layer.inverse(h, cond)
        return F.pixel_shuffle(h, 2**self.squeezes) if self.squeezes else h
