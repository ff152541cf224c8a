"""Exponential moving average of a network's weights, with a half-life that ramps up.

After optimiser step n + 1 (n = 0, 1, ... counts the updates before this one):

    shadow <- beta_n shadow + (1 - beta_n) params,   beta_n = min(rate, 0.5^(1 / (r n)))

The half-life of the average, in images, is min(h, r x images seen), with h = B ln 0.5 / ln rate
the half-life that ``rate`` gives at batch size B (EDM's ramp, Karras et al. 2022, r = 0.05 there):
in steps that is min(h / B, r n), hence beta_n above, whatever the batch size. The first update
copies the weights (beta_0 = 0), so the random initial weights leave no trace, where a constant
rate keeps rate^N of them (0.995^600 = 4.9%); beta_n reaches ``rate`` at n = ln 0.5 / (r ln rate).
The step counter lives with the caller (the trainer's step), so resuming restores the EMA exactly.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


class EMA(nn.Module):
    """Holds ``shadow``, a copy of the network whose parameters follow the ramped average above.
    Buffers (e.g. operator schedules inside the network, if any) are copied as they are."""

    def __init__(self, net: nn.Module, rate: float, rampup_ratio: float = 0.05):
        super().__init__()
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"ema_rate must lie in [0, 1), got {rate}")
        if not rampup_ratio > 0:
            raise ValueError(f"ema_rampup_ratio must be > 0, got {rampup_ratio}")
        self.rate = rate
        self.rampup_ratio = rampup_ratio
        self.shadow = copy.deepcopy(net).eval().requires_grad_(False)

    def decay(self, num_updates: int) -> float:
        """beta_n = min(rate, 0.5^(1 / (r n))) for the update that follows n = ``num_updates`` earlier ones."""
        if num_updates == 0:
            return 0.0
        return min(self.rate, math.pow(0.5, 1.0 / (self.rampup_ratio * num_updates)))

    @torch.no_grad()
    def update(self, net: nn.Module, num_updates: int) -> None:
        """One EMA update after an optimiser step; ``num_updates`` = updates before this one (the step - 1)."""
        shadow_params = list(self.shadow.parameters())
        params = [p.detach() for p in net.parameters()]
        torch._foreach_lerp_(shadow_params, params, 1.0 - self.decay(num_updates))
        for shadow_buffer, buffer in zip(self.shadow.buffers(), net.buffers()):
            shadow_buffer.copy_(buffer)
