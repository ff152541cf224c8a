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
