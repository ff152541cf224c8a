"""Priors p(u_K) from which sampling starts.

Each prior draws image i of a batch from its own ``torch.Generator`` (``sample(generators)``),
so a sample depends on its seed only, never on the batch it was drawn in, and two images with
equal seeds get the same initial state.

- ``KernelDensityPrior``: the paper's prior, a Gaussian kernel density over the training images
  taken to level K: p(u_K) = 1/N sum_n N(u_K; m_n, s^2 I) with (m_n, s) = process.terminal(x_n).
- ``StandardNormalPrior``: N(0, s^2 I) with s the process's terminal std (DDPM's prior).
- ``FittedGaussianPrior``: a Gaussian fitted to the terminal means in the operator's basis,
  stored in the checkpoint, so sampling needs no training data.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence

import torch
from torch import nn

from model_code.registry import Registry

PRIORS = Registry("prior")

FetchImages = Callable[[torch.Tensor], torch.Tensor]


def randn_per_generator(generators: List[torch.Generator], shape: Sequence[int], device) -> torch.Tensor:
    """One standard normal draw of ``shape`` per generator -> [len(generators), *shape] on device."""
    return torch.stack([torch.randn(tuple(shape), generator=g) for g in generators]).to(device)


@PRIORS.register("kde")
class KernelDensityPrior(nn.Module):
    """Kernel density over the training set taken to level K (Rissanen et al., Sec. 3).

    Args:
        process: gives ``terminal(x0) -> (m = mean of u_K, bandwidth s)``.
        num_items: N, the number of training images.
        fetch: maps indices [n] (long) to training images [n, C, H, W] in the process's range.
    """

    def __init__(self, *, process, num_items: int, fetch: FetchImages, chunk_size: int = 1024):
        super().__init__()
        if num_items < 1:
            raise ValueError("the kernel-density prior needs at least one training image")
        self.process = [process]  # a list, so the prior does not register the process as a submodule
        self.num_items = num_items
        self.fetch = fetch
        self.chunk_size = chunk_size

    def sample(self, generators: List[torch.Generator], shape: Sequence[int], device) -> torch.Tensor:
        """u_K = m_n + s eps, with n ~ U{0..N-1} and eps from generator i. Returns [len(generators), *shape]."""
        indices = torch.stack([torch.randint(self.num_items, (), generator=g) for g in generators])
        mean, std = self.process[0].terminal(self.fetch(indices).to(device))
        return mean + std * randn_per_generator(generators, shape, device)

    def component_means(self, device) -> torch.Iterator:
        """Yields the component means m_n in chunks [<=chunk_size, C, H, W]."""
        for start in range(0, self.num_items, self.chunk_size):
            indices = torch.arange(start, min(start + self.chunk_size, self.num_items))
            yield self.process[0].terminal(self.fetch(indices).to(device))[0]

    def kl_bound(self, x0: torch.Tensor, process, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Upper bound of KL(q(u_K | x0) || p(u_K)) for q = N(A_K x0, sigma^2 I), in nats, [B].

        With KL_n the closed-form KL from q to component n (bandwidth delta, D = C H W),
            KL_n = 0.5 (D sigma^2/delta^2 + |A_K x0 - m_n|^2/delta^2 - D + 2 D log(delta/sigma)),
        convexity of -log gives KL(q || 1/N sum_n p_n) <= log N - logsumexp_n(-KL_n).
        The N components are streamed in chunks, so no [B, N] matrix is held at once.
        """
        mean, delta = process.terminal(x0)
        sigma = process.sigma
        dim = x0[0].numel()
        constant = dim * sigma**2 / delta**2 - dim + 2 * dim * torch.log(torch.tensor(delta / sigma)).item()
        flat = mean.flatten(1).double()
        running = torch.full((x0.shape[0],), -float("inf"), dtype=torch.float64, device=x0.device)
        for components in self.component_means(x0.device):
            components = components.flatten(1).double()
            distances = (flat.pow(2).sum(1, keepdim=True) + components.pow(2).sum(1)[None] - 2 * flat @ components.T).clamp_min(0)
            log_terms = -0.5 * (distances / delta**2 + constant)
            running = torch.logaddexp(running, torch.logsumexp(log_terms, dim=1))
        return (torch.log(torch.tensor(float(self.num_items), dtype=torch.float64)) - running).float()


@PRIORS.register("standard_normal")
class StandardNormalPrior(nn.Module):
    """u_K ~ N(0, s^2 I) with s the process's terminal standard deviation."""

    def __init__(self, *, process):
        super().__init__()
        self.std = process.terminal_std()

    def sample(self, generators: List[torch.Generator], shape: Sequence[int], device) -> torch.Tensor:
        return self.std * randn_per_generator(generators, shape, device)
