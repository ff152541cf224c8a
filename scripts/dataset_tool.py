"""Prepare a dataset once: center-crop and resize every image to the training resolution and store it in one zip.

    python -m scripts.dataset_tool --source SRC --dest data/NAME.zip --resolution R [--max_images N] [--channels 1|3]

SRC is a folder (searched recursively, its held-out ``test`` subfolder left out, as training leaves it out), a zip
of images, or a named dataset (mnist5k; mnist and cifar10 where their torchvision files are in data/<name>). Files
are resampled exactly as training resamples image folders (center crop, bicubic resize); named datasets as training
resamples them (antialiased bilinear). Unreadable files are skipped and counted. Train on the result with
``--config.data.dataset=prepared --config.data.root=data/NAME.zip``.

The zip is written as ``.NAME.zip.tmp-PID`` beside DEST and renamed into place, while holding a lock on DEST
(the sidecar ``.NAME.zip.lock``): a second tool writing the same DEST is refused, and the temporaries of DEST
that a killed tool left are removed.
"""

from __future__ import annotations

import os
import sys
from typing import Iterator, List, Optional, Tuple

import torch
from absl import flags
from tqdm import tqdm

from scripts.data.datasets import DATASETS
from scripts.data.datasets.image_folders import HELD_OUT_SPLITS, ImageFiles
from scripts.data.datasets.prepared import write_prepared
from scripts.data.image_decoding import UnreadableImage
from scripts.storage.files import exclusive_lock, remove_stale_temporaries

NAMED_SOURCES = {"mnist5k": 1, "mnist": 1, "cifar10": 3}  # name -> its channel count
SHOWN_UNREADABLE = 5

flags.DEFINE_string("source", None, "folder, zip of images, or one of: " + ", ".join(NAMED_SOURCES))
flags.DEFINE_string("dest", None, "the zip to write, e.g. data/afhq64.zip")
flags.DEFINE_integer("resolution", None, "side length of the stored square images")
flags.DEFINE_integer("max_images", None, "store at most this many images (the first ones in sorted order)")
flags.DEFINE_integer("channels", None, "1 (grayscale) or 3 (RGB); default: 3 for files, the dataset's own for names")
flags.DEFINE_boolean("force", False, "overwrite --dest if it exists")
FLAGS = flags.FLAGS


class Unreadable:
    """Files skipped because they could not be decoded: a count and the first few names."""

    def __init__(self):
        self.count = 0
        self.names: List[str] = []

    def add(self, name: str) -> None:
        self.count += 1
        if len(self.names) < SHOWN_UNREADABLE:
            self.names.append(name)

    def summary(self) -> Optional[str]:
        if not self.count:
            return None
        more = ", ..." if self.count > len(self.names) else ""
        return f"skipped {self.count} unreadable file(s): {', '.join(self.names)}{more}"


def file_images(
    source: str, resolution: int, channels: int, max_images: Optional[int], unreadable: Unreadable
) -> Tuple[int, Iterator[Tuple[torch.Tensor, None]]]:
    """(number of files considered, iterator of uint8 [C, R, R] images) of a folder or zip, resampled as training
    resamples them (``ImageFiles``), and of a folder what its training split holds (not ``<source>/test``);
    unreadable files are counted in ``unreadable`` and skipped."""
    files = ImageFiles(source, (resolution, resolution), channels, leave_out=HELD_OUT_SPLITS)
    names = files.names

    def images():
        stored = 0
        for name in names:
            if max_images is not None and stored >= max_images:
                return
            try:
                image = files.read(name)
            except UnreadableImage:
                unreadable.add(name)
                continue
            stored += 1
            yield image, None

    total = len(names) if max_images is None else min(len(names), max_images)
    return total, images()


def named_images(
    name: str, resolution: int, channels: int, max_images: Optional[int]
) -> Tuple[int, Iterator[Tuple[torch.Tensor, Optional[int]]]]:
    """The training split of a named dataset, resized as training resizes it, with its class labels."""
    constructor = DATASETS.get(name)
    dataset = constructor(
        split="train", image_size=(resolution, resolution), num_channels=channels, root=os.path.join("data", name)
    )
    count = len(dataset) if max_images is None else min(len(dataset), max_images)
    labels = getattr(dataset, "labels", None)
    return count, ((dataset[i], None if labels is None else int(labels[i])) for i in range(count))


def check_flags() -> Tuple[str, str, int, int]:
    """(source, dest, resolution, channels), each checked; a bad value is one ValueError naming it."""
    for name in ("source", "dest", "resolution"):
        if getattr(FLAGS, name) is None:
            raise ValueError(f"--{name} is required")
    source, dest, resolution = FLAGS.source, FLAGS.dest, FLAGS.resolution
    if resolution < 1:
        raise ValueError(f"--resolution={resolution} must be a positive int")
    if FLAGS.max_images is not None and FLAGS.max_images < 1:
        raise ValueError(f"--max_images={FLAGS.max_images} must be a positive int")
    if not dest.endswith(".zip"):
        raise ValueError(f"--dest={dest!r} must name a .zip file")
    if os.path.exists(dest) and not FLAGS.force:
        raise ValueError(f"--dest={dest!r} exists; give --force to overwrite it")
    if source not in NAMED_SOURCES and not os.path.exists(source):
        raise ValueError(f"--source={source!r} is neither a folder, a zip, nor one of {', '.join(NAMED_SOURCES)}")
    channels = FLAGS.channels or NAMED_SOURCES.get(source, 3)
    if channels not in (1, 3):
        raise ValueError(f"--channels={channels} is not allowed; allowed: 1, 3")
    return source, dest, resolution, channels


def run() -> None:
    source, dest, resolution, channels = check_flags()
    unreadable = Unreadable()
    if source in NAMED_SOURCES:
        total, images = named_images(source, resolution, channels, FLAGS.max_images)
    else:
        total, images = file_images(source, resolution, channels, FLAGS.max_images, unreadable)
    with exclusive_lock(dest, wait=False):  # one writer of DEST at a time: other temporaries of DEST are stale
        removed = remove_stale_temporaries(os.path.dirname(dest) or ".", [os.path.basename(dest)])
        if removed:
            print(f"removed temporary files that interrupted writes left: {', '.join(removed)}")
        bar = tqdm(images, total=total, desc=f"preparing {dest}", unit="img", dynamic_ncols=True)
        manifest = write_prepared(
            dest,
            bar,
            resolution=(resolution, resolution),
            channels=channels,
            source=os.path.basename(source.rstrip("/")),
        )
        bar.close()
    if unreadable.summary():
        print(f"warning: {unreadable.summary()}", file=sys.stderr)
    print(
        f"wrote {dest}: {manifest['count']} images {resolution}x{resolution}x{channels}, "
        f"fingerprint {manifest['fingerprint'][:16]}"
    )


if __name__ == "__main__":
    from scripts.cli.command import run_command

    run_command(run)
