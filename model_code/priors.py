"""Priors p(u_K) from which sampling starts.

Each prior draws image i of a batch from its own ``torch.Generator`` (``sample(generators)``),
so a sample depends on its seed only, never on the batch it was drawn in, and two images with
equal seeds get the same initial state. All priors build on ``process.prior_component(x0) -> (m, s)``,
the process's Gaussian component for a training image. The ELBO's prior term is ``kl_bound(q_mean, q_std)``
for the process's q(u_K | x0) = N(q_mean, q_std^2 I): the evaluator asks the process for q and the prior for
the KL; the prior never calls back into the evaluation.

- ``kde``: the paper's prior, a Gaussian kernel density over the training images taken to level K:
  p(u_K) = 1/N sum_n N(u_K; m_n, s^2 I). Needs the training set when sampling.
- ``fitted_gaussian``: a Gaussian fitted to the m_n in the operator's orthonormal basis (a C x C
  covariance per coefficient), plus s^2 I; stored in the checkpoint, so sampling needs no data.
- ``standard_normal``: N(0, s^2 I) (DDPM's prior, where m_n is close to 0).

Training data reaches a prior through ``load_data() -> (num_items, fetch)``, called only when the
prior needs the images; ``fetch(indices [n]) -> [n, C, H, W]`` in the process's data range.
"""

from __future__ import annotations

import abc
import math
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import nn

from model_code.registry import Registry

PRIORS = Registry("prior")

FetchImages = Callable[[torch.Tensor], torch.Tensor]
LoadData = Callable[[], Tuple[int, FetchImages]]


def randn_per_generator(generators: List[torch.Generator], shape: Sequence[int], device) -> torch.Tensor:
    """One standard normal draw of ``shape`` per generator -> [len(generators), *shape] on device."""
    return torch.stack([torch.randn(tuple(shape), generator=g) for g in generators]).to(device)


def prior_component_means(
    process, num_items: int, fetch: FetchImages, device, chunk_size: int = 1024
) -> Iterator[torch.Tensor]:
    """m_n = process.prior_component(x_n)[0] for every training image, in chunks [<= chunk_size, C, H, W]."""
    for start in range(0, num_items, chunk_size):
        indices = torch.arange(start, min(start + chunk_size, num_items))
        yield process.prior_component(fetch(indices).to(device))[0]


class Prior(nn.Module, abc.ABC):
    """The interface of every prior p(u_K), and shared plumbing: the process (not registered as a
    submodule) whose components the prior is built on, and lazy access to the training data."""

    def __init__(self, *, process, load_data: Optional[LoadData] = None):
        super().__init__()
        self._process = [process]
        self._load_data = load_data
        self._data: Optional[Tuple[int, FetchImages]] = None

    @property
    def process(self):
        return self._process[0]

    def data(self) -> Tuple[int, FetchImages]:
        if self._data is None:
            if self._load_data is None:
                raise ValueError(
                    f"the {self.build_spec['name']!r} prior needs the training images, and none were given"
                )
            self._data = self._load_data()
        return self._data

    def fit(self, device) -> None:
        """Called once when training starts; priors with parameters estimate them here."""

    @abc.abstractmethod
    def sample(
        self, generators: List[torch.Generator], shape: Sequence[int], device, temperature: float = 1.0
    ) -> torch.Tensor:
        """u_K [len(generators), *shape] on device, draw i from ``generators[i]`` alone; ``temperature`` T >= 0
        scales the spread around the mean (T = 0: the mean, of the drawn component for a mixture)."""

    @abc.abstractmethod
    def kl_bound(self, q_mean: torch.Tensor, q_std: float) -> torch.Tensor:
        """KL(q || p(u_K)) in nats, or an upper bound of it, for q = N(q_mean, q_std^2 I).

        q_mean [B, C, H, W] -> [B]."""


