"""The contract every registered dataset keeps: a name, at least one item, every item of its registered kind
(uint8 [C, H, W] images at the configured size, float [D] points), the same item for the same index and the
same config, a test split that shares no item with the training split (or is declared the same split), a
content fingerprint that tells the splits apart where it has one, its presentation to the processes
(``wrap_dataset``) of the data's shape, and, without its files, the one-line DatasetUnavailable.

A new dataset declares its small config in ``DECLARED``: its channels and size, and for a dataset read from
files, a function writing a small stand-in in its on-disk format into a folder. A dataset that only a
download can provide (no stand-in can be written: torchvision checks CIFAR-10's files against their MD5
sums) is declared ``download_only``, and only its error without the files is checked. No check reaches the
network.
"""

import socket
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import pytest
import torch
from PIL import Image

from configs.default import get_default_configs
from scripts.cli.errors import DatasetUnavailable
from scripts.config.build import DATASET_FEED, build_registered
from scripts.data.datasets import DATA_KINDS, DATASETS, SPLITS, dataset_kind, split_fingerprint, wrap_dataset
from scripts.data.datasets.prepared import write_prepared
from tests.contracts import check_declared

SIZE = (6, 5)  # rectangular, so height and width cannot be swapped unnoticed
DATA_RANGE = (-1.0, 1.0)


