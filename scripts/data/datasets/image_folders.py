"""Image folders and zips (``image_folder``, ``afhq``, ``ffhq``, ``lsun_church``): every image file under the
root, read when asked for, center-cropped and resized to the configured size.

Which files of a folder are images: regular files with an image suffix, found by walking the folder. A symbolic
link to a file is followed (the file it names is read); a symbolic link to a folder is not descended into
(os.walk's rule, which also keeps a link loop from recursing); a FIFO, socket or device, or a broken link, is
skipped with a warning and never opened. Every file is decoded within bounds (scripts/data/image_decoding.py).
"""

from __future__ import annotations

import io
import os
import stat
import sys
import zipfile
from typing import List, Optional, Sequence, Set, Tuple

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from model_code.registry import Registered
from scripts.cli.errors import DatasetUnavailable
from scripts.data.datasets.base import DATASETS, SPLITS, split_root
from scripts.data.image_decoding import MAX_MEMBER_BYTES, UnreadableImage, converted, open_image, read_member

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
IMAGE_FOLDER_NAMES = ("image_folder", "afhq", "ffhq", "lsun_church")
HELD_OUT_SPLITS = tuple(split for split in SPLITS if split != "train")  # <root>/<split> in a folder


class ImageFiles(Registered, Dataset):
    """Images from a folder (searched recursively, but for the subfolders ``leave_out`` names) or a .zip,
    center-cropped and resized."""

    def __init__(self, root: str, image_size: Tuple[int, int], num_channels: int, leave_out: Sequence[str] = ()):
        self.root = root
        self.image_size = image_size
        self.mode = {1: "L", 3: "RGB"}[num_channels]
        self.names = list_images(root, leave_out)
        self.unreadable: Set[str] = set()
        self._zip: Optional[zipfile.ZipFile] = None

    def __len__(self) -> int:
        return len(self.names)

    def _where(self, name: str) -> str:
        """How messages name the file ``name``: its path in a folder, the zip and the member in a zip."""
        return os.path.join(self.root, name) if os.path.isdir(self.root) else f"{self.root}: member {name}"

    def _open(self, name: str) -> Image.Image:
        if os.path.isdir(self.root):
            return open_image(os.path.join(self.root, name), self._where(name))
        if self._zip is None:  # opened lazily, once per DataLoader worker
            self._zip = zipfile.ZipFile(self.root)
        payload = read_member(self._zip, name, MAX_MEMBER_BYTES, self.root)
        return open_image(io.BytesIO(payload), self._where(name))

    def __getitem__(self, index: int) -> torch.Tensor:
        """Image ``index`` as uint8 [C, H, W]. An unreadable file is skipped with a warning naming it: the next
        readable image (in sorted order) takes its place, so the data order stays a function of the step."""
        for offset in range(len(self.names)):
            name = self.names[(index + offset) % len(self.names)]
            try:
                return self.read(name)
            except UnreadableImage as error:
                self._warn_unreadable(name, error)
        raise DatasetUnavailable(f"no image in {self.root} can be read (see the warnings above)")

    def read(self, name: str) -> torch.Tensor:
        """The file ``name`` (one of ``names``) as uint8 [C, H, W]; raises ``UnreadableImage`` if it cannot be."""
        image = center_crop_resize(converted(self._open(name), self.mode, self._where(name)), self.image_size)
        array = np.asarray(image, dtype=np.uint8)
        array = array[:, :, None] if array.ndim == 2 else array
        return torch.from_numpy(array.copy()).permute(2, 0, 1)

    def _warn_unreadable(self, name: str, error: Exception) -> None:
        """One warning per unreadable file and process (DataLoader workers each warn once)."""
        if name in self.unreadable:
            return
        self.unreadable.add(name)
        print(f"warning: skipping unreadable image ({error}); the next image is used", file=sys.stderr)


def center_crop_resize(image: Image.Image, size: Tuple[int, int]) -> Image.Image:
    """Crop the largest centred box of the target aspect ratio, then resize (bicubic) to size (H, W)."""
    height, width = size
    scale = min(image.width / width, image.height / height)
    crop_w, crop_h = round(width * scale), round(height * scale)
    left, top = (image.width - crop_w) // 2, (image.height - crop_h) // 2
    return image.crop((left, top, left + crop_w, top + crop_h)).resize((width, height), Image.BICUBIC)


def list_images(root: str, leave_out: Sequence[str] = ()) -> List[str]:
    """The image files of the folder (searched recursively, but not in its subfolders named in ``leave_out``)
    or zip ``root``, sorted; none is one clear error."""
    if os.path.isdir(root):
        names = []
        for folder, subfolders, files in os.walk(root):
            if folder == root:  # os.walk descends only into the subfolders left in the list
                subfolders[:] = [s for s in subfolders if s not in leave_out]
            names += [
                os.path.relpath(os.path.join(folder, f), root)
                for f in files
                if f.lower().endswith(IMAGE_SUFFIXES) and is_regular_file(os.path.join(folder, f))
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


def is_regular_file(path: str) -> bool:
    """Whether ``path`` is, or links to, a regular file; anything else is skipped with a warning (the module
    docstring's rule)."""
    try:
        if stat.S_ISREG(os.stat(path).st_mode):
            return True
        reason = "not a regular file (a FIFO, socket or device)"
    except OSError as error:
        reason = f"cannot be read ({error.strerror})"
    print(f"warning: skipping {path}: {reason}", file=sys.stderr)
    return False


def image_files(*, split: str, image_size: Tuple[int, int], num_channels: int, root: str) -> Dataset:
    """Image folder or zip at ``root``; ``split='test'`` reads ``<root>/test`` (or ``<stem>_test.zip``) if present,
    and the training split of a folder leaves ``<root>/test`` out."""
    leave_out = HELD_OUT_SPLITS if split == "train" else ()
    return ImageFiles(split_root(root, split), image_size, num_channels, leave_out)


for dataset_name in IMAGE_FOLDER_NAMES:  # one loader, registered under the names the upstream configs use
    DATASETS.register(dataset_name, kind="image")(image_files)
