"""The prior interface p(u_K), from which sampling starts, and what the registered priors share.

Each prior draws image i of a batch from its own ``torch.Generator`` (``sample(generators)``),
so a sample depends on its seed only, never on the batch it was drawn in, and two images with
equal seeds get the same initial state. All priors build on ``process.prior_component(x0) -> (m, s)``,
the process's Gaussian component for a training image. The ELBO's prior term is ``kl_bound(q_mean, q_std)``
for the process's q(u_K | x0) = N(q_mean, q_std^2 I): the evaluator asks the process for q and the prior for
the KL; the prior never calls back into the evaluation.

Training data reaches a prior through ``load_data() -> (num_items, fetch)``, called only when the
prior needs the images; ``fetch(indices [n]) -> [n, C, H, W]`` in the process's data range.
"""

from __future__ import annotations

import abc
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import nn

from model_code.registry import Registered, Registry

PRIORS = Registry("prior", package="model_code.priors")

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


class Prior(Registered, nn.Module, abc.ABC):
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
                raise ValueError(f"the {self.name!r} prior needs the training images, and none were given")
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

    @abc.abstractmethod
    def log_density(self, u: torch.Tensor) -> torch.Tensor:
        """log p(u_K) in nats at u [B, C, H, W] -> [B] (the end point of the probability-flow likelihood)."""
