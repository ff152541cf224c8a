"""Exponential moving average of a network's weights, with a warm-up.

After optimiser step n (n = 0, 1, ... counts the updates before this one):

    shadow <- beta_n shadow + (1 - beta_n) params,   beta_n = min(rate, (1 + n) / (10 + n))

The warm-up (the upstream code's) makes the first updates nearly copies, so the shadow forgets the
random initial weights: their share after N updates is prod_n beta_n = 9! N! / (N + 9)! ~ 9! / N^9
instead of rate^N (0.995^600 = 4.9%). beta_n reaches ``rate`` at n = (10 rate - 1) / (1 - rate).
The step counter lives with the caller (the trainer's step), so resuming restores the EMA exactly.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA(nn.Module):
    """Holds ``shadow``, a copy of the network whose parameters follow the warmed-up average above.
    Buffers (e.g. operator schedules inside the network, if any) are copied as they are."""

    def __init__(self, net: nn.Module, rate: float):
        super().__init__()
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"ema_rate must lie in [0, 1), got {rate}")
        self.rate = rate
        self.shadow = copy.deepcopy(net).eval().requires_grad_(False)

    def decay(self, num_updates: int) -> float:
        """beta_n = min(rate, (1 + n) / (10 + n)) for the update that follows ``num_updates`` earlier ones."""
        return min(self.rate, (1.0 + num_updates) / (10.0 + num_updates))

    @torch.no_grad()
    def update(self, net: nn.Module, num_updates: int) -> None:
        """One EMA update after an optimiser step; ``num_updates`` = updates before this one (the step - 1)."""
        shadow_params = list(self.shadow.parameters())
        params = [p.detach() for p in net.parameters()]
        torch._foreach_lerp_(shadow_params, params, 1.0 - self.decay(num_updates))
        for shadow_buffer, buffer in zip(self.shadow.buffers(), net.buffers()):
            shadow_buffer.copy_(buffer)
