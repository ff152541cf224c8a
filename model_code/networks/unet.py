"""A U-Net of the improved-diffusion kind: ``net(x, time) -> tensor`` shaped like x.

GroupNorm + SiLU residual blocks conditioned on a sinusoidal embedding of a scalar time,
single-head self-attention at chosen levels, stride-2 convolutions down, nearest-neighbour
upsampling + convolution up, and a zero-initialised output convolution (so an untrained
network outputs 0). It knows nothing about the process: ``time`` is whatever scalar the
process feeds it (the IHDM level k, or 1000 t for the Gaussian objective).
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from model_code.networks.base import NETWORKS, Network, label_embedding, timestep_embedding, with_labels


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with 32 groups, or the largest divisor of ``channels`` below that (tiny test nets)."""
    return nn.GroupNorm(math.gcd(32, channels), channels)


def zero_module(module: nn.Module) -> nn.Module:
    for parameter in module.parameters():
        nn.init.zeros_(parameter)
    return module


class ResBlock(nn.Module):
    """h = conv(SiLU(GN(x))); out = skip(x) + zero_conv(dropout(SiLU(N(h)))), the embedding entering N:

    - added, N(h) = GN(h + W emb) (``scale_shift=False``, the first U-Net's way). A GroupNorm whose groups hold
      one channel (any level of 32 channels or fewer, ``group_norm``) subtracts each channel's spatial mean and
      with it the added constant, so such a block is blind to time and class;
    - as a scale and shift, N(h) = GN(h) (1 + s) + b with (s, b) = W emb (``scale_shift=True``, improved
      diffusion's adaptive GroupNorm): the embedding reaches the output at any width.
    """

    def __init__(self, in_channels: int, out_channels: int, embedding_dim: int, dropout: float, scale_shift: bool):
        super().__init__()
        self.scale_shift = scale_shift
        self.in_layers = nn.Sequential(
            group_norm(in_channels), nn.SiLU(), nn.Conv2d(in_channels, out_channels, 3, padding=1)
        )
        projected = 2 * out_channels if scale_shift else out_channels
        self.embedding = nn.Sequential(nn.SiLU(), nn.Linear(embedding_dim, projected))
        self.out_layers = nn.Sequential(
            group_norm(out_channels),
            nn.SiLU(),
            nn.Dropout(dropout),
            zero_module(nn.Conv2d(out_channels, out_channels, 3, padding=1)),
        )
        self.skip = nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x)
        projected = self.embedding(embedding)[:, :, None, None].to(h.dtype)
        if self.scale_shift:
            scale, shift = projected.chunk(2, dim=1)
            h = self.out_layers[1:](self.out_layers[0](h) * (1 + scale) + shift)
        else:
            h = self.out_layers(h + projected)
        return self.skip(x) + h


