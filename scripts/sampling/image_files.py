"""Image files that users name on the command line or give the API (PNG, JPEG, ...).

Only PIL is imported here, so a command can refuse an unreadable file before it imports torch.
"""

from __future__ import annotations

import os

from PIL import Image

from scripts.data.image_decoding import converted, open_image


def read_image(path: str, mode: str) -> Image.Image:
    """The image at ``path`` decoded to ``mode`` ("L" or "RGB"; 16-bit grey by value); a file that is missing, not
    an image or larger than ``MAX_PIXELS`` is a one-line ValueError naming it (scripts/data/image_decoding.py)."""
    where = f"image {path!r}"
    if not os.path.isfile(path):
        raise ValueError(f"{where} cannot be read (no such file); allowed: a PNG/JPEG/... image file")
    with open_image(path, where) as image:
        return converted(image, mode, where)


GREY_MODES = ("1", "L", "LA", "I", "F", "I;16", "I;16B", "I;16L", "I;16N")  # PIL modes of one colour channel


def check_image_shape(path: str, shape, exact_size: bool) -> None:
    """One line unless the image at ``path`` has the channels of ``shape`` = (C, H, W) (grey modes count 1, every
    other mode 3; an alpha channel is not counted) and, with ``exact_size``, its H x W pixels."""
    where = f"image {path!r}"
    channels, height, width = shape
    with open_image(path, where) as image:
        found = 1 if image.mode in GREY_MODES else 3
        size = (image.height, image.width)
    if found != channels:
        kind = "grey" if channels == 1 else "colour (RGB)"
        raise ValueError(f"{where} has {found} channel(s); this model takes {channels}-channel images; allowed: {kind}")
    if exact_size and size != (height, width):
        raise ValueError(
            f"{where} is {size[0]}x{size[1]} pixels; a degraded image is used as it is, so allowed: the model's "
            f"{height}x{width} (resizing it would change its degradation)"
        )