@PRIORS.register("kde")
class KernelDensityPrior(Prior):
    """Kernel density over the training set taken to level K (Rissanen et al. 2023, Sec. 3).

    ``chunk_size`` bounds the components held at once by ``kl_bound``.
    """

    library_only = ("chunk_size",)

    def __init__(self, *, process, load_data: Optional[LoadData] = None, chunk_size: int = 1024):
        super().__init__(process=process, load_data=load_data)
        self.chunk_size = chunk_size

    def sample(
        self, generators: List[torch.Generator], shape: Sequence[int], device, temperature: float = 1.0
    ) -> torch.Tensor:
        """u_K = m_n + T s eps, with n ~ U{0..N-1} and eps from generator i. Returns [len(generators), *shape]."""
        num_items, fetch = self.data()
        indices = torch.stack([torch.randint(num_items, (), generator=g) for g in generators])
        mean, std = self.process.prior_component(fetch(indices).to(device))
        return mean + temperature * std * randn_per_generator(generators, shape, device)

    def kl_bound(self, q_mean: torch.Tensor, q_std: float) -> torch.Tensor:
        """Upper bound of KL(q || p(u_K)) for q = N(q_mean, sigma^2 I), sigma = q_std, in nats: [B, C, H, W] -> [B].

        With KL_n the closed-form KL from q to component n (mean m_n, bandwidth delta, D = C H W),
            KL_n = 0.5 (D sigma^2/delta^2 + |q_mean - m_n|^2/delta^2 - D + 2 D log(delta/sigma)),
        convexity of -log gives KL(q || 1/N sum_n p_n) <= log N - logsumexp_n(-KL_n).
        The N components are streamed in chunks, so no [B, N] matrix is held at once.
        """
        sigma, delta = q_std, self.process.prior_component_std()
        dim = q_mean[0].numel()
        constant = dim * sigma**2 / delta**2 - dim + 2 * dim * torch.log(torch.tensor(delta / sigma)).item()
        flat = q_mean.flatten(1).double()
        num_items, fetch = self.data()
        running = torch.full((q_mean.shape[0],), -float("inf"), dtype=torch.float64, device=q_mean.device)
        for components in prior_component_means(self.process, num_items, fetch, q_mean.device, self.chunk_size):
            components = components.flatten(1).double()
            distances = (
                flat.pow(2).sum(1, keepdim=True) + components.pow(2).sum(1)[None] - 2 * flat @ components.T
            ).clamp_min(0)
            running = torch.logaddexp(running, torch.logsumexp(-0.5 * (distances / delta**2 + constant), dim=1))
        return (torch.log(torch.tensor(float(num_items), dtype=torch.float64)) - running).float()


@PRIORS.register("standard_normal")
class StandardNormalPrior(Prior):
    """u_K ~ N(0, s^2 I) with s the process's prior-component standard deviation."""

    def sample(
        self, generators: List[torch.Generator], shape: Sequence[int], device, temperature: float = 1.0
    ) -> torch.Tensor:
        """u_K = T s eps. Returns [len(generators), *shape]."""
        return temperature * self.process.prior_component_std() * randn_per_generator(generators, shape, device)

    def kl_bound(self, q_mean: torch.Tensor, q_std: float) -> torch.Tensor:
        """KL(N(m, s_q^2 I) || N(0, s^2 I)) = 0.5 (D s_q^2/s^2 + |m|^2/s^2 - D + 2 D log(s/s_q)), exact.
        m = q_mean [B, C, H, W], s_q = q_std -> [B]."""
        std_q, std, dim = q_std, self.process.prior_component_std(), q_mean[0].numel()
        squared = q_mean.flatten(1).double().pow(2).sum(1)
        return (0.5 * (dim * std_q**2 / std**2 + squared / std**2 - dim + 2 * dim * math.log(std / std_q))).float()


