"""2D point datasets (``spiral``, ``two_moons``, ``gaussian_mixture``, ``correlated_gaussian``) for the
information-theoretic diffusion examples and tests.

Each distribution is a class with ``sample(n, generator=None) -> float32 [n, 2]``; those with a
closed-form density also have ``log_prob(x [n, 2]) -> [n]`` (nats) and ``exact_log_prob = True``.

Scale. ``spiral``, ``two_moons`` and ``gaussian_mixture`` are centred and scaled by fixed
constants (exact moments of the generating process) so that they have mean 0 and E||x||^2 = 2 = d
(mean square 1 averaged over the two coordinates; the mixture is isotropic, the moons are wider
than tall): the scale of the N(0, I) reference in the NLL estimator, so their eps-MSE curves cross
d/2 at log SNRs of order 0 to 5 and proposals with loc in that range and scale ~1-2 are sensible.
``correlated_gaussian`` is the oracle case with a known spectrum and is left as defined: mean 0,
covariance eigenvalues 4 and 0.05 with principal axes rotated by 30 degrees (per-coordinate
variances 3.01 and 1.04, correlation 0.97).

``Toy2DDataset(name, num_points, seed)`` materialises a fixed sample as a torch Dataset; each distribution is
registered as a dataset of kind 'points' under its name: 50000 training points and 5000 test points drawn
with another seed.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Optional, Tuple, Type

import torch
from torch.utils.data import Dataset

from model_code.itd import gaussian_entropy
from model_code.registry import Registered
from scripts.data.datasets.base import DATASETS

TOY2D_TRAIN_POINTS = 50_000
TOY2D_TEST_POINTS = 5_000


def _check_n(n: int) -> int:
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    return n


def _check_points(x: torch.Tensor) -> torch.Tensor:
    if x.dim() != 2 or x.shape[1] != 2:
        raise ValueError(f"points must be [n, 2], got shape {tuple(x.shape)}")
    return x


class Toy2D:
    """Base class: a distribution on R^2."""

    exact_log_prob = False

    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        raise NotImplementedError

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no closed-form log density")


class Spiral(Toy2D):
    """One arm of an Archimedean spiral, r = theta / (4 pi) for theta = 4 pi sqrt(u), u ~ U(0, 1)
    (uniform over the swept disc), plus N(0, noise^2) jitter; then centred by its exact mean
    (1 / (4 pi^2), -1 / (2 pi)) and divided by the exact root mean square per coordinate,
    sqrt(1/4 + noise^2 - (1 / (16 pi^4) + 1 / (4 pi^2)) / 2) (~0.488 at noise 0.03)."""

    CENTRE = (1.0 / (4.0 * math.pi**2), -1.0 / (2.0 * math.pi))

    def __init__(self, noise: float = 0.03):
        self.noise = float(noise)
        self.scale = math.sqrt(0.25 + self.noise**2 - 0.5 * (self.CENTRE[0] ** 2 + self.CENTRE[1] ** 2))

    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        n = _check_n(n)
        theta = 4.0 * math.pi * torch.rand(n, generator=generator).sqrt()
        radius = theta / (4.0 * math.pi)
        points = torch.stack([radius * theta.cos(), radius * theta.sin()], dim=1)
        points = points + self.noise * torch.randn(n, 2, generator=generator)
        return ((points - torch.tensor(self.CENTRE)) / self.scale).float()


class TwoMoons(Toy2D):
    """Two interleaved half circles (outer (cos t, sin t), inner (1 - cos t, 1/2 - sin t),
    t ~ U(0, pi), equal odds) plus N(0, noise^2) jitter, centred by the exact mean (1/2, 1/4) and
    divided by the exact root mean square per coordinate, sqrt((3/4 + 9/16 - 1/pi) / 2 + noise^2)
    (~0.712 at noise 0.1)."""

    CENTRE = (0.5, 0.25)

    def __init__(self, noise: float = 0.1):
        self.noise = float(noise)
        self.scale = math.sqrt(0.5 * (0.75 + 0.5625 - 1.0 / math.pi) + self.noise**2)

    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        n = _check_n(n)
        t = math.pi * torch.rand(n, generator=generator)
        outer = torch.rand(n, generator=generator) < 0.5
        upper = torch.stack([t.cos(), t.sin()], dim=1)
        lower = torch.stack([1.0 - t.cos(), 0.5 - t.sin()], dim=1)
        points = torch.where(outer[:, None], upper, lower) + self.noise * torch.randn(n, 2, generator=generator)
        return ((points - torch.tensor(self.CENTRE)) / self.scale).float()


class GaussianMixture(Toy2D):
    """``num_components`` equally weighted isotropic Gaussians N(mu_k, std^2 I) with means evenly
    spaced on a circle. The default radius sqrt(2 (1 - std^2)) makes the mean square per
    coordinate exactly 1 (radius^2 / 2 + std^2)."""

    exact_log_prob = True

    def __init__(self, num_components: int = 8, std: float = 0.1, radius: Optional[float] = None):
        if not isinstance(num_components, int) or num_components < 1:
            raise ValueError(f"num_components must be a positive integer, got {num_components!r}")
        if not std > 0:
            raise ValueError(f"std must be positive, got {std!r}")
        self.std = float(std)
        self.radius = math.sqrt(2.0 * (1.0 - self.std**2)) if radius is None else float(radius)
        angles = 2.0 * math.pi * torch.arange(num_components, dtype=torch.float64) / num_components
        self.means = self.radius * torch.stack([angles.cos(), angles.sin()], dim=1)  # [K, 2], float64

    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return self.sample_labelled(n, generator)[0]

    def sample_labelled(self, n: int, generator: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """``n`` points float32 [n, 2] and the component each was drawn from, int64 [n] (its class label)."""
        n = _check_n(n)
        component = torch.randint(self.means.shape[0], (n,), generator=generator)
        noise = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        return (self.means[component] + self.std * noise).float(), component

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log (1/K) sum_k N(x; mu_k, std^2 I), x [n, 2] -> [n] (in x's dtype, computed in float64)."""
        points = _check_points(x).to(torch.float64)
        squared = (points[:, None, :] - self.means[None]).pow(2).sum(dim=-1)  # [n, K]
        log_components = -0.5 * squared / self.std**2 - math.log(2.0 * math.pi * self.std**2)
        return (torch.logsumexp(log_components, dim=1) - math.log(self.means.shape[0])).to(x.dtype)


