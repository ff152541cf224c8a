"""Feature networks for FID and the Gaussian statistics of an image stream's features.

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
file names, ``ReferenceStats.network``, FID record keys) and are never mixed with Inception
statistics.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from model_code.registry import Registry
from scripts.evaluation.frechet import RunningMoments, combine_moments
from scripts.evaluation.inception_weights import import_cleanfid, load_inception_layers, resolve_inception_weights
from scripts.runtime import distributed

Device = Union[str, torch.device]

INCEPTION_NAME = "inception_v3"
INCEPTION_DIM = 2048
# Allowed input range before clamping; wider values mean another convention ([-1,1], [0,255]).
_LOOSE_RANGE = (-0.5, 1.5)


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
    """Raise naming the bad value unless ``images`` is a finite float tensor [B >= 1, 1 or 3, H, W] near [0, 1]."""
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


@FEATURE_NETS.register("inception")
class InceptionFeatureNet(FeatureNet):
    """clean-fid's "clean" Inception-v3 features (pool3, 2048-d), as ``inception_v3``.

    Per image: uint8 [H, W, 3] -> clean-fid's ``build_resizer("clean")`` (PIL bicubic per
    channel in float32 to 299x299) -> (x - 128) / 128 -> the TF-2015-12-05 Inception's
    ``layers`` -> [2048]; i.e. clean-fid's ``InceptionV3W`` with ``resize_inside=False``.
    ``weights_path=None`` resolves the file with ``resolve_inception_weights``; an explicit
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
        self.resize = import_cleanfid().resize.build_resizer("clean")

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


def feature_statistics(
    batches: Iterable[torch.Tensor],
    feature_net: FeatureNet,
    *,
    num_images: Optional[int],
    desc: str,
    progress: bool = True,
    sample: Optional[Any] = None,
) -> Tuple[np.ndarray, np.ndarray, int]:
    """Stream image batches [B, C, H, W] in [0, 1] through ``feature_net``.

    Returns (mu [D], sigma [D, D], number of images): the mean and unbiased covariance of the
    features, in float64. Under several processes each streams its share of the images and the
    statistics are combined exactly (``combine_moments``); every process gets the result.
    ``num_images`` (the expected count, or None if unknown) is the progress bar's total.
    ``sample`` (a ``kid.FeatureSample``): also receives the features, every process's share (``merge``); under
    several processes each one's batches must be its ``distributed.my_blocks`` blocks, in order.
    """
    moments = RunningMoments()
    show = progress and distributed.is_main()
    with tqdm(total=num_images, desc=f"{desc} ({feature_net.name})", unit="image", disable=not show) as bar:
        for images in batches:
            features = feature_net.features(images)
            moments.update(features)
            if sample is not None:
                sample.add(features)
            bar.update(images.shape[0] * distributed.world_size())
    if sample is not None:
        sample.merge(distributed.gather_objects(sample.parts))
    return combine_moments(distributed.gather_objects(moments.summary()))
