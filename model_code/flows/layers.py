"""Invertible layers of a normalizing flow (RealNVP, Glow), each with its exact log-determinant.

Every layer maps x [B, c, h, w] to y of the same shape: ``forward(x, cond) -> (y, log|det dy/dx| [B])`` and
``inverse(y, cond) -> x``; ``cond`` [B, F, h, w] (or None) is what a conditional layer sees besides x, and a layer
that needs no condition ignores it.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

Condition = Optional[torch.Tensor]


class ActNorm(nn.Module):
    """y = (x + b) exp(s) per channel (Glow): log|det| = h w sum_c s_c.

    Identity until ``initialize_from(x)`` sets b = -mean_c(x), s = -log std_c(x) over the batch and the pixels, so
    that y has zero mean and unit variance per channel (data-dependent initialisation); ``initialized`` (a
    buffer, saved with the weights) records that it happened.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def initialize_from(self, x: torch.Tensor) -> None:
        """b and s from a batch x [B, c, h, w]: its per-channel mean and std (std floored at 1e-6)."""
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = x.std(dim=(0, 2, 3), keepdim=True, unbiased=False).clamp_min(1e-6)
        self.bias.copy_(-mean)
        self.log_scale.copy_(-std.log())
        self.initialized.fill_(True)

    def forward(self, x: torch.Tensor, cond: Condition = None) -> Tuple[torch.Tensor, torch.Tensor]:
        logdet = x.shape[2] * x.shape[3] * self.log_scale.sum()
        return (x + self.bias) * self.log_scale.exp(), logdet.expand(x.shape[0])

    def inverse(self, y: torch.Tensor, cond: Condition = None) -> torch.Tensor:
        return y * torch.exp(-self.log_scale) - self.bias


class InvertibleConv1x1(nn.Module):
    """y = W x at every pixel (Glow's invertible 1x1 convolution), W [c, c] initialised as a random rotation:
    log|det| = h w log|det W|."""

    def __init__(self, channels: int):
        super().__init__()
        rotation, _ = torch.linalg.qr(torch.randn(channels, channels))
        self.weight = nn.Parameter(rotation)

    def forward(self, x: torch.Tensor, cond: Condition = None) -> Tuple[torch.Tensor, torch.Tensor]:
        logdet = x.shape[2] * x.shape[3] * torch.linalg.slogdet(self.weight)[1]
        return F.conv2d(x, self.weight[:, :, None, None]), logdet.expand(x.shape[0])

    def inverse(self, y: torch.Tensor, cond: Condition = None) -> torch.Tensor:
        return F.conv2d(y, torch.linalg.inv(self.weight)[:, :, None, None])


def coupling_mask(channels: int, height: int, width: int, flip: bool, device) -> torch.Tensor:
    """m [1, c, h, w] of 0/1, the entries a coupling layer passes through unchanged: the first c // 2 channels
    (c >= 2), or a checkerboard (c = 1); ``flip`` takes the complement, so alternate layers change the other half."""
    if channels >= 2:
        mask = (torch.arange(channels, device=device) < channels // 2).float()[None, :, None, None]
        mask = mask.expand(1, channels, height, width)
    else:
        rows, cols = torch.arange(height, device=device), torch.arange(width, device=device)
        mask = ((rows[:, None] + cols[None, :]) % 2 == 0).float()[None, None]
    return 1 - mask if flip else mask


class AffineCoupling(nn.Module):
    """Affine coupling (RealNVP): with the mask m of ``coupling_mask``,

        y = x exp(s) + t,   (s, t) = (1 - m) (tanh(a), b),   (a, b) = NN(m x, cond),

    so the entries where m = 1 pass unchanged and determine the transform of the others: log|det| = sum s.
    NN: 3x3 conv -> ReLU -> 1x1 conv -> ReLU -> 3x3 conv, its last layer zero (the identity at initialisation).
    """

    def __init__(self, channels: int, hidden: int, cond_channels: int, flip: bool):
        super().__init__()
        self.flip = flip
        self.net = nn.Sequential(
            nn.Conv2d(channels + cond_channels, hidden, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, 1),
            nn.ReLU(),
            nn.Conv2d(hidden, 2 * channels, 3, padding=1),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def shift_and_log_scale(self, x: torch.Tensor, cond: Condition) -> Tuple[torch.Tensor, torch.Tensor]:
        """(t, s) [B, c, h, w] from the entries of x [B, c, h, w] the mask keeps (and the condition)."""
        mask = coupling_mask(x.shape[1], x.shape[2], x.shape[3], self.flip, x.device).to(x.dtype)
        inputs = x * mask if cond is None else torch.cat([x * mask, cond], dim=1)
        raw_scale, shift = self.net(inputs).chunk(2, dim=1)
        return shift * (1 - mask), torch.tanh(raw_scale) * (1 - mask)

    def forward(self, x: torch.Tensor, cond: Condition = None) -> Tuple[torch.Tensor, torch.Tensor]:
        shift, log_scale = self.shift_and_log_scale(x, cond)
        return x * log_scale.exp() + shift, log_scale.flatten(1).sum(1)

    def inverse(self, y: torch.Tensor, cond: Condition = None) -> torch.Tensor:
        shift, log_scale = self.shift_and_log_scale(y, cond)  # y = x where the mask keeps x
        return (y - shift) * torch.exp(-log_scale)
