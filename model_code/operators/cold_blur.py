"""Cold Diffusion's blur: k repeated depthwise convolutions with a normalised Gaussian kernel."""

from __future__ import annotations

import math

import torch

from model_code.operators.base import OPERATORS, ImageSize, SeparableOperator

BLUR_ROUTINES = ("constant", "incremental", "exponential", "linear")
BLUR_PADDINGS = ("circular", "reflect")


def cold_blur_stds(K: int, routine: str, kernel_std: float, kernel_std_step: float) -> torch.Tensor:
    """s_i for the steps i = 0..K-1, float64 [K].

    constant: s_i = kernel_std; incremental: kernel_std (i + 1); exponential: exp(kernel_std i);
    linear: kernel_std + kernel_std_step i.
    """
    i = torch.arange(K, dtype=torch.float64)
    stds = {
        "constant": torch.full_like(i, kernel_std),
        "incremental": kernel_std * (i + 1),
        "exponential": torch.exp(kernel_std * i),
        "linear": kernel_std + kernel_std_step * i,
    }
    return stds[routine]


def gaussian_taps(kernel_size: int, std: float) -> torch.Tensor:
    """exp(-x^2 / (2 std^2)) at x = -(n//2)..n//2, normalised to sum 1, float64 [n]."""
    x = torch.arange(kernel_size, dtype=torch.float64) - kernel_size // 2
    taps = torch.exp(-(x**2) / (2 * std**2))
    return taps / taps.sum()


def convolution_matrix(taps: torch.Tensor, n: int, padding: str) -> torch.Tensor:
    """The [n, n] matrix of a 1D convolution with symmetric ``taps`` after padding the signal by len(taps)//2.

    Output p reads input p + x, x = -(len//2)..len//2; an index past the border wraps around (circular)
    or is mirrored about the border sample without repeating it (reflect, as torch pads).
    """
    half = taps.shape[0] // 2
    source = torch.arange(n)[:, None] + torch.arange(-half, half + 1)[None, :]  # [n, len]
    if padding == "circular":
        source = source % n
    else:
        source = source.abs()
        source = torch.where(source > n - 1, 2 * (n - 1) - source, source)
    matrix = torch.zeros(n, n, dtype=torch.float64)
    matrix.scatter_add_(1, source, taps.expand(n, -1).contiguous())
    return matrix


def level_matrices(stds: torch.Tensor, kernel_size: int, n: int, padding: str) -> torch.Tensor:
    """M(k) = C_{k-1} ... C_1 C_0 for k = 0..K (M(0) = I), C_i the 1D convolution of step i: float32 [K+1, n, n]."""
    running = torch.eye(n, dtype=torch.float64)
    products = [running]
    for std in stds.tolist():
        running = convolution_matrix(gaussian_taps(kernel_size, std), n, padding) @ running
        products.append(running)
    return torch.stack(products).float()


@OPERATORS.register("cold_blur")
class ColdBlurOperator(SeparableOperator):
    """Cold Diffusion's blur: A_k = G_{k-1} ... G_1 G_0, G_i a depthwise convolution of every channel.

    G_i's kernel is the outer product of the 1D taps exp(-x^2 / (2 s_i^2)), x = -(n//2)..n//2,
    normalised to sum 1 (n = kernel_size, odd), with s_i from ``blur_routine`` (``cold_blur_stds``).
    The image is padded by n//2 before each convolution: ``circular`` (wraps around, Cold's default)
    or ``reflect`` (torch's reflect padding, Cold's *_reflect routines and CIFAR-10's
    Special_6_routine = linear, kernel_std 0.35, kernel_std_step 0.01). Level k applies Cold's
    per-step transforms 0..k-1 in order.

    The kernel and both paddings are separable, so A_k x = M_H(k) x M_W(k)^T (``SeparableOperator``)
    per channel with per-level products M(k) of 1D convolution matrices (built in float64, stored
    float32 [K+1, n, n]): two matrix products at any level. Not marked diagonal: the bases here (pixels,
    the DCT-II, whose half-sample reflection repeats the border sample) diagonalise neither padding.
    Integer levels.
    """

    def __init__(
        self,
        *,
        image_size: ImageSize,
        K: int,
        kernel_size: int,
        kernel_std: float,
        kernel_std_step: float,
        blur_routine: str,
        blur_padding: str,
    ):
        super().__init__(image_size=image_size, K=K)
        side = min(self.height, self.width)
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0 or kernel_size > side:
            raise ValueError(f"kernel_size={kernel_size!r}: an odd integer in 1..{side} (the image's shorter side)")
        if not (math.isfinite(kernel_std) and kernel_std > 0):
            raise ValueError(f"kernel_std={kernel_std!r}: a finite number > 0 (the Gaussian kernel's std in pixels)")
        if not (math.isfinite(kernel_std_step) and kernel_std_step >= 0):
            raise ValueError(f"kernel_std_step={kernel_std_step!r}: a finite number >= 0 (the linear routine's step)")
        if blur_routine not in BLUR_ROUTINES:
            raise ValueError(f"blur_routine={blur_routine!r}: one of {', '.join(BLUR_ROUTINES)}")
        if blur_padding not in BLUR_PADDINGS:
            raise ValueError(f"blur_padding={blur_padding!r}: one of {', '.join(BLUR_PADDINGS)}")
        stds = cold_blur_stds(K, blur_routine, kernel_std, kernel_std_step)
        left = level_matrices(stds, kernel_size, self.height, blur_padding)
        self.register_levels(left, level_matrices(stds, kernel_size, self.width, blur_padding), persistent=False)
