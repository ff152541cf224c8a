"""FID of a generator: features of exactly ``num_gen`` generated images against a dataset's reference statistics.

The pieces live beside this module: ``frechet`` (the distance and the streaming Gaussian fit),
``features`` (quantisation and the feature networks), ``inception_weights`` (finding the Inception
file) and ``reference_stats`` (the dataset side, computed once and cached).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, List, Optional

import numpy as np
import torch

from scripts.evaluation.features import FeatureNet, feature_statistics
from scripts.evaluation.frechet import frechet_distance
from scripts.evaluation.reference_stats import ReferenceStats
from scripts.runtime import distributed

# generate(start, count) -> images start..start+count-1 as float [count, C, H, W] in [0, 1].
Generate = Callable[[int, int], torch.Tensor]


def generated_batches(generate: Generate, num_gen: int, batch_size: int) -> Iterator[torch.Tensor]:
    """Yield this process's batches of images 0..num_gen-1 (all of them for one process) from ``generate``,
    at most ``batch_size`` each (``distributed.my_blocks``), checking each batch's size."""
    for rows in distributed.my_blocks(num_gen, batch_size):
        start, count = rows.start, len(rows)
        images = generate(start, count)
        if not isinstance(images, torch.Tensor) or images.shape[0] != count:
            got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images)
            raise ValueError(f"generate({start}, {count}) must return [{count}, C, H, W], got {got}")
        yield images


def fid_from_generator(
    generate: Generate,
    num_gen: int,
    batch_size: int,
    feature_net: FeatureNet,
    ref_stats: ReferenceStats,
    *,
    progress: bool = True,
    sample: Optional[Any] = None,
) -> float:
    """FID of ``num_gen`` generated images against ``ref_stats`` (same feature network).

    The caller seeds image i with seed i, so the result does not depend on ``batch_size``.
    Generation itself runs outside ``torch.no_grad`` (a sampler that needs gradients keeps them);
    feature extraction runs under it. ``sample`` (a ``kid.FeatureSample``) receives the generated features.
    """
    if num_gen < 2:
        raise ValueError(f"num_gen must be >= 2, got {num_gen}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if ref_stats.network != feature_net.name:
        raise ValueError(
            f"reference statistics were computed with {ref_stats.network!r} but "
            f"the feature network is {feature_net.name!r}; they cannot be mixed"
        )
    batches = generated_batches(generate, num_gen, batch_size)
    mu, sigma, _ = feature_statistics(
        batches, feature_net, num_images=num_gen, desc="FID generate", progress=progress, sample=sample
    )
    return frechet_distance(mu, sigma, ref_stats.mu, ref_stats.sigma)


def fid_record(fid: float, ref_stats: ReferenceStats, num_gen: int) -> Dict[str, Any]:
    """A result dict labelled with the network: ``{"fid_<network>": fid, ...}``."""
    return {
        f"fid_{ref_stats.network}": float(fid),
        "feature_network": ref_stats.network,
        "num_gen": int(num_gen),
        "reference": ref_stats.source,
        "reference_fingerprint": ref_stats.fingerprint,
    }


def seed_record(values: List[float], kids: List[Optional[float]], seed: int, num_gen: int) -> Dict[str, Any]:
    """Per-seed-set FIDs, their mean and standard deviation (ddof 1; 0 for one set), and the seeds: set s used
    base seed ``seed`` with image indices s * num_gen .. (s + 1) * num_gen - 1."""
    return {
        "fid_per_seed_set": [float(v) for v in values],
        "fid_mean": float(np.mean(values)),
        "fid_std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
        "kid_per_seed_set": kids,  # None where the reference statistics keep no features (published ones)
        "kid_mean": None if None in kids else float(np.mean(kids)),
        "seed": int(seed),
        "seed_sets": [[s * num_gen, (s + 1) * num_gen - 1] for s in range(len(values))],
    }
