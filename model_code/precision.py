"""Mixed precision for the network only.

A process calls its network as ``net(x, time)``; wrapping the network in ``AutocastNetwork``
runs that call (and its backward pass) under ``torch.autocast`` and hands float32 back, so the
operators, targets, noise, posteriors and losses around it stay float32 whatever the network's
precision. The operators are also autocast-proof on their own (``dct.apply_separable``).

A precision mode is one of ``MODES``: 'auto' (bf16 where the device computes it natively, float32
elsewhere), 'bf16', 'fp16' (CUDA only: its range needs the trainer's loss scaling) or 'no' (float32);
``network_dtype`` resolves it for a device.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

MODES = ("auto", "bf16", "fp16", "no")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "no": None}
NAMES = {torch.bfloat16: "bf16", torch.float16: "fp16", None: "float32"}


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 matrix products in hardware: a CUDA GPU with bf16, or a CPU with AVX-512
    BF16 or AMX tiles as PyTorch reports them (elsewhere CPU bf16 is emulated: 40x slower than float32 on an AMD
    EPYC Zen 2 without them, measured for a convolution stack)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return False


def network_dtype(mode: str, device: torch.device, float32_only: bool = False) -> Optional[torch.dtype]:
    """The autocast dtype of the network for precision ``mode`` on ``device`` (None: float32); 'auto' is bf16
    where ``native_bf16``; 'fp16' off CUDA is refused in one line. ``float32_only``: a network that must compute
    in float32 (``Process.float32_network``), for which 'auto' is float32 and 'bf16' / 'fp16' are refused."""
    device = torch.device(device)
    if mode not in MODES:
        raise ValueError(f"mixed precision {mode!r}; allowed: one of {', '.join(MODES)}")
    if float32_only and mode in DTYPES and DTYPES[mode] is not None:
        raise ValueError(
            f"mixed precision {mode!r} for a network that must compute in float32 (an exactly invertible flow); "
            "allowed: 'no' or 'auto'"
        )
    if mode == "auto":
        return torch.bfloat16 if native_bf16(device) and not float32_only else None
    if mode == "fp16" and device.type != "cuda":
        raise ValueError(f"mixed precision 'fp16' runs on CUDA only; on {device.type} allowed: 'auto', 'bf16' or 'no'")
    return DTYPES[mode]


def describe(mode: str, dtype: Optional[torch.dtype], device: torch.device) -> str:
    """Words for the network's precision, e.g. 'float32 (auto: this CPU has no native bf16)'."""
    name = NAMES[dtype] + ("" if dtype is None else " autocast")
    if mode != "auto":
        return f"{name} (mixed precision {mode!r})"
    kind = "GPU" if torch.device(device).type == "cuda" else "CPU"
    reason = f"this {kind} computes bf16 natively" if dtype is not None else f"this {kind} has no native bf16"
    return f"{name} (auto: {reason})"


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
