"""Exponential moving average of a network's weights."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA(nn.Module):
    """Holds ``shadow``, a copy of the network whose parameters follow
    ``shadow <- rate * shadow + (1 - rate) * params`` after every optimiser step.
    Buffers (e.g. operator schedules inside the network, if any) are copied as they are."""

    def __init__(self, net: nn.Module, rate: float):
        super().__init__()
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"ema_rate must lie in [0, 1), got {rate}")
        self.rate = rate
        self.shadow = copy.deepcopy(net).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        shadow_params = list(self.shadow.parameters())
        params = [p.detach() for p in net.parameters()]
        torch._foreach_lerp_(shadow_params, params, 1.0 - self.rate)
        for shadow_buffer, buffer in zip(self.shadow.buffers(), net.buffers()):
            shadow_buffer.copy_(buffer)
