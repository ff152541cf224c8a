"""Mixed precision for the network only.

A process calls its network as ``net(x, time)``; wrapping the network in ``AutocastNetwork``
runs that call (and its backward pass) under ``torch.autocast`` and hands float32 back, so the
operators, targets, noise, posteriors and losses around it stay float32 whatever the network's
precision. The operators are also autocast-proof on their own (``dct.apply_separable``).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn


class AutocastNetwork:
    """``net(x, time, labels=None)`` under ``torch.autocast(device_type, dtype)``, returning float32.

    x [B, ...] float32, time [B], labels [B] or None -> [B, ...] float32 (a flow's tuple (z, log|det|): each
    float32). With ``dtype=None`` it calls ``net`` as is.
    ``channels_last`` hands the network its 4D input in channels-last memory order (values unchanged),
    for a network whose weights were converted with ``net.to(memory_format=torch.channels_last)``.
    """

    def __init__(self, net: nn.Module, device_type: str, dtype: Optional[torch.dtype], channels_last: bool = False):
        self.net = net
        self.device_type = device_type
        self.dtype = dtype
        self.channels_last = channels_last

    def __call__(self, x: torch.Tensor, time: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        arguments = (x, time) if labels is None else (x, time, labels)  # a plain f(x, time) takes no labels
        if self.dtype is None:
            return self.net(*arguments)
        with torch.autocast(self.device_type, dtype=self.dtype):
            out = self.net(*arguments)
        return tuple(part.float() for part in out) if isinstance(out, tuple) else out.float()
