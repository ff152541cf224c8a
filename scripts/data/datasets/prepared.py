"""Prepared datasets (``prepared``): one zip of images already at the training resolution, written once by
``python -m scripts.dataset_tool`` and read back here, decoded once into memory.

Layout: ``NNNNNNNN.png`` (uncompressed zip entries, image i in order) and ``dataset.json``, the manifest:
count, resolution [H, W], channels, source, labels (a list of ints, or null) and the fingerprint, the
SHA-256 of every stored PNG's bytes in order followed by the labels. The fingerprint names the content:
reference statistics for FID are keyed by it. Reading verifies it (the bytes are read anyway), so a zip changed
after it was written is refused in one line rather than trained on, or matched to another content's statistics.
A zip is untrusted input: the manifest's fields are checked, each member is read within the bytes a PNG of the
declared resolution can need, and a member of another size is refused before it is decoded.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np
import torch
from PIL import Image

from scripts.cli.errors import DatasetUnavailable
from scripts.data.datasets.base import DATASETS, TensorImages, split_root
from scripts.data.image_decoding import converted, open_image, read_member
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


def png_limit(resolution: Tuple[int, int], channels: int) -> int:
    """The most bytes a PNG of this size can take (raw rows with their filter bytes, twice, plus headers)."""
    height, width = resolution
    return 2 * height * (width * channels + 1) + 65536


def decode_png(payload: bytes, channels: int, resolution: Tuple[int, int], where: str) -> torch.Tensor:
    """PNG bytes -> uint8 [C, H, W]; an image that is not ``resolution`` (H, W) is refused before decoding."""
    image = open_image(io.BytesIO(payload), where)
    if (image.height, image.width) != tuple(resolution):
        raise ValueError(
            f"{where} is {image.height}x{image.width}; the manifest says {resolution[0]}x{resolution[1]} "
            "(prepare the dataset again)"
        )
    array = np.asarray(converted(image, {1: "L", 3: "RGB"}[channels], where), dtype=np.uint8)
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


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


MANIFEST_FIELDS = {  # field: (check, what is allowed)
    "count": (_is_count, "an integer >= 1"),
    "resolution": (lambda v: isinstance(v, list) and len(v) == 2 and all(map(_is_count, v)), "[H, W] of integers"),
    "channels": (lambda v: v in (1, 3) and not isinstance(v, bool), "1 or 3"),
    "labels": (lambda v: v is None or (isinstance(v, list) and all(isinstance(x, int) for x in v)), "null or ints"),
    "fingerprint": (lambda v: isinstance(v, str) and len(v) == 64, "a SHA-256 hex digest"),
}


def read_manifest(path: str) -> Dict[str, Any]:
    """The manifest of the prepared zip ``path``, every field checked; a file that is not one is one clear error."""
    if not os.path.isfile(path) or not zipfile.is_zipfile(path):
        raise DatasetUnavailable(
            f"prepared dataset {path!r} is not a zip file; make one with python -m scripts.dataset_tool"
        )
    with zipfile.ZipFile(path) as archive:
        if MANIFEST_NAME not in archive.namelist():
            raise DatasetUnavailable(
                f"{path!r} has no {MANIFEST_NAME}: it was not written by python -m scripts.dataset_tool"
            )
        payload = read_member(archive, MANIFEST_NAME, 1 << 26, path)
        try:
            manifest = json.loads(payload)
        except ValueError as error:
            raise DatasetUnavailable(f"{path!r}: {MANIFEST_NAME} is not valid JSON ({error})") from None
    for field, (check, allowed) in MANIFEST_FIELDS.items():
        if not isinstance(manifest, dict) or not check(manifest.get(field)):
            value = manifest.get(field, "missing") if isinstance(manifest, dict) else "missing"
            raise DatasetUnavailable(
                f"{path!r}: {MANIFEST_NAME} field {field}={value!r}; allowed: {allowed} "
                "(the file was not written by python -m scripts.dataset_tool, or was edited)"
            )
    if manifest["labels"] is not None and len(manifest["labels"]) != manifest["count"]:
        raise DatasetUnavailable(
            f"{path!r}: {MANIFEST_NAME} has {len(manifest['labels'])} labels for count={manifest['count']} images"
        )
    return manifest


def verified_payloads(archive: zipfile.ZipFile, manifest: Dict[str, Any], path: str) -> Iterator[Tuple[int, bytes]]:
    """(index, PNG bytes) of every image, each read within ``png_limit``; once all are read, their fingerprint must
    be the manifest's (else one line naming the zip)."""
    fingerprint, limit = Fingerprint(), png_limit(manifest["resolution"], manifest["channels"])
    for index in range(manifest["count"]):
        payload = read_member(archive, image_name(index), limit, f"prepared dataset {path}")
        fingerprint.add_image(payload)
        yield index, payload
    computed = fingerprint.hexdigest(manifest["labels"])
    if computed != manifest["fingerprint"]:
        raise DatasetUnavailable(
            f"prepared dataset {path}: its images and labels have fingerprint {computed[:16]}, its {MANIFEST_NAME} "
            f"says {manifest['fingerprint'][:16]}: the zip was changed after it was written; prepare it again"
        )


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
        """Every image, its fingerprint verified as it is read (``verified_payloads``): uint8 [N, C, H, W]."""
        resolution = tuple(self.manifest["resolution"])
        images = torch.empty((self.manifest["count"], channels, *resolution), dtype=torch.uint8)
        with zipfile.ZipFile(self.path) as archive:
            for index, payload in verified_payloads(archive, self.manifest, self.path):
                where = f"prepared dataset {self.path}: member {image_name(index)}"
                images[index] = decode_png(payload, channels, resolution, where)
        return images


def prepared_fingerprint(*, split: str, root: str) -> str:
    """The fingerprint of the prepared zip behind ``split``, verified against its bytes without decoding an image."""
    path = split_root(root, split)
    manifest = read_manifest(path)
    with zipfile.ZipFile(path) as archive:
        for _ in verified_payloads(archive, manifest, path):
            pass
    return manifest["fingerprint"]


@DATASETS.register("prepared", kind="image", fingerprint=prepared_fingerprint)
def prepared(*, split: str, image_size: Tuple[int, int], num_channels: int, root: str) -> PreparedImages:
    """A zip written by ``python -m scripts.dataset_tool`` (``split='test'`` reads ``<stem>_test.zip`` if present),
    held in memory; its resolution and channels must be the configured ones."""
    return PreparedImages(split_root(root, split), image_size, num_channels)
