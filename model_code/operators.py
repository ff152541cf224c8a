"""Forward degradation operators A_k, k = 0..K, with A_0 = I.

Every operator is linear, deterministic and pure: ``op(x, k)`` returns A_k x for images
x of shape [B, C, H, W] and levels k of shape [B], and never modifies x. Schedules are buffers.

Operators that are diagonal in an orthonormal basis (``DiagonalOperator``) also expose
``to_basis``, ``from_basis`` and the spectrum ``d_k`` (A_k = B^T diag(d_k) B); the Gaussian
objective needs them. Levels are integers for tabulated schedules (``heat``, the random maps);
operators with ``continuous = True`` also accept real levels in [0, K] (t = k / K).

Build one by name: ``build_operator("heat", image_size=(28, 28), K=100, blur_sigma_min=0.5,
blur_sigma_max=20)``.
"""

from __future__ import annotations

import math
from typing import Sequence, Tuple, Union

import torch
from torch import nn

from model_code.dct import apply_separable, dct_matrix, laplacian_eigenvalues
from model_code.registry import Registry

OPERATORS = Registry("operator")

ImageSize = Union[int, Sequence[int]]


def _image_hw(image_size: ImageSize) -> Tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    height, width = (int(v) for v in image_size)
    return height, width


def _check_positive_int(name: str, value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def heat_blur_schedule(K: int, blur_sigma_min: float, blur_sigma_max: float) -> torch.Tensor:
    """sigma_B,k for k = 0..K, float64 [K+1]: 0 at k = 0, then log-spaced min..max over 1..K."""
    _check_positive_int("K", K)
    if not 0 < blur_sigma_min <= blur_sigma_max:
        raise ValueError(f"need 0 < blur_sigma_min <= blur_sigma_max, got {blur_sigma_min} and {blur_sigma_max}")
    log_sigmas = torch.linspace(math.log(blur_sigma_min), math.log(blur_sigma_max), K, dtype=torch.float64)
    return torch.cat([torch.zeros(1, dtype=torch.float64), log_sigmas.exp()])


class Operator(nn.Module):
    """Base class: A_k for k = 0..K. Subclasses implement ``forward(x, k)``."""

    diagonal = False
    continuous = False

    def __init__(self, *, image_size: ImageSize, K: int):
        super().__init__()
        _check_positive_int("K", K)
        self.height, self.width = _image_hw(image_size)
        self.K = K

    @property
    def name(self) -> str:
        """The registry name this operator was built under (the class name otherwise)."""
        return getattr(self, "build_spec", {}).get("name", type(self).__name__)

    def check_levels(self, k: torch.Tensor) -> torch.Tensor:
        """Validate levels k [B]: integer unless the operator is continuous, within [0, K]."""
        if k.is_floating_point() and not self.continuous:
            raise ValueError(f"{type(self).__name__} takes integer levels 0..{self.K}, got real levels")
        if k.numel() and (k.min() < 0 or k.max() > self.K):
            raise ValueError(f"levels must lie in [0, {self.K}], got {k.min().item()}..{k.max().item()}")
        return k

    def fraction(self, k: torch.Tensor) -> torch.Tensor:
        """t = k / K as float32 [B]."""
        return k.to(torch.float32) / self.K

    def extra_repr(self) -> str:
        return f"image_size=({self.height}, {self.width}), K={self.K}"


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


@OPERATORS.register("identity")
class IdentityOperator(PixelBasisOperator):
    """A_k = I for every k: plain denoising (with the gaussian objective, DDPM)."""

    def scale(self, t: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(t)


@OPERATORS.register("constant_velocity")
class ConstantVelocityOperator(PixelBasisOperator):
    """A_k = (1 - t) I, t = k/K: the image moves to the origin at constant speed, reaching it at K."""

    def scale(self, t: torch.Tensor) -> torch.Tensor:
        return 1.0 - t


@OPERATORS.register("constant_deceleration")
class ConstantDecelerationOperator(PixelBasisOperator):
    """A_k = (1 - t)^2 I, t = k/K: starts at the image with speed 2|u_0|/K and comes to rest at the
    origin at K under constant deceleration. (The formula (t^2/K^2 - t/K) I that the linear-maps
    fork wrote down is 0 at t = 0, so it would not start from the image.)"""

    def scale(self, t: torch.Tensor) -> torch.Tensor:
        return (1.0 - t) ** 2


class DCTOperator(DiagonalOperator):
    """A diagonal operator in the orthonormal 2D DCT-II basis."""

    def __init__(self, *, image_size: ImageSize, K: int):
        super().__init__(image_size=image_size, K=K)
        self.register_buffer("dct_h", dct_matrix(self.height), persistent=False)
        self.register_buffer("dct_w", dct_matrix(self.width), persistent=False)
        self.register_buffer("eigen_h", laplacian_eigenvalues(self.height).float(), persistent=False)
        self.register_buffer("eigen_w", laplacian_eigenvalues(self.width).float(), persistent=False)

    def to_basis(self, x: torch.Tensor) -> torch.Tensor:
        return apply_separable(x, self.dct_h, self.dct_w)

    def from_basis(self, coefficients: torch.Tensor) -> torch.Tensor:
        return apply_separable(coefficients, self.dct_h.T, self.dct_w.T)

    def frequencies_squared(self) -> torch.Tensor:
        """lambda_ij = pi^2 (i^2/H^2 + j^2/W^2), shape [H, W]."""
        return self.eigen_h[:, None] + self.eigen_w[None, :]


@OPERATORS.register("heat")
class HeatOperator(DCTOperator):
    """Heat dissipation (IHDM): d_k = exp(-lambda tau_k), tau_k = sigma_B,k^2 / 2.

    This is a Gaussian blur of std sigma_B,k with reflecting boundaries. The schedule is
    log-spaced from blur_sigma_min (k = 1) to blur_sigma_max (k = K), sigma_B,0 = 0.
    The heat kernel is separable, so ``forward`` applies A_k = M_H(k) x M_W(k)^T with per-level
    blur matrices M(k) = C^T diag(exp(-lambda tau_k)) C precomputed once (two matrix products).
    """

    def __init__(self, *, image_size: ImageSize, K: int, blur_sigma_min: float, blur_sigma_max: float):
        super().__init__(image_size=image_size, K=K)
        tau = heat_blur_schedule(K, blur_sigma_min, blur_sigma_max) ** 2 / 2
        self.register_buffer("blur_sigmas", tau.mul(2).sqrt().float(), persistent=False)
        decay_h = torch.exp(-tau[:, None] * laplacian_eigenvalues(self.height)[None, :])  # [K+1, H]
        decay_w = torch.exp(-tau[:, None] * laplacian_eigenvalues(self.width)[None, :])  # [K+1, W]
        self.register_buffer("decay_h", decay_h.float(), persistent=False)
        self.register_buffer("decay_w", decay_w.float(), persistent=False)
        self.register_buffer("blur_h", _blur_matrices(decay_h), persistent=False)
        self.register_buffer("blur_w", _blur_matrices(decay_w), persistent=False)

    def spectrum(self, k: torch.Tensor) -> torch.Tensor:
        k = self.check_levels(k)
        return (self.decay_h[k][:, :, None] * self.decay_w[k][:, None, :])[:, None]

    def forward(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        k = self.check_levels(k)
        return apply_separable(x, self.blur_h[k], self.blur_w[k])


def _blur_matrices(decay: torch.Tensor) -> torch.Tensor:
    """M(k) = C^T diag(decay[k]) C for every level; decay [L, n] float64 -> float32 [L, n, n]."""
    dct = dct_matrix(decay.shape[1], torch.float64)
    return torch.einsum("fi,lf,fj->lij", dct, decay, dct).float()


@OPERATORS.register("blur")
class BlurOperator(DCTOperator):
    """Blurring-diffusion dissipation: d_t = (1 - d_min) exp(-lambda tau_t) + d_min.

    sigma_B(t) = blur_sigma_max sin^2(pi t / 2), tau_t = sigma_B(t)^2 / 2, t = k / K (real levels
    allowed). The floor d_min keeps every frequency invertible. blur_sigma_max = 0 gives A_k = I.
    """

    continuous = True

    def __init__(self, *, image_size: ImageSize, K: int, blur_sigma_max: float, min_scale: float = 0.001):
        super().__init__(image_size=image_size, K=K)
        if blur_sigma_max < 0:
            raise ValueError(f"blur_sigma_max must be >= 0, got {blur_sigma_max}")
        if not 0 <= min_scale < 1:
            raise ValueError(f"min_scale (d_min) must lie in [0, 1), got {min_scale}")
        self.blur_sigma_max = float(blur_sigma_max)
        self.min_scale = float(min_scale)

    def spectrum(self, k: torch.Tensor) -> torch.Tensor:
        t = self.fraction(self.check_levels(k))
        tau = (self.blur_sigma_max * torch.sin(math.pi * t / 2) ** 2) ** 2 / 2  # [B]
        decay = torch.exp(-tau[:, None, None] * self.frequencies_squared())
        return ((1 - self.min_scale) * decay + self.min_scale)[:, None]


class SeparableMatrixOperator(Operator):
    """A_k = R_W(k) (x) R_H(k): x -> R_H(k) x R_W(k)^T per channel, matrices stored per level.

    The per-level factors are persistent buffers, so a checkpoint holds the exact map.
    Index 0 holds the identity.
    """

    def __init__(self, *, image_size: ImageSize, K: int, seed: int):
        super().__init__(image_size=image_size, K=K)
        generator = torch.Generator().manual_seed(int(seed))
        left = self.make_factors(self.height, generator)
        right = self.make_factors(self.width, generator)
        self.register_buffer("left", left.float())
        self.register_buffer("right", right.float())

    def make_factors(self, n: int, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        k = self.check_levels(k)
        return apply_separable(x, self.left[k], self.right[k])


def _gaussian_factors(count: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """count matrices [count, n, n] with N(0, 1/n) entries, so E|R v|^2 = |v|^2. float64."""
    return torch.randn(count, n, n, generator=generator, dtype=torch.float64) / math.sqrt(n)


def _with_identity(factors: torch.Tensor) -> torch.Tensor:
    eye = torch.eye(factors.shape[-1], dtype=factors.dtype)[None]
    return torch.cat([eye, factors])


@OPERATORS.register("random_matrix")
class RandomMatrixOperator(SeparableMatrixOperator):
    """A fixed, independent random matrix for each level k >= 1 (A_0 = I).

    Each A_k is the Kronecker product of two seeded Gaussian factors (H x H and W x W) with
    N(0, 1/n) entries, so applying it preserves the squared norm in expectation; storing the
    factors costs K (H^2 + W^2) numbers instead of K (H W)^2 for a dense matrix.
    """

    def make_factors(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return _with_identity(_gaussian_factors(self.K, n, generator))


@OPERATORS.register("random_matrix_product")
class RandomMatrixProductOperator(SeparableMatrixOperator):
    """A_k = c_k R_k R_{k-1} ... R_1 with seeded Gaussian factors R_i (Kronecker-structured).

    The raw product of many random matrices overflows or vanishes in float32; here the running
    product is accumulated in float64 and rescaled after every factor so that its Frobenius norm
    stays sqrt(n) (mean squared singular value 1). It stays finite for any K.
    """

    def make_factors(self, n: int, generator: torch.Generator) -> torch.Tensor:
        factors = _gaussian_factors(self.K, n, generator)
        products = []
        running = torch.eye(n, dtype=torch.float64)
        for factor in factors:
            running = factor @ running
            running = running * (math.sqrt(n) / torch.linalg.matrix_norm(running))
            products.append(running)
        return _with_identity(torch.stack(products))


def build_operator(name: str, **kwargs) -> Operator:
    """Build a registered operator by name; unknown names raise a ValueError listing known ones."""
    return OPERATORS.build(name, **kwargs)
