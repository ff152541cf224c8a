"""Reference statistics for FID: the Gaussian fit of a dataset split's features, computed once and cached.

Cached as ``<cache_dir>/<dataset>_<split>_<res>_<network>.npz`` (mu [D], sigma [D, D], the feature
network's name, the number of images, where they came from and, for a prepared zip, its fingerprint; a
prepared zip's statistics are named ``prepared-<fingerprint[:16]>``), written atomically with the
permissions any new file of the user gets (umask). ``run_reference`` finds or makes those of a run's
dataset split (the evaluator's and the FID monitor's).
"""

from __future__ import annotations

import io
import logging
import os
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Optional, Tuple

import ml_collections
import numpy as np
import torch

from scripts.cli.errors import DatasetUnavailable
from scripts.config import build
from scripts.data.datasets import Data
from scripts.evaluation.features import INCEPTION_DIM, INCEPTION_NAME, FeatureNet, feature_statistics
from scripts.evaluation.frechet import check_gaussian
from scripts.evaluation.inception_weights import import_cleanfid
from scripts.evaluation.kid import KID_REFERENCE_FEATURES, FeatureSample
from scripts.runtime import distributed
from scripts.storage.files import write_atomic

log = logging.getLogger(__name__)

# A dataset split's images, produced only when the statistics must be computed: a zero-argument
# callable returning (number of images, iterable of float batches [B, C, H, W] in [0, 1]).
ImageSource = Callable[[], Tuple[int, Iterable[torch.Tensor]]]

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class ReferenceStats:
    """Gaussian fit of one image set's features: mu [D], sigma [D, D] (float64), the feature
    network's name, the number of images (-1 if unknown), where it came from and the fingerprint of the
    prepared zip it was computed from ('' for other sources); ``features``: the first images' features (KID)."""

    mu: np.ndarray
    sigma: np.ndarray
    network: str
    num_images: int
    source: str
    fingerprint: str = ""
    features: Optional[np.ndarray] = None  # float32 [<= KID_REFERENCE_FEATURES, D], for KID; None if not kept


def reference_stats_path(cache_dir: str, dataset: str, split: str, resolution: int, network: str) -> str:
    """``<cache_dir>/<dataset>_<split>_<resolution>_<network>.npz``."""
    for what, value in (("dataset", dataset), ("split", split), ("network", network)):
        if not isinstance(value, str) or not _NAME_PATTERN.match(value):
            raise ValueError(
                f"{what} {value!r} must be a non-empty name of letters, digits, "
                f"'.', '_' or '-' (it becomes part of a file name)"
            )
    if not isinstance(resolution, int) or resolution < 1:
        raise ValueError(f"resolution must be a positive int, got {resolution!r}")
    return os.path.join(cache_dir, f"{dataset}_{split}_{resolution}_{network}.npz")


def save_reference_stats(path: str, stats: ReferenceStats) -> None:
    """Write ``stats`` to ``path`` as an npz, atomically (``write_atomic``)."""
    buffer = io.BytesIO()
    np.savez(
        buffer,
        mu=stats.mu,
        sigma=stats.sigma,
        network=np.str_(stats.network),
        num_images=np.int64(stats.num_images),
        source=np.str_(stats.source),
        fingerprint=np.str_(stats.fingerprint),
        **({} if stats.features is None else {"features": stats.features}),
    )
    write_atomic(path, buffer.getvalue())


def load_reference_stats(path: str, network: str, fingerprint: Optional[str] = None) -> ReferenceStats:
    """Load stats saved by ``save_reference_stats``; the file must record ``network`` and, if given, ``fingerprint``
    (the prepared zip the statistics must come from)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            stats = ReferenceStats(
                mu=data["mu"].astype(np.float64),
                sigma=data["sigma"].astype(np.float64),
                network=str(data["network"]),
                num_images=int(data["num_images"]),
                source=str(data["source"]),
                fingerprint=str(data["fingerprint"]) if "fingerprint" in data.files else "",
                features=data["features"] if "features" in data.files else None,
            )
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(
            f"reference statistics {path} are unreadable or incomplete "
            f"(need mu, sigma, network, num_images, source): {error}"
        ) from None
    if stats.network != network:
        raise ValueError(f"reference statistics {path} were computed with {stats.network!r}, not {network!r}")
    if fingerprint is not None and stats.fingerprint != fingerprint:
        raise ValueError(
            f"reference statistics {path} belong to data with fingerprint {stats.fingerprint[:16] or 'none'}, "
            f"not to the prepared zip with fingerprint {fingerprint[:16]}; delete the file or use the matching data"
        )
    return stats


def prepared_stats_name(fingerprint: str) -> str:
    """The dataset part of a prepared zip's statistics file name: ``prepared-<fingerprint[:16]>``."""
    return f"prepared-{fingerprint[:16]}"


def _missing(path: str, network: str, dataset: str, split: str) -> FileNotFoundError:
    """The error for a statistics file that is absent and cannot be made here, naming it."""
    return FileNotFoundError(
        f"reference statistics {path} are missing and cannot be computed here: provide that "
        f"file (npz with mu [D], sigma [D, D], network={network!r}, num_images, source) or "
        f"a source of {dataset} {split} images"
    )