class AttentionBlock(nn.Module):
    """Single-head self-attention over the H*W positions, with a residual connection."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = group_norm(channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj = zero_module(nn.Conv1d(channels, channels, 1))

    def forward(self, x: torch.Tensor, embedding: torch.Tensor = None) -> torch.Tensor:
        batch, channels, height, width = x.shape
        qkv = self.qkv(self.norm(x).reshape(batch, channels, height * width))
        q, k, v = (t.transpose(1, 2)[:, None] for t in qkv.chunk(3, dim=1))  # [B, 1, HW, C]
        attended = F.scaled_dot_product_attention(q, k, v)[:, 0].transpose(1, 2)
        return x + self.proj(attended).reshape(batch, channels, height, width)


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor, embedding: torch.Tensor = None) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest-neighbour upsampling to the skip connection's size, then a 3x3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        return self.conv(F.interpolate(x, size=tuple(size), mode="nearest"))


class Stage(nn.ModuleList):
    """A residual block optionally followed by attention, applied in order. An attention block's activations are
    recomputed in the backward pass instead of kept (its [B, HW, C] copies of q, k and v; as improved diffusion
    does), and with ``checkpointed`` (set by the U-Net) every layer's are: the same numbers either way (dropout's
    random state is restored for the recomputation)."""

    checkpointed = False

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        for layer in self:
            recomputed = self.checkpointed or isinstance(layer, AttentionBlock)
            if recomputed and torch.is_grad_enabled():
                x = torch.utils.checkpoint.checkpoint(layer, x, embedding, use_reentrant=False)
            else:
                x = layer(x, embedding)
        return x


@NETWORKS.register("unet")
class UNet(Network):
    """The shared denoiser network.

    Args:
        in_channels / out_channels: image channels C in and out.
        model_channels: base width; level i has model_channels * channel_mult[i] channels.
        channel_mult: one entry per resolution level (level i works at size / 2^i).
        num_res_blocks: residual blocks per level on the way down (one more on the way up).
        attention_levels: indices of the levels that get self-attention.
        dropout: dropout rate inside residual blocks.
        num_classes: C > 0 for a class-conditional network: a learned vector per class is added to the
            sinusoidal time features before the time MLP; 0: unconditional.
        scale_shift_norm: the time (and class) embedding scales and shifts each residual block's second
            GroupNorm (``ResBlock``); False adds it before that norm, where levels of <= 32 channels erase it.
        checkpoint_activations: recompute each residual block's activations in the backward pass instead of
            keeping them, as every attention block's always are (less memory for more time; the same outputs
            and gradients).
    Shapes: x [B, C, H, W], time [B], labels [B] or None -> [B, out_channels, H, W].
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        model_channels: int,
        channel_mult: Sequence[int],
        num_res_blocks: int,
        attention_levels: Sequence[int] = (),
        dropout: float = 0.0,
        num_classes: int = 0,
        scale_shift_norm: bool = False,
        checkpoint_activations: bool = False,
    ):
        super().__init__()
        bad_levels = [level for level in attention_levels if not 0 <= level < len(channel_mult)]
        if bad_levels:
            raise ValueError(
                f"attention_levels {list(attention_levels)} must index channel_mult (0..{len(channel_mult) - 1})"
            )
        self.model_channels = model_channels
        self.num_classes = num_classes
        self.label_embedding = label_embedding(num_classes, model_channels)
        embedding_dim = 4 * model_channels
        self.time_mlp = nn.Sequential(
            nn.Linear(model_channels, embedding_dim), nn.SiLU(), nn.Linear(embedding_dim, embedding_dim)
        )
        self.input_conv = nn.Conv2d(in_channels, model_channels, 3, padding=1)

        def stage(channels_in: int, channels_out: int, level: int) -> Stage:
            layers: List[nn.Module] = [ResBlock(channels_in, channels_out, embedding_dim, dropout, scale_shift_norm)]
            if level in attention_levels:
                layers.append(AttentionBlock(channels_out))
            return Stage(layers)

        self.down = nn.ModuleList()
        skip_channels = [model_channels]
        channels = model_channels
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                self.down.append(stage(channels, model_channels * mult, level))
                channels = model_channels * mult
                skip_channels.append(channels)
            if level != len(channel_mult) - 1:
                self.down.append(Downsample(channels))
                skip_channels.append(channels)

        self.middle = Stage(
            [
                ResBlock(channels, channels, embedding_dim, dropout, scale_shift_norm),
                AttentionBlock(channels),
                ResBlock(channels, channels, embedding_dim, dropout, scale_shift_norm),
            ]
        )

        self.up = nn.ModuleList()
        self.upsamplers = nn.ModuleDict()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for _ in range(num_res_blocks + 1):
                self.up.append(stage(channels + skip_channels.pop(), model_channels * mult, level))
                channels = model_channels * mult
            if level:
                self.upsamplers[str(len(self.up) - 1)] = Upsample(channels)

        self.output = nn.Sequential(
            group_norm(channels), nn.SiLU(), zero_module(nn.Conv2d(channels, out_channels, 3, padding=1))
        )
        for module in self.modules():
            if isinstance(module, Stage):
                module.checkpointed = checkpoint_activations

    def forward(self, x: torch.Tensor, time: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        features = with_labels(timestep_embedding(time, self.model_channels), self.label_embedding, labels)
        embedding = self.time_mlp(features)
        h = self.input_conv(x)
        skips = [h]
        for layer in self.down:
            h = layer(h, embedding)
            skips.append(h)
        h = self.middle(h, embedding)
        for index, layer in enumerate(self.up):
            h = layer(torch.cat([h, skips.pop()], dim=1), embedding)
            if str(index) in self.upsamplers:
                h = self.upsamplers[str(index)](h, skips[-1].shape[-2:])
        return self.output(h)
