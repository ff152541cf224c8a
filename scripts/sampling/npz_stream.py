"""An npz written chunk by chunk (sample.py's samples.npz), so that the disk, not the memory, bounds its size.

Each float32 array of a known final shape is staged as a ``.npy`` temporary beside the file (``temporary_path``
names it, so ``remove_stale_temporaries`` knows it): its header for the final shape first, then its rows as
they come (``append``). ``close`` zips the staged arrays and the small ones (deflated, as
``np.savez_compressed`` does) into the file, atomically (``write_atomic_with``), and removes the temporaries.
Writing therefore takes up to about twice the arrays' size on disk (``bytes_needed``); a failed or interrupted
write leaves no partial npz, and the previous file, if any, intact.
"""

from __future__ import annotations

import math
import os
import zipfile
from typing import BinaryIO, Dict, Sequence, Tuple

import numpy as np

from scripts.storage.files import temporary_path, write_atomic_with, write_error

DTYPE = np.dtype(np.float32)
OVERHEAD = 1 << 16  # npy and zip headers, and the small arrays, with room to spare


def bytes_needed(shapes: Dict[str, Sequence[int]]) -> int:
    """The disk space an ``NpzStream`` of float32 arrays of ``shapes`` takes at its peak: the staged arrays, and
    the npz beside them (deflate grows incompressible data by well under 1/1000)."""
    raw = sum(math.prod(shape) for shape in shapes.values()) * DTYPE.itemsize
    return 2 * raw + raw // 1000 + OVERHEAD


class NpzStream:
    """``path`` (an npz) of float32 arrays of ``shapes``, filled in row order by ``append``, and ``small`` arrays
    given whole; ``close`` writes it. As a context manager, the temporaries are removed however it ends."""

    def __init__(self, path: str, shapes: Dict[str, Tuple[int, ...]], **small: np.ndarray):
        self.path, self.shapes, self.small = path, shapes, small
        self.staged = {name: temporary_path(f"{path}.{name}.npy") for name in shapes}
        self.rows = dict.fromkeys(shapes, 0)
        self.handles: Dict[str, BinaryIO] = {}
        try:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            for name, shape in shapes.items():
                self.handles[name] = open(self.staged[name], "wb")
                header = {"descr": np.lib.format.dtype_to_descr(DTYPE), "fortran_order": False, "shape": shape}
                np.lib.format.write_array_header_2_0(self.handles[name], header)
        except OSError as error:
            self.discard()
            raise write_error(path, error) from None

    def __enter__(self) -> "NpzStream":
        return self

    def __exit__(self, *exception) -> None:
        self.discard()

    def append(self, **rows: np.ndarray) -> None:
        """The next rows [n, *shape[1:]] of the arrays named."""
        for name, block in rows.items():
            block = np.ascontiguousarray(block, dtype=DTYPE)
            if block.shape[1:] != tuple(self.shapes[name][1:]) or self.rows[name] + len(block) > self.shapes[name][0]:
                raise ValueError(f"{name}: rows {block.shape} after {self.rows[name]} do not fit {self.shapes[name]}")
            try:
                self.handles[name].write(block.data)
            except OSError as error:
                raise write_error(self.path, error) from None
            self.rows[name] += len(block)

    def close(self) -> str:
        """Zip the complete staged arrays and the small ones into ``path``, atomically; returns ``path``."""
        missing = [name for name, shape in self.shapes.items() if self.rows[name] != shape[0]]
        if missing:
            raise ValueError(f"{missing[0]}: {self.rows[missing[0]]} rows written of {self.shapes[missing[0]][0]}")
        for handle in self.handles.values():
            handle.close()
        write_atomic_with(self.path, self.zip_into)
        self.discard()
        return self.path

    def zip_into(self, handle: BinaryIO) -> None:
        """The npz, member by member in the order given (staged, then small), into ``handle``."""
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            for name, staged in self.staged.items():
                archive.write(staged, arcname=f"{name}.npy")
            for name, array in self.small.items():
                with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asanyarray(array))

    def discard(self) -> None:
        """Close and remove the staged temporaries (the npz, once written, stays)."""
        for handle in self.handles.values():
            handle.close()
        for staged in self.staged.values():
            if os.path.exists(staged):
                os.remove(staged)
