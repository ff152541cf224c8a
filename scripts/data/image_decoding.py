"""Decoding image files that may be hostile, with memory bounded by what the image's declared size needs.

PIL reads a file's header before any pixel: ``open_image`` refuses an image whose header claims more than
``MAX_PIXELS`` pixels before it is decoded (PIL's own decompression-bomb guard fires only far above that, and
as a long traceback). ``converted`` decodes to "L" or "RGB" by value: a 16-bit grey level v becomes
round(v / 257), where PIL's own conversion clips every level above 255 to white. ``read_member`` reads a zip
member of at most ``limit`` bytes, whatever its header claims. Each failure is an ``UnreadableImage``: one line
naming the file (and the member). Only PIL and numpy are imported, so a command can refuse a bad file before
it imports torch.
"""

from __future__ import annotations

import struct
import zipfile
from typing import BinaryIO, Union

import numpy as np
from PIL import Image

MAX_PIXELS = 8192 * 8192  # more than any source image a training resolution here needs
MAX_MEMBER_BYTES = 1 << 28  # 256 MiB: a source image file inside a zip
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
# what PIL raises for a damaged or truncated file (SyntaxError and struct.error come from its parsers)
PIL_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError)


class UnreadableImage(ValueError):
    """An image file (or zip member) that cannot be decoded within the bounds; the message names it."""


def open_image(source: Union[str, BinaryIO], where: str) -> Image.Image:
    """The image at ``source`` (a path or a file object) with only its header read; refused (``UnreadableImage``)
    if it is not an image or claims more than ``MAX_PIXELS`` pixels. ``where`` names it in the message."""
    allowed = f"allowed: at most {MAX_PIXELS} (8192x8192), so that decoding it cannot exhaust memory"
    try:
        image = Image.open(source)
    except Image.DecompressionBombError as error:  # PIL's guard, far above MAX_PIXELS, fires first
        raise UnreadableImage(f"{where}: its header claims too many pixels ({error}); {allowed}") from None
    except PIL_ERRORS as error:
        raise UnreadableImage(
            f"{where} cannot be read ({type(error).__name__}: {error}); allowed: an image file"
        ) from None
    if image.width * image.height > MAX_PIXELS:
        raise UnreadableImage(f"{where}: its header claims {image.width}x{image.height} pixels; {allowed}")
    return image


def converted(image: Image.Image, mode: str, where: str) -> Image.Image:
    """``image`` decoded and converted to ``mode`` ("L" or "RGB"), 16-bit grey levels scaled to 8 bits by value."""
    try:
        if image.mode in SIXTEEN_BIT_MODES:
            levels = np.asarray(image, dtype=np.uint32)
            image = Image.fromarray(((levels + 128) // 257).astype(np.uint8), mode="L")
        return image.convert(mode)
    except PIL_ERRORS as error:
        raise UnreadableImage(
            f"{where} cannot be read ({type(error).__name__}: {error}); allowed: an image file"
        ) from None


def read_member(archive: zipfile.ZipFile, name: str, limit: int, where: str) -> bytes:
    """The bytes of member ``name`` of ``archive``: at most ``limit`` are read, so a member that inflates beyond
    them (whatever its header says) is refused, as is a missing or damaged member. ``where`` names the zip."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise UnreadableImage(f"{where}: member {name} is missing") from None
    too_large = f"{where}: member {name} inflates to more than {limit} bytes; allowed: at most {limit}"
    if info.file_size > limit:
        raise UnreadableImage(too_large)
    try:
        with archive.open(info) as handle:
            payload = handle.read(limit + 1)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise UnreadableImage(f"{where}: member {name} is damaged ({error})") from None
    if len(payload) > limit:
        raise UnreadableImage(too_large)
    return payload
