"""The operator interface and the bases shared by the registered operators (their modules sit beside this one).

Forward degradation operators A_k, k = 0..K, with A_0 = I. Every operator is linear, deterministic
and pure: ``op(x, k)`` returns A_k x for images x of shape [B, C, H, W] and levels k of shape [B],
and never modifies x. Schedules are buffers.

Operators that are diagonal in an orthonormal basis (``DiagonalOperator``) also expose
``to_basis``, ``from_basis`` and the spectrum ``d_k`` (A_k = B^T diag(d_k) B); the Gaussian
objective needs them. Levels are integers for tabulated schedules (``heat``, the random maps);
operators with ``continuous = True`` also accept real levels in [0, K] (t = k / K).
"""

from __future__ import annotations

from typing import Sequence, Tuple, Union

import torch
from torch import nn

from model_code.dct import apply_separable, dct_matrix, fft_dct_2d, fft_idct_2d, laplacian_eigenvalues
from model_code.registry import Registered, Registry

OPERATORS = Registry("operator", package="model_code.operators")

ImageSize = Union[int, Sequence[int]]


def _image_hw(image_size: ImageSize) -> Tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    height, width = (int(v) for v in image_size)
    return height, width


def check_positive_int(name: str, value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


class Operator(Registered, nn.Module):
    """Base class: A_k for k = 0..K. Subclasses implement ``forward(x, k)``."""

    diagonal = False
    continuous = False

    def __init__(self, *, image_size: ImageSize, K: int):
        super().__init__()
        check_positive_int("K", K)
        self.height, self.width = _image_hw(image_size)
        self.K = K

    def check_levels(self, k: torch.Tensor) -> torch.Tensor:
        """Validate levels k [B]: integer unless the operator is continuous, within [0, K].

        The range check never reads the levels back to the host (that would stall every training step
        on an accelerator): ``torch._assert_async`` fails at once on the CPU (a ValueError here) and fails
        the next synchronising call with the same message on a GPU.
        """
        if k.is_floating_point() and not self.continuous:
            raise ValueError(f"{type(self).__name__} takes integer levels 0..{self.K}, got real levels")
        message = f"levels must lie in [0, {self.K}]"
        try:
            torch._assert_async(((k >= 0) & (k <= self.K)).all(), message)
        except RuntimeError:
            raise ValueError(message) from None
        return k

    def fraction(self, k: torch.Tensor) -> torch.Tensor:
        """t = k / K as float32 [B]."""
        return k.to(torch.float32) / self.K

    def extra_repr(self) -> str:
        return f"image_size=({self.height}, {self.width}), K={self.K}"


class SeparableOperator(Operator):
    """A_k x = L(k) x R(k)^T per channel: per-level matrices L [K+1, H, H] and R [K+1, W, W] in the buffers
    ``left`` and ``right`` (``register_levels``), two matrix products at any level."""

    def register_levels(self, left: torch.Tensor, right: torch.Tensor, persistent: bool) -> None:
        """Store L and R (float32); ``persistent`` ones are saved in checkpoints (maps that cannot be rebuilt
        from the config alone), the others rebuilt at construction."""
        self.register_buffer("left", left.float(), persistent=persistent)
        self.register_buffer("right", right.float(), persistent=persistent)

    def forward(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        k = self.check_levels(k)
        return apply_separable(x, self.left[k], self.right[k])


class DiagonalOperator(Operator):
    """A_k = B^T diag(d_k) B for an orthonormal basis B.

    Subclasses define ``to_basis``, ``from_basis`` and ``spectrum(k) -> d_k`` broadcastable to
    [B, C, H, W] (the same for every channel).
    """

    diagonal = True

    def to_basis(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def from_basis(self, coefficients: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def spectrum(self, k: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        d = self.spectrum(self.check_levels(k))
        return self.from_basis(d * self.to_basis(x))


class PixelBasisOperator(DiagonalOperator):
    """A diagonal operator whose basis is the pixel basis: A_k = s(t) I, t = k / K."""

    continuous = True

    def to_basis(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def from_basis(self, coefficients: torch.Tensor) -> torch.Tensor:
        return coefficients

    def scale(self, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def spectrum(self, k: torch.Tensor) -> torch.Tensor:
        return self.scale(self.fraction(self.check_levels(k)))[:, None, None, None]


class DCTOperator(DiagonalOperator):
    """A diagonal operator in the orthonormal 2D DCT-II basis: the transform as two products with the DCT
    matrices, or by FFTs (``dct.fft_dct_2d``) from ``dct_by_fft_from`` pixels per image, where they are faster
    (the same numbers to float32 rounding)."""

    # measured with python -m scripts.benchmark_blur on one thread of the project's AMD EPYC: FFTs win from 256 x 256
    dct_by_fft_from = 256 * 256

    def __init__(self, *, image_size: ImageSize, K: int):
        super().__init__(image_size=image_size, K=K)
        self.dct_by_fft = self.height * self.width >= self.dct_by_fft_from
        if not self.dct_by_fft:
            self.register_buffer("dct_h", dct_matrix(self.height), persistent=False)
            self.register_buffer("dct_w", dct_matrix(self.width), persistent=False)
        self.register_buffer("eigen_h", laplacian_eigenvalues(self.height).float(), persistent=False)
        self.register_buffer("eigen_w", laplacian_eigenvalues(self.width).float(), persistent=False)

    def to_basis(self, x: torch.Tensor) -> torch.Tensor:
        return fft_dct_2d(x) if self.dct_by_fft else apply_separable(x, self.dct_h, self.dct_w)

    def from_basis(self, coefficients: torch.Tensor) -> torch.Tensor:
        if self.dct_by_fft:
            return fft_idct_2d(coefficients)
        return apply_separable(coefficients, self.dct_h.T, self.dct_w.T)

    def frequencies_squared(self) -> torch.Tensor:
        """lambda_ij = pi^2 (i^2/H^2 + j^2/W^2), shape [H, W]."""
        return self.eigen_h[:, None] + self.eigen_w[None, :]