@PRIORS.register("fitted_gaussian")
class FittedGaussianPrior(Prior):
    """u_K = B^T c + s eps with c ~ N(mean, Sigma) fitted to the basis coefficients c_n = B m_n.

    For heat dissipation only the low frequencies survive at level K; their mean and C x C colour
    covariance (per coefficient) are all that is stored: buffers ``mean`` [C, H, W] and
    ``scale_tril`` [H, W, C, C] (Cholesky factor of Sigma), saved in checkpoints.
    """

    def __init__(self, *, process, shape: Sequence[int], load_data: Optional[LoadData] = None):
        super().__init__(process=process, load_data=load_data)
        operator = process.operator
        if not operator.diagonal:
            raise ValueError(
                f"the fitted_gaussian prior needs an operator with an orthonormal basis; {operator.name!r} has none "
                "(use prior=kde)"
            )
        channels, height, width = shape
        self.register_buffer("mean", torch.zeros(channels, height, width))
        self.register_buffer("scale_tril", torch.zeros(height, width, channels, channels))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def fit(self, device) -> None:
        """Mean and per-coefficient channel covariance of B m_n over the training set (float64 sums)."""
        num_items, fetch = self.data()
        total = outer = None
        for means in prior_component_means(self.process, num_items, fetch, device):
            coefficients = self.process.operator.to_basis(means).double().permute(0, 2, 3, 1)  # [n, H, W, C]
            chunk_total = coefficients.sum(0)
            chunk_outer = torch.einsum("nhwc,nhwd->hwcd", coefficients, coefficients)
            total = chunk_total if total is None else total + chunk_total
            outer = chunk_outer if outer is None else outer + chunk_outer
        mean = total / num_items
        covariance = outer / num_items - torch.einsum("hwc,hwd->hwcd", mean, mean)
        jitter = 1e-10 * torch.eye(covariance.shape[-1], dtype=torch.float64, device=covariance.device)
        self.mean.copy_(mean.permute(2, 0, 1).float())
        self.scale_tril.copy_(torch.linalg.cholesky(covariance + jitter).float())
        self.fitted.fill_(True)

    def sample(
        self, generators: List[torch.Generator], shape: Sequence[int], device, temperature: float = 1.0
    ) -> torch.Tensor:
        """u_K = B^T(mean + T L z) + T s eps. Returns [len(generators), *shape]."""
        if not bool(self.fitted):
            raise ValueError("the fitted_gaussian prior has not been fitted (it is fitted when training starts)")
        z = randn_per_generator(generators, shape, device)
        eps = randn_per_generator(generators, shape, device)
        correlated = torch.einsum("hwcd,nhwd->nhwc", self.scale_tril, z.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        coefficients = self.mean + temperature * correlated
        return self.process.operator.from_basis(coefficients) + temperature * self.process.prior_component_std() * eps

    def kl_bound(self, q_mean: torch.Tensor, q_std: float) -> torch.Tensor:
        """KL(q || p), exact: per coefficient, q = N(B m, s_q^2 I_C) and p = N(mean, S), S = Sigma + s^2 I_C:
        0.5 (s_q^2 tr S^-1 + (mean - B m)^T S^-1 (mean - B m) - C + log det S - C log s_q^2).
        m = q_mean [B, C, H, W], s_q = q_std -> [B]."""
        std_q, channels = q_std, q_mean.shape[1]
        eye = torch.eye(channels, dtype=torch.float64, device=q_mean.device)
        tril = self.scale_tril.double()
        covariance = tril @ tril.transpose(-1, -2) + self.process.prior_component_std() ** 2 * eye  # [H, W, C, C]
        chol = torch.linalg.cholesky(covariance)
        to_basis = self.process.operator.to_basis
        difference = (self.mean.double() - to_basis(q_mean).double()).permute(0, 2, 3, 1)  # [B, H, W, C]
        whitened = torch.linalg.solve_triangular(chol, difference.unsqueeze(-1), upper=False).squeeze(-1)
        trace = torch.cholesky_inverse(chol).diagonal(dim1=-2, dim2=-1).sum()
        log_det = 2 * chol.diagonal(dim1=-2, dim2=-1).log().sum()
        dim = q_mean[0].numel()
        return (
            0.5 * (std_q**2 * trace + whitened.pow(2).flatten(1).sum(1) - dim + log_det - 2 * dim * math.log(std_q))
        ).float()
