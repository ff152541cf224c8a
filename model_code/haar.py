"""The orthonormal Haar pyramid: an image split into a coarse image and its detail, exactly and without volume change.

One split of x [B, C, h, w] (h, w even) works on each 2x2 block (a b; c d) of a channel:

    coarse  = (a + b + c + d) / 2                      [B, C, h/2, w/2]
    detail  = ((a - b + c - d), (a + b - c - d), (a - b - c + d)) / 2    [B, 3C, h/2, w/2]

a 4x4 orthonormal matrix per block, so |coarse|^2 + |detail|^2 = |x|^2 and the Jacobian determinant is 1. The coarse
image is 2x the block mean. A split by a factor 2^m (``split``) applies it m times to the coarse part and stacks the
m details at the coarse resolution (the finer ones squeezed, space to depth): detail [B, C (4^m - 1), h/2^m, w/2^m].
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F

# rows: LL, LH, HL, HH over the block entries (a, b, c, d) in pixel_unshuffle's order (row-major in the block)
HAAR = 0.5 * torch.tensor(
    [[1.0, 1.0, 1.0, 1.0], [1.0, -1.0, 1.0, -1.0], [1.0, 1.0, -1.0, -1.0], [1.0, -1.0, -1.0, 1.0]]
)


def halvings(resolutions: Sequence[int]) -> List[int]:
    """m_j with resolutions[j + 1] = resolutions[j] / 2^m_j (m_j >= 1); a ValueError in one line otherwise."""
    if not resolutions or not all(isinstance(r, int) and not isinstance(r, bool) for r in resolutions):
        raise ValueError(f"resolutions={tuple(resolutions)}: a non-empty tuple of integers (e.g. 28, 14, 7)")
    steps = []
    for finer, coarser in zip(resolutions[:-1], resolutions[1:]):
        ratio = finer // coarser if coarser > 0 else 0
        if coarser < 1 or finer % coarser or ratio < 2 or ratio & (ratio - 1):
            raise ValueError(
                f"resolutions={tuple(resolutions)}: {coarser} is not {finer} halved one or more times; allowed: "
                "decreasing resolutions, each the previous one divided by a power of 2 (e.g. 28, 14, 7)"
            )
        steps.append(ratio.bit_length() - 1)
    return steps


def haar_split(x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """x [B, C, h, w] -> (coarse [B, C, h/2, w/2], detail [B, 3C, h/2, w/2]), the module docstring's one split."""
    batch, channels, height, width = x.shape
    blocks = F.pixel_unshuffle(x, 2).view(batch, channels, 4, height // 2, width // 2)
    bands = torch.einsum("ij,bcjhw->bcihw", HAAR.to(x), blocks)
    return bands[:, :, 0], bands[:, :, 1:].reshape(batch, 3 * channels, height // 2, width // 2)


def haar_merge(coarse: torch.Tensor, detail: torch.Tensor) -> torch.Tensor:
    """The inverse of ``haar_split`` (the transpose of its orthonormal matrix): -> x [B, C, 2h, 2w]."""
    batch, channels, height, width = coarse.shape
    bands = torch.cat([coarse[:, :, None], detail.view(batch, channels, 3, height, width)], dim=2)
    blocks = torch.einsum("ji,bcjhw->bcihw", HAAR.to(coarse), bands)
    return F.pixel_shuffle(blocks.reshape(batch, 4 * channels, height, width), 2)


def split(x: torch.Tensor, m: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """m splits: x [B, C, h, w] -> (coarse [B, C, h/2^m, w/2^m], detail [B, C (4^m - 1), h/2^m, w/2^m]); the
    detail stacks the details of splits 1..m, split i's squeezed by 2^(m - i) (``F.pixel_unshuffle``)."""
    details = []
    for i in range(1, m + 1):
        x, detail = haar_split(x)
        details.append(F.pixel_unshuffle(detail, 2 ** (m - i)) if i < m else detail)
    return x, torch.cat(details, dim=1)


def merge(coarse: torch.Tensor, detail: torch.Tensor, m: int) -> torch.Tensor:
    """The inverse of ``split(x, m)``: (coarse [B, C, h, w], detail [B, C (4^m - 1), h, w]) -> [B, C, 2^m h, 2^m w]."""
    channels = coarse.shape[1]
    sizes = [3 * channels * 4 ** (m - i) for i in range(1, m + 1)]
    x = coarse
    for i, part in reversed(list(enumerate(detail.split(sizes, dim=1), start=1))):
        x = haar_merge(x, F.pixel_shuffle(part, 2 ** (m - i)) if i < m else part)
    return x


def pyramid_sizes(height: int, width: int, resolutions: Sequence[int]) -> List[Tuple[int, int]]:
    """(h_j, w_j) of pyramid level j: resolutions[j] is the height, the width shrinks by the same factor; a
    ValueError in one line unless resolutions[0] = height and every factor divides both sides."""
    halvings(resolutions)
    if resolutions[0] != height or any(width * r % height for r in resolutions):
        raise ValueError(
            f"resolutions={tuple(resolutions)}: the first must be the image height {height} and each the height "
            f"halved (the width {width} halved as often); allowed e.g. {halved_example(height)}"
        )
    return [(r, width * r // height) for r in resolutions]


def halved_example(height: int) -> Tuple[int, ...]:
    """The height and its halvings while they stay even: 28 -> (28, 14, 7)."""
    sizes = [height]
    while sizes[-1] % 2 == 0 and sizes[-1] > 2:
        sizes.append(sizes[-1] // 2)
    return tuple(sizes)


def latent_sizes(channels: int, sizes: Sequence[Tuple[int, int]]) -> List[int]:
    """n_j, the entries of level j's latent: C (h_j w_j - h_{j+1} w_{j+1}) for a detail, C h w for the coarsest
    level; they sum to C H W, the image's (the pyramid is orthonormal)."""
    areas = [h * w for h, w in sizes] + [0]
    return [channels * (areas[j] - areas[j + 1]) for j in range(len(sizes))]