class CorrelatedGaussian(Toy2D):
    """N(mean, cov) with cov = R diag(eigenvalues) R^T, R the rotation by ``angle``.

    Defaults: mean 0, eigenvalues (4, 0.05), angle pi/6. ``cov`` and ``eigenvalues`` are float64.
    """

    exact_log_prob = True

    def __init__(self, eigenvalues=(4.0, 0.05), angle: float = math.pi / 6, mean=(0.0, 0.0)):
        self.eigenvalues = torch.as_tensor(eigenvalues, dtype=torch.float64)
        if self.eigenvalues.shape != (2,) or not bool(torch.all(self.eigenvalues > 0)):
            raise ValueError(f"eigenvalues must be two positive numbers, got {eigenvalues!r}")
        self.mean = torch.as_tensor(mean, dtype=torch.float64)
        if self.mean.shape != (2,):
            raise ValueError(f"mean must have two entries, got {mean!r}")
        c, s = math.cos(angle), math.sin(angle)
        rotation = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
        self.cov = rotation @ torch.diag(self.eigenvalues) @ rotation.T
        self._cholesky = torch.linalg.cholesky(self.cov)

    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        n = _check_n(n)
        noise = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        return (self.mean + noise @ self._cholesky.T).float()

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log N(x; mean, cov), x [n, 2] -> [n] (in x's dtype, computed in float64)."""
        centred = _check_points(x).to(torch.float64) - self.mean
        whitened = torch.linalg.solve_triangular(self._cholesky, centred.T, upper=False).T
        log_det = 2.0 * self._cholesky.diagonal().log().sum()
        return (-0.5 * whitened.pow(2).sum(dim=1) - 0.5 * log_det - math.log(2.0 * math.pi)).to(x.dtype)

    def entropy(self) -> float:
        """Exact differential entropy (nats): 1/2 log det(2 pi e cov)."""
        return gaussian_entropy(self.cov)


TOY2D_DATASETS: Dict[str, Type[Toy2D]] = {
    "spiral": Spiral,
    "two_moons": TwoMoons,
    "gaussian_mixture": GaussianMixture,
    "correlated_gaussian": CorrelatedGaussian,
}


def make_toy2d(name: str, **kwargs) -> Toy2D:
    """Build a distribution by short name; unknown names raise ValueError listing the known ones."""
    if name not in TOY2D_DATASETS:
        raise ValueError(f"unknown toy2d dataset {name!r}; known: {', '.join(sorted(TOY2D_DATASETS))}")
    return TOY2D_DATASETS[name](**kwargs)


class Toy2DDataset(Registered, Dataset):
    """A fixed sample of ``num_points`` points from the distribution ``name``, drawn with ``seed``.

    ``points`` float32 [num_points, 2]; item i is points[i] ([2]). ``labels``: int64 [num_points] where the
    distribution has classes (the gaussian mixture's components), else None. ``distribution`` is the source.
    """

    def __init__(self, name: str, num_points: int, seed: int = 0, **kwargs):
        if not isinstance(num_points, int) or num_points < 1:
            raise ValueError(f"num_points must be a positive integer, got {num_points!r}")
        self.distribution = make_toy2d(name, **kwargs)
        generator = torch.Generator().manual_seed(int(seed))
        if hasattr(self.distribution, "sample_labelled"):
            self.points, self.labels = self.distribution.sample_labelled(num_points, generator)
        else:
            self.points, self.labels = self.distribution.sample(num_points, generator), None

    @property
    def items(self) -> torch.Tensor:
        """All points [num_points, 2] (training keeps them on the device)."""
        return self.points

    def __len__(self) -> int:
        return self.points.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.points[index]


def toy2d_constructor(name: str) -> Callable[..., Toy2DDataset]:
    """The dataset constructor of the distribution ``name``: the registry's keywords, one fixed sample per split."""

    def constructor(*, split: str, image_size: Tuple[int, int], num_channels: int, root: str) -> Toy2DDataset:
        if (num_channels, tuple(image_size)) != (2, (1, 1)):
            raise ValueError(
                "2D point datasets need data.num_channels=2 and data.image_size=1, "
                f"got {num_channels} and {tuple(image_size)}"
            )
        if split == "train":
            return Toy2DDataset(name, TOY2D_TRAIN_POINTS, seed=0)
        return Toy2DDataset(name, TOY2D_TEST_POINTS, seed=1)

    constructor.__doc__ = (
        f"2D points from the {name!r} distribution: {TOY2D_TRAIN_POINTS} training, {TOY2D_TEST_POINTS} test "
        "(another seed); configured as 2-channel 1x1 images (data.num_channels=2, data.image_size=1)."
    )
    return constructor


for dataset_name in TOY2D_DATASETS:
    DATASETS.register(dataset_name, kind="points")(toy2d_constructor(dataset_name))