def _published_cleanfid_stats(dataset: str, split: str, resolution: int) -> Optional[ReferenceStats]:
    """clean-fid's published CIFAR-10 "clean" Inception statistics, or None if unavailable."""
    if (dataset, resolution) != ("cifar10", 32):
        return None
    try:
        mu, sigma = import_cleanfid().features.get_reference_statistics(
            name="cifar10", res=32, mode="clean", split=split
        )
        mu, sigma = check_gaussian(mu, sigma, "")
        if mu.shape != (INCEPTION_DIM,):
            raise ValueError(f"published mu has shape {mu.shape}, expected ({INCEPTION_DIM},)")
    except Exception as error:  # offline: URLError; a partial download: a zip/npz error
        log.warning(
            "clean-fid's published cifar10 %s statistics are unavailable (%s: %s); computing them from the dataset",
            split,
            type(error).__name__,
            error,
        )
        return None
    return ReferenceStats(mu, sigma, INCEPTION_NAME, -1, f"clean-fid published cifar10_clean_{split}_32")


def _computed_stats(
    path: str,
    dataset: str,
    split: str,
    feature_net: FeatureNet,
    images: ImageSource,
    progress: bool,
    fingerprint: str,
) -> ReferenceStats:
    """Features of every image ``images`` yields, announced in one line (what, how many, where cached)."""
    num_images, batches = images()
    if distributed.is_main():
        print(
            f"FID reference statistics: computing {feature_net.name} features of the {num_images} {dataset} "
            f"{split} images once (cached in {path})",
            flush=True,
        )
    sample = FeatureSample(KID_REFERENCE_FEATURES)
    mu, sigma, count = feature_statistics(
        batches,
        feature_net,
        num_images=num_images,
        desc=f"reference {dataset} {split}",
        progress=progress,
        sample=sample,
    )
    source = f"computed from {dataset} {split}"
    return ReferenceStats(mu, sigma, feature_net.name, count, source, fingerprint, sample.array())


def reference_statistics(
    dataset: str,
    split: str,
    resolution: int,
    feature_net: FeatureNet,
    cache_dir: str,
    images: Optional[ImageSource] = None,
    *,
    progress: bool = True,
    fingerprint: Optional[str] = None,
) -> ReferenceStats:
    """Load ``<cache_dir>/<dataset>_<split>_<resolution>_<network>.npz`` or make and save it.

    ``fingerprint`` (a prepared zip's): the file is ``prepared-<fingerprint[:16]>_...`` instead, must record
    that fingerprint (else ValueError, one line), and statistics computed here record it.

    Missing file: for cifar10 at 32 with Inception, clean-fid's published statistics are tried
    first (a download; offline it fails and one line is logged); otherwise the features of
    every image ``images`` yields are used, after a one-line announcement. ``images`` is not
    called when the file exists; a missing file that nothing can produce (no ``images``) raises
    FileNotFoundError naming it.
    """
    network = feature_net.name
    key = dataset if fingerprint is None else prepared_stats_name(fingerprint)
    path = reference_stats_path(cache_dir, key, split, resolution, network)
    if os.path.isfile(path):
        return load_reference_stats(path, network, fingerprint)
    published = network == INCEPTION_NAME and fingerprint is None
    stats = _published_cleanfid_stats(dataset, split, resolution) if published else None
    if stats is None:
        if images is None:
            raise _missing(path, network, dataset, split)
        stats = _computed_stats(path, dataset, split, feature_net, images, progress, fingerprint or "")
    if distributed.is_main():
        save_reference_stats(path, stats)
    return stats


def unit_batches(data: Data, batch_size: int) -> Iterator[torch.Tensor]:
    """This process's batches of the dataset's images (all for one process) as floats [B, C, H, W] in
    [0, 1], no augmentation."""
    for indices in distributed.my_blocks(len(data), batch_size):
        yield data.raw_batch(indices).float() / 255.0


def run_reference(
    config: ml_collections.ConfigDict,
    load_data: Callable[[], Data],
    *,
    dataset: str,
    split: str,
    feature_net: FeatureNet,
    stats_dir: str,
    batch_size: int,
) -> ReferenceStats:
    """Reference statistics of ``dataset`` ``split`` at the run's resolution, loaded or computed once from
    ``load_data()`` (the run's data) and cached; those of data with a content fingerprint (a prepared zip's,
    ``build.data_fingerprint``) are keyed and checked by it."""
    height, width = build.image_size(config)
    resolution = height if height == width else height * 10000 + width
    # statistics of another dataset than the run's can be loaded (or downloaded), never computed from this one
    same_dataset = dataset == config.data.dataset

    def reference_images():
        data = load_data()
        return len(data), unit_batches(data, batch_size)

    try:
        return reference_statistics(
            dataset,
            split,
            resolution,
            feature_net,
            stats_dir,
            reference_images if same_dataset else None,
            fingerprint=build.data_fingerprint(config, split) if same_dataset else None,
        )
    except DatasetUnavailable as error:
        path = reference_stats_path(stats_dir, dataset, split, resolution, feature_net.name)
        raise DatasetUnavailable(f"reference statistics {path} are missing and cannot be computed: {error}") from None