def write_pictures(folder: Path, count: int, seed: int) -> None:
    """``count`` random RGB PNGs of different shapes (none of the configured one) into ``folder``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (9 + i, 13 - i, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def folder_with_held_out(folder: Path) -> str:
    """An image folder with a subfolder of training images and its test split in ``<root>/test``."""
    write_pictures(folder / "pictures" / "sub", 3, seed=0)
    write_pictures(folder / "pictures" / "test", 2, seed=1)
    return str(folder / "pictures")


def folder_without_held_out(folder: Path) -> str:
    """An image folder with no test split: the test split reads the training images."""
    write_pictures(folder / "pictures", 3, seed=0)
    return str(folder / "pictures")


def zips_with_held_out(folder: Path) -> str:
    """A zip of images and its test split beside it, ``<stem>_test.zip``."""
    for stem, seed in (("pictures", 0), ("pictures_test", 1)):
        write_pictures(folder / stem, 3, seed)
        with zipfile.ZipFile(folder / f"{stem}.zip", "w") as archive:
            for path in sorted((folder / stem).iterdir()):
                archive.write(path, f"{stem}/{path.name}")
    return str(folder / "pictures.zip")


def prepared_zips(folder: Path) -> str:
    """Zips written by the dataset tool's writer (RGB at SIZE), the test split in ``<stem>_test.zip``."""
    for stem, seed in (("prepared", 0), ("prepared_test", 1)):
        images = torch.randint(0, 256, (3, 3, *SIZE), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
        write_prepared(
            str(folder / f"{stem}.zip"), ((x, None) for x in images), resolution=SIZE, channels=3, source=stem
        )
    return str(folder / "prepared.zip")


def write_idx(path: Path, array: np.ndarray) -> None:
    """uint8 ``array`` in the idx format MNIST ships in: 0, 0, type 8 (uint8), the number of dimensions, each
    dimension as a big-endian int32, then the bytes."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(struct.pack(">i", d) for d in array.shape)
    path.write_bytes(header + array.tobytes())


def mnist_idx_files(folder: Path) -> str:
    """The four MNIST files where torchvision reads them, ``<root>/MNIST/raw``: random 28x28 digits."""
    raw = folder / "mnist" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, count in (("train", 4), ("t10k", 3)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (count, 28, 28), dtype=np.uint8))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, (count,), dtype=np.uint8))
    return str(folder / "mnist")


@dataclass(frozen=True)
class Declared:
    """A dataset's small config: ``num_channels`` (data.num_channels) and ``image_size`` (H, W); ``files``
    writes its stand-in into an empty folder and returns the root (None: it reads no files);
    ``download_only``: no stand-in can be written; ``same_splits``: its test split is its training split."""

    num_channels: int
    image_size: Tuple[int, int] = SIZE
    files: Optional[Callable[[Path], str]] = None
    download_only: bool = False
    same_splits: bool = False


POINTS = Declared(2, image_size=(1, 1))

DECLARED: Dict[str, Declared] = {
    "afhq": Declared(3, files=zips_with_held_out),
    "cifar10": Declared(3, download_only=True),
    "correlated_gaussian": POINTS,
    "ffhq": Declared(1, files=folder_with_held_out),  # grayscale read from RGB files
    "gaussian_mixture": POINTS,
    "image_folder": Declared(3, files=folder_with_held_out),
    "lsun_church": Declared(3, files=folder_without_held_out, same_splits=True),
    "mnist": Declared(1, files=mnist_idx_files),
    "mnist5k": Declared(1),
    "prepared": Declared(3, files=prepared_zips),
    "spiral": POINTS,
    "two_moons": POINTS,
}


def test_every_registered_dataset_declares_its_contract_config():
    check_declared(DATASETS, DECLARED, __name__)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every connection fails at once, as offline: no check reaches the network."""

    def refuse(*args, **kwargs):
        raise OSError("the dataset contract reaches no network")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def build_split(name: str, split: str, root: str):
    """The declared dataset's ``split`` read from ``root``, fed as the config boundary feeds it."""
    declared = DECLARED[name]
    config = get_default_configs()
    config.data.update(dict(dataset=name, num_channels=declared.num_channels, root=root))
    provided = {"split": lambda: split, "image_size": lambda: declared.image_size, "root": lambda: root}
    return build_registered(DATASET_FEED, config, provided)


def all_items(dataset) -> list:
    return [dataset[i] for i in range(len(dataset))]


def item_key(item: torch.Tensor) -> bytes:
    return item.numpy().tobytes()


@pytest.fixture(params=sorted(DECLARED))
def name(request):
    return request.param


@pytest.fixture
def root(name, tmp_path) -> str:
    """Where the declared dataset is read from: its stand-in, written into tmp_path (unused if it reads none)."""
    declared = DECLARED[name]
    if declared.download_only:
        pytest.skip(f"{name} needs a download: only its error without the files is checked")
    return declared.files(tmp_path) if declared.files else str(tmp_path / "unused")


@pytest.fixture
def splits(name, root) -> Dict[str, object]:
    return {split: build_split(name, split, root) for split in SPLITS}


class TestDatasetContract:
    def test_name_and_build_spec(self, name, splits):
        for dataset in splits.values():
            assert dataset.name == name and dataset.build_spec["name"] == name

    def test_every_item_is_of_the_registered_kind(self, name, splits):
        kind, declared = dataset_kind(name), DECLARED[name]
        assert kind in DATA_KINDS
        channels, (height, width) = declared.num_channels, declared.image_size
        if kind == "image":
            expected = (torch.uint8, (channels, height, width))
        else:
            expected = (torch.float32, (channels * height * width,))
        for split, dataset in splits.items():
            assert len(dataset) > 0, f"the {split} split of {name} is empty"
            items = all_items(dataset)
            assert {(item.dtype, tuple(item.shape)) for item in items} == {expected}, f"{kind} items are {expected}"
            assert torch.isfinite(torch.stack(items).float()).all()

    def test_same_index_same_item_and_same_config_same_items(self, name, root, splits):
        for split, dataset in splits.items():
            items = torch.stack(all_items(dataset))
            assert torch.equal(torch.stack(all_items(dataset)), items), "read again, an item changed"
            assert torch.equal(torch.stack(all_items(build_split(name, split, root))), items), "built again, it changed"

    def test_the_test_split_holds_no_training_item_unless_declared_the_same(self, name, splits):
        train, test = (set(map(item_key, all_items(splits[split]))) for split in SPLITS)
        if DECLARED[name].same_splits:
            assert train == test
        else:
            shared = len(train & test)
            assert shared == 0, f"{shared} of the {len(test)} test items of {name} are training items"

    def test_the_fingerprint_names_each_split_apart(self, name, root):
        prints = {split: split_fingerprint(name, split=split, root=root) for split in SPLITS}
        if prints["train"] is None:
            assert prints["test"] is None
            return
        assert all(isinstance(p, str) and p for p in prints.values())
        assert prints == {split: split_fingerprint(name, split=split, root=root) for split in SPLITS}
        assert (prints["train"] == prints["test"]) == DECLARED[name].same_splits

    def test_presented_to_the_processes_with_the_data_shape(self, name, splits):
        kind, declared = dataset_kind(name), DECLARED[name]
        dataset = splits["train"]
        data = wrap_dataset(dataset, kind=kind, data_range=DATA_RANGE, random_flip=False, uniform_dequantization=False)
        x = data.fetch(torch.tensor([0, len(dataset) - 1]))
        assert data.kind == kind and len(data) == len(dataset)
        assert x.dtype == torch.float32 and x.shape == (2, declared.num_channels, *declared.image_size)
        assert torch.isfinite(x).all()
        if kind == "image":
            assert DATA_RANGE[0] <= x.min() and x.max() <= DATA_RANGE[1]


def test_without_its_files_a_dataset_is_one_line_dataset_unavailable(name, tmp_path):
    declared = DECLARED[name]
    if declared.files is None and not declared.download_only:
        pytest.skip(f"{name} reads no files")
    missing = str(tmp_path / "missing")
    for split in SPLITS:
        with pytest.raises(DatasetUnavailable) as error:
            build_split(name, split, missing)
        message = str(error.value)
        assert missing in message and "\n" not in message
