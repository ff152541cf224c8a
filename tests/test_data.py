"""Datasets: embedded MNIST, image folders and zips, the range map, resumable batch order, offline errors."""

import urllib.error
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from scripts.cli.errors import DatasetUnavailable
from scripts.data.batches import EpochBatches
from scripts.data.datasets import DATASETS, ImageData, TensorImages, dataset_kind
from scripts.data.datasets.mnist import mnist5k_images
from scripts.sampling.imaging import to_unit
from tests.helpers import build_dataset


def test_mnist5k_splits():
    train = build_dataset("mnist5k", split="train", image_size=(28, 28), num_channels=1, root="unused")
    test = build_dataset("mnist5k", split="test", image_size=(28, 28), num_channels=1, root="unused")
    assert len(train) == 4500 and len(test) == 500
    assert train[0].dtype == torch.uint8 and train[0].shape == (1, 28, 28)
    images, labels = mnist5k_images()
    assert torch.equal(torch.cat([test.images, train.images]), images)
    assert torch.equal(torch.cat([test.labels, train.labels]), labels) and set(labels.tolist()) == set(range(10))
    # real digits: mostly black background with bright strokes, and all ten classes' worth of variety
    assert 0.1 < (images > 128).float().mean() < 0.3
    small = build_dataset("mnist5k", split="test", image_size=(8, 8), num_channels=1, root="unused")
    assert small[0].shape == (1, 8, 8)


def test_prepare_maps_range_dequantises_and_flips():
    images = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16).repeat(8, 1, 1, 1)

    def data(random_flip=False, uniform_dequantization=False):
        return ImageData(
            TensorImages(images),
            data_range=(-1.0, 1.0),
            random_flip=random_flip,
            uniform_dequantization=uniform_dequantization,
        )

    x = data().prepare(images)
    assert x.min() == -1.0 and x.max() == 1.0
    torch.testing.assert_close(to_unit(x, (-1.0, 1.0)), images.float() / 255)
    x01 = to_unit(data(uniform_dequantization=True).prepare(images, torch.Generator().manual_seed(0)), (-1.0, 1.0))
    lower = images.float() / 256
    assert (x01 >= lower).all() and (x01 < lower + 1 / 256).all()
    flipped = data(random_flip=True).prepare(images, torch.Generator().manual_seed(0))
    is_flipped = [torch.equal(f, x[i].flip(-1)) for i, f in enumerate(flipped)]
    assert any(is_flipped) and not all(is_flipped)


def test_epoch_batches_depend_on_the_step_alone():
    full = EpochBatches(10, 3, seed=1)
    stream = iter(full)
    first = [next(stream) for _ in range(7)]
    resumed = iter(EpochBatches(10, 3, seed=1, start_step=4))
    assert [next(resumed) for _ in range(3)] == first[4:]
    epoch = sum(first[:3], [])
    assert len(set(epoch)) == 9  # one epoch: 3 full batches of distinct images


def _write_images(folder, count=3):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        picture = np.zeros((30, 50, 3), dtype=np.uint8)
        picture[:, :10] = (255, 0, 0)  # red bands at the left and right edges, green centre
        picture[:, -10:] = (255, 0, 0)
        picture[:, 10:-10] = (0, 255, 0)
        Image.fromarray(picture).save(folder / f"img{i}.png")


def test_image_folder_and_zip_center_crop(tmp_path):
    _write_images(tmp_path / "faces" / "sub")
    folder = build_dataset(
        "image_folder", split="train", image_size=(8, 8), num_channels=3, root=str(tmp_path / "faces")
    )
    assert len(folder) == 3
    image = folder[0]
    assert image.shape == (3, 8, 8)
    assert image[0].max() < 40 and image[1].min() > 200  # the centred square holds no red
    archive = tmp_path / "faces.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted((tmp_path / "faces" / "sub").iterdir()):
            handle.write(path, f"faces/{path.name}")
    zipped = build_dataset("afhq", split="train", image_size=(8, 8), num_channels=3, root=str(archive))
    assert len(zipped) == 3 and torch.equal(zipped[0], image)
    gray = build_dataset("ffhq", split="train", image_size=(6, 4), num_channels=1, root=str(archive))
    assert gray[0].shape == (1, 6, 4)


def test_the_training_split_of_a_folder_leaves_its_test_split_out(tmp_path):
    _write_images(tmp_path / "faces" / "sub", count=3)
    _write_images(tmp_path / "faces" / "test", count=2)
    train, test = (
        build_dataset("image_folder", split=split, image_size=(8, 8), num_channels=3, root=str(tmp_path / "faces"))
        for split in ("train", "test")
    )
    assert train.names == [f"sub/img{i}.png" for i in range(3)] and test.names == ["img0.png", "img1.png"]


def test_missing_image_root_and_unknown_dataset(tmp_path):
    with pytest.raises(DatasetUnavailable, match="neither a folder nor a zip"):
        build_dataset("lsun_church", split="train", image_size=(8, 8), num_channels=3, root=str(tmp_path / "nothing"))
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'; known: afhq, cifar10"):
        build_dataset("imagenet", split="train", image_size=(8, 8), num_channels=3, root="x")
    with pytest.raises(ValueError, match="data.num_channels=3 does not fit dataset 'mnist5k'"):
        build_dataset("mnist5k", split="train", image_size=(8, 8), num_channels=3, root="x")


def test_torchvision_dataset_offline_names_the_folder_and_the_alternative(monkeypatch, tmp_path):
    from scripts.runtime.compat import import_torchvision

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(import_torchvision().datasets, "CIFAR10", offline)
    with pytest.raises(DatasetUnavailable) as error:
        build_dataset("cifar10", split="train", image_size=(32, 32), num_channels=3, root=str(tmp_path / "cifar10"))
    assert str(tmp_path / "cifar10") in str(error.value) and "mnist5k" in str(error.value)


def test_the_data_kind_is_the_registered_one_and_dequantisation_is_an_argument():
    from configs.default import get_default_configs
    from scripts.config import build
    from tests.helpers import make_process

    process = make_process("ihdm", "identity", 3, 8, sigma=0.01)
    config = get_default_configs()
    config.data.image_size = 8
    assert {dataset_kind(name) for name in DATASETS.names()} == {"image", "points"}
    plain = build.build_data(config, "test", process)
    dequantised = build.build_data(config, "test", process, uniform_dequantization=True)
    assert plain.kind == build.data_kind(config) == "image" and not plain.uniform_dequantization
    assert dequantised.uniform_dequantization
    raw = plain.raw_batch(torch.tensor([3, 1]))
    assert raw.dtype == torch.uint8 and torch.equal(raw, torch.stack([plain.dataset[3], plain.dataset[1]]))
    x = dequantised.prepare(raw, torch.Generator().manual_seed(0), augment=False)
    assert ((x * 256 - raw.float() >= 0) & (x * 256 - raw.float() < 1)).all()
    config.data.dataset, config.data.num_channels, config.data.image_size = "spiral", 2, 1
    assert build.data_kind(config) == "points" and build.build_data(config, "test", process).kind == "points"
    with pytest.raises(ValueError, match="unknown split 'val'; allowed: train, test"):
        build.build_data(config, "val", process)
