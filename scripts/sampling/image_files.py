"""Image files that users name on the command line or give the API (PNG, JPEG, ...).

Only PIL is imported here, so a command can refuse an unreadable file before it imports torch.
"""

from __future__ import annotations

from PIL import Image


def read_image(path: str) -> Image.Image:
    """The decoded image at ``path``; a file that is missing or not an image is a one-line ValueError naming it."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except (OSError, ValueError) as error:
        raise ValueError(f"image {path!r} cannot be read ({error}); allowed: a PNG/JPEG/... image file") from None
