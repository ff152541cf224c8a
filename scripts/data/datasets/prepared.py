"""Prepared datasets (``prepared``): one zip of images already at the training resolution, written once by
``python -m scripts.dataset_tool`` and read back here, decoded once into memory.

Layout: ``NNNNNNNN.png`` (uncompressed zip entries, image i in order) and ``dataset.json``, the manifest:
count, resolution [H, W], channels, source, labels (a list of ints, or null) and the fingerprint, the
SHA-256 of every stored PNG's bytes in order followed by the labels. The fingerprint names the content:
reference statistics for FID are keyed by it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from typing import Any, Dict, Iterable, List, Optional, Tuple

import numpy as np
import torch
from PIL import Image

from scripts.cli.errors import DatasetUnavailable
from scripts.data.datasets.base import DATASETS, TensorImages, split_root
from scripts.storage.files import temporary_path

MANIFEST_NAME = "dataset.json"
FORMAT_VERSION = 1


def image_name(index: int) -> str:
    return f"{index:08d}.png"


def png_bytes(image: torch.Tensor) -> bytes:
    """uint8 [C, H, W] (C = 1 or 3) encoded as PNG (lossless)."""
    array = image.permute(1, 2, 0).numpy()
    pil = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def decode_png(payload: bytes, channels: int) -> torch.Tensor:
    """PNG bytes -> uint8 [C, H, W]."""
    array = np.asarray(Image.open(io.BytesIO(payload)).convert({1: "L", 3: "RGB"}[channels]), dtype=np.uint8)
    array = array[:, :, None] if array.ndim == 2 else array
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


class Fingerprint:
    """SHA-256 over the stored PNG bytes in order, then the labels (as JSON): a name for the content."""

    def __init__(self):
        self._hash = hashlib.sha256()

    def add_image(self, payload: bytes) -> None:
        self._hash.update(len(payload).to_bytes(8, "little"))
        self._hash.update(payload)

    def hexdigest(self, labels: Optional[List[int]]) -> str:
        final = self._hash.copy()
        final.update(json.dumps(labels).encode())
        return final.hexdigest()


def write_prepared(
    dest: str,
    images: Iterable[Tuple[torch.Tensor, Optional[int]]],
    *,
    resolution: Tuple[int, int],
    channels: int,
    source: str,
) -> Dict[str, Any]:
    """Write (image uint8 [C, H, W], label or None) pairs to the zip ``dest`` atomically; returns the manifest.

    Entries are stored uncompressed (PNG is compressed already). Labels are recorded only if every
    image has one. The zip is written beside ``dest`` and renamed over it once complete.
    """
    fingerprint = Fingerprint()
    labels: List[Optional[int]] = []
    temporary = temporary_path(dest)
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    try:
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_STORED) as archive:
            for index, (image, label) in enumerate(images):
                payload = png_bytes(image)
                fingerprint.add_image(payload)
                archive.writestr(image_name(index), payload)
                labels.append(label)
            if not labels:
                raise ValueError(f"no readable image to store in {dest}; nothing written")
            recorded = [int(x) for x in labels] if labels and all(x is not None for x in labels) else None
            manifest = {
                "format": FORMAT_VERSION,
                "count": len(labels),
                "resolution": [int(resolution[0]), int(resolution[1])],
                "channels": int(channels),
                "source": source,
                "labels": recorded,
                "fingerprint": fingerprint.hexdigest(recorded),
            }
            archive.writestr(MANIFEST_NAME, json.dumps(manifest, indent=1))
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, dest)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return manifest


def read_manifest(path: str) -> Dict[str, Any]:
    """The manifest of the prepared zip ``path``; a file that is not one is one clear error."""
    if not os.path.isfile(path) or not zipfile.is_zipfile(path):
        raise DatasetUnavailable(
            f"prepared dataset {path!r} is not a zip file; make one with python -m scripts.dataset_tool"
        )
    with zipfile.ZipFile(path) as archive:
        try:
            return json.loads(archive.read(MANIFEST_NAME))
        except KeyError:
            raise DatasetUnavailable(
                f"{path!r} has no {MANIFEST_NAME}: it was not written by python -m scripts.dataset_tool"
            ) from None


def check_fits(manifest: Dict[str, Any], path: str, image_size: Tuple[int, int], num_channels: int) -> None:
    """The configured image size and channel count must be the prepared ones (one line if not)."""
    stored = (tuple(manifest["resolution"]), manifest["channels"])
    wanted = (tuple(image_size), num_channels)
    if stored != wanted:
        raise ValueError(
            f"prepared dataset {path} holds {stored[0][0]}x{stored[0][1]} images with {stored[1]} channel(s), "
            f"but the config asks for data.image_size={wanted[0][0]}x{wanted[0][1]} "
            f"data.num_channels={wanted[1]}; set those, or prepare the data again at that size"
        )


class PreparedImages(TensorImages):
    """A prepared zip, decoded once into memory: uint8 [N, C, H, W] in ``items`` (training gathers batches
    from it on the device, so the order is the sampler's and resume stays exact with any num_workers).
    ``labels``: int64 [N] or None; ``fingerprint``: the manifest's."""

    def __init__(self, path: str, image_size: Tuple[int, int], num_channels: int):
        self.manifest = read_manifest(path)
        check_fits(self.manifest, path, image_size, num_channels)
        self.path = path
        self.fingerprint: str = self.manifest["fingerprint"]
        labels = self.manifest["labels"]
        labels = None if labels is None else torch.tensor(labels, dtype=torch.int64)
        super().__init__(self._decode_all(num_channels), labels)

    def _decode_all(self, channels: int) -> torch.Tensor:
        count = self.manifest["count"]
        height, width = self.manifest["resolution"]
        images = torch.empty((count, channels, height, width), dtype=torch.uint8)
        with zipfile.ZipFile(self.path) as archive:
            for index in range(count):
                images[index] = decode_png(archive.read(image_name(index)), channels)
        return images


def prepared_fingerprint(*, split: str, root: str) -> str:
    """The fingerprint in the manifest of the prepared zip behind ``split``, read without decoding its images."""
    return read_manifest(split_root(root, split))["fingerprint"]


@DATASETS.register("prepared", kind="image", fingerprint=prepared_fingerprint)
def prepared(*, split: str, image_size: Tuple[int, int], num_channels: int, root: str) -> PreparedImages:
    """A zip written by ``python -m scripts.dataset_tool`` (``split='test'`` reads ``<stem>_test.zip`` if present),
    held in memory; its resolution and channels must be the configured ones."""
    return PreparedImages(split_root(root, split), image_size, num_channels)
