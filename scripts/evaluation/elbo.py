"""ELBO (negative log-likelihood bound) of a trained model on the test split, with its breakdown.

The process defines the transition and reconstruction terms (``process.elbo_terms``) and its
q(u_K | x0) (``process.forward_marginal_at_K``); the prior turns that q into the prior term
(``prior.kl_bound``). This module asks each for its part, feeds dequantised test images, averages
over Monte-Carlo passes and converts units:

    nats per image      L = prior + sum_k transitions_k + reconstruction
    bits per dimension  L / (D ln 2)                        (continuous density of the scaled data)
    discrete bits/dim   L / (D ln 2) + log2(256 / width)    (8-bit data: dequantisation bound;
                                                              width = size of the data range)
"""

from __future__ import annotations

import math
from typing import Dict, Optional

import numpy as np
import torch
from tqdm import tqdm

from model_code.conditioning import conditioned, num_classes_of
from model_code.priors import Prior
from model_code.processes import Process
from model_code.randomness import ExampleRandomness
from scripts.data.datasets import Data
from scripts.runtime import distributed
from scripts.storage.files import write_atomic_with


def elbo_terms(
    process: Process, net, prior: Prior, x0: torch.Tensor, generator: Optional[torch.Generator] = None
) -> Dict[str, torch.Tensor]:
    """Per-example ELBO terms in nats for x0 [B, C, H, W]: 'prior' [B] = KL(q(u_K | x0) || p(u_K)) (or its
    bound), then the process's 'transitions' [B, K-1] (levels 2..K) and 'reconstruction' [B]."""
    transitions_and_reconstruction = process.elbo_terms(net, x0, generator)
    q_mean, q_std = process.forward_marginal_at_K(x0)
    return {"prior": prior.kl_bound(q_mean, q_std), **transitions_and_reconstruction}


@torch.no_grad()
def evaluate_elbo(
    process, net, prior, test_data: Data, *, batch_size: int, passes: int, num_test: int, seed: int, device
) -> Dict[str, object]:
    """Average ELBO terms over ``num_test`` test images (0: all) and ``passes`` Monte-Carlo passes; a
    class-conditional ``net`` is given each image's own label (the bound on log p(x | c)).

    The draws of batch b of pass p are keyed by (seed, p * batches + b) (``ExampleRandomness``); under
    several processes whole batches are shared out (``distributed.my_blocks``) and the float64 sums
    combined, so the result is the same for any number of processes.
    """
    count = len(test_data) if num_test <= 0 else min(num_test, len(test_data))
    batches = len(range(0, count, batch_size))
    totals: Dict[str, torch.Tensor] = {}
    bar = tqdm(total=passes * count, desc="ELBO", dynamic_ncols=True, disable=not distributed.is_main())
    for pass_index in range(passes):
        for indices in distributed.my_blocks(count, batch_size):
            key = pass_index * batches + indices.start // batch_size
            randomness = ExampleRandomness(seed, key, len(indices), device=device)
            x0 = test_data.prepare(test_data.raw_batch(indices).to(device), randomness, augment=False)
            labelled = conditioned(net, test_data.labels_of(indices, num_classes_of(net)))
            for name, values in elbo_terms(process, labelled, prior, x0, randomness).items():
                summed = values.double().sum(0).cpu()
                totals[name] = summed if name not in totals else totals[name] + summed
            bar.update(len(indices) * distributed.world_size())
    bar.close()
    totals = sum_over_ranks(totals)
    dim = int(np.prod(test_data.raw_batch(range(1)).shape[1:]))
    return summarise(
        {name: total / (passes * count) for name, total in totals.items()},
        dim=dim,
        data_range=process.data_range,
        count=count,
        passes=passes,
    )


def sum_over_ranks(totals: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Each term's float64 sum added over the processes (a process may have had no images)."""
    summed: Dict[str, torch.Tensor] = {}
    for part in distributed.gather_objects(totals):
        for name, value in part.items():
            summed[name] = value if name not in summed else summed[name] + value
    return summed


def bits_per_dim(nats: float, dim: int, data_range, discrete: bool = True) -> Dict[str, float]:
    """{'bits_per_dim': nats / (D ln 2)} and, for 8-bit data dequantised over bins of width
    (high - low) / 256, {'discrete_bits_per_dim': bits_per_dim + log2(256 / (high - low))}."""
    continuous = nats / (dim * math.log(2))
    units = {"bits_per_dim": continuous}
    if discrete:
        units["discrete_bits_per_dim"] = continuous + math.log2(256 / (data_range[1] - data_range[0]))
    return units


def summarise(means: Dict[str, torch.Tensor], *, dim: int, data_range, count: int, passes: int) -> Dict[str, object]:
    """Totals in nats and bits/dim from the mean of each term (per-level vectors summed)."""
    breakdown = {name: float(value.sum()) for name, value in means.items()}
    nats = sum(breakdown.values())
    return {
        "nats_per_image": nats,
        **bits_per_dim(nats, dim, data_range),
        "terms_nats": breakdown,
        "per_level_nats": {name: value.tolist() for name, value in means.items() if value.dim() == 1},
        "dimensions": dim,
        "test_images": count,
        "passes": passes,
    }


def plot_terms(result: Dict[str, object], path: str, first_level: int = 2) -> str:
    """PNG of each per-level term (nats) against its level k = first_level, first_level + 1, ..."""
    import logging

    import matplotlib

    matplotlib.use("Agg")
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.5))
    for name, values in result["per_level_nats"].items():
        axis.plot(np.arange(first_level, first_level + len(values)), values, label=name)
    axis.set_xlabel("level k")
    axis.set_ylabel("nats per image")
    axis.set_yscale("symlog")
    axis.set_title(f"ELBO terms: total {result['nats_per_image']:.1f} nats, {result['bits_per_dim']:.3f} bits/dim")
    axis.legend()
    figure.tight_layout()
    write_atomic_with(path, lambda handle: figure.savefig(handle, format="png", dpi=120))
    plt.close(figure)
    return path
