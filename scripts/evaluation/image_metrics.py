"""Per-image fidelity of a restoration to its original: RMSE and SSIM, for images in [0, 1] [B, C, H, W]."""

from __future__ import annotations

import torch
import torch.nn.functional as F

SSIM_WINDOW = 11  # Wang et al. (2004): an 11 x 11 Gaussian window of std 1.5
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03  # stabilising constants c_i = (K_i L)^2, L = 1 the data range


def rmse(images: torch.Tensor, originals: torch.Tensor) -> torch.Tensor:
    """sqrt(mean over pixels and channels of (x - y)^2) per image: [B, C, H, W] twice -> [B]."""
    return (images.double() - originals.double()).pow(2).flatten(1).mean(1).sqrt()


def check_ssim_size(size) -> None:
    """One line unless images of ``size`` (H, W) hold SSIM's 11 x 11 window."""
    height, width = size
    if min(height, width) < SSIM_WINDOW:
        raise ValueError(
            f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels (its window); this model's are "
            f"{height}x{width}"
        )


def _window(device) -> torch.Tensor:
    """The normalised 1D Gaussian taps [SSIM_WINDOW], float64."""
    offsets = torch.arange(SSIM_WINDOW, dtype=torch.float64, device=device) - SSIM_WINDOW // 2
    taps = torch.exp(-(offsets**2) / (2 * SSIM_SIGMA**2))
    return taps / taps.sum()


def _local_mean(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """The Gaussian-weighted mean over each full window (valid positions only), per channel: [N, 1, H, W] ->
    [N, 1, H - 10, W - 10]."""
    x = F.conv2d(x, taps.view(1, 1, -1, 1))
    return F.conv2d(x, taps.view(1, 1, 1, -1))


def ssim(images: torch.Tensor, originals: torch.Tensor) -> torch.Tensor:
    """Mean structural similarity per image (Wang et al. 2004), over every channel and every position where the
    11 x 11 Gaussian window (std 1.5) lies inside the image:
        SSIM = (2 mu_x mu_y + c1)(2 s_xy + c2) / ((mu_x^2 + mu_y^2 + c1)(s_x^2 + s_y^2 + c2)),
    the local moments Gaussian-weighted (the population form), c1 = (0.01)^2, c2 = (0.03)^2 for data in [0, 1].
    [B, C, H, W] twice -> [B]; images smaller than 11 x 11 are a one-line ValueError."""
    height, width = images.shape[-2:]
    check_ssim_size((height, width))
    batch, channels = images.shape[:2]
    x = images.double().reshape(batch * channels, 1, height, width)
    y = originals.double().reshape(batch * channels, 1, height, width)
    taps = _window(x.device)
    mu_x, mu_y = _local_mean(x, taps), _local_mean(y, taps)
    var_x = _local_mean(x * x, taps) - mu_x**2
    var_y = _local_mean(y * y, taps) - mu_y**2
    cov = _local_mean(x * y, taps) - mu_x * mu_y
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    index = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return index.reshape(batch, -1).mean(1)
