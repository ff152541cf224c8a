"""Writing files atomically: a crash or a failed write leaves the previous file intact.

``write_atomic(path, payload)`` (or ``write_atomic_with(path, write)`` for a writer that streams to a file
handle: PNG, GIF, npz) writes ``.NAME.tmp-PID`` beside ``path``, fsyncs it and renames it over ``path``.
A process killed mid-write (kill -9) leaves its temporary file behind; ``remove_stale_temporaries`` clears
those of other processes, where no other process can be writing (the caller holds a lock).
``exclusive_lock(path)`` serialises the writers of ``path`` (several processes, or machines sharing a file
system where flock works): read-modify-write cycles, or one writer at a time with the others refused.
"""

import contextlib
import fcntl
import os
import re
import shutil
from typing import BinaryIO, Callable, Iterator, List, Optional, Sequence

from scripts.cli.errors import RunDirError

TEMPORARY = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)$")


def temporary_path(path: str) -> str:
    """``folder/.NAME.tmp-PID``: where ``write_atomic`` stages ``folder/NAME``."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.tmp-{os.getpid()}")


def write_atomic(path: str, payload: bytes) -> None:
    """Write ``payload`` to ``path`` atomically (``write_atomic_with``)."""
    write_atomic_with(path, lambda handle: handle.write(payload))


def write_atomic_with(path: str, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(handle)`` on a temporary file in the same folder, fsync it, then rename it over ``path``.

    An OSError (full disk, read-only folder, a folder named like the file) becomes one RunDirError
    line naming ``path``; the previous file, if any, is left as it was, and the temporary is removed.
    """
    folder = os.path.dirname(path) or "."
    temporary = temporary_path(path)
    try:
        os.makedirs(folder, exist_ok=True)
        with open(temporary, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as error:
        raise write_error(path, error) from None
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    sync_folder(folder)


def write_error(path: str, error: OSError) -> RunDirError:
    """The one line of a failed write of ``path``: the reason, and whether a previous file is left intact."""
    kept = "the previous file is intact" if os.path.isfile(path) else "nothing was written"
    return RunDirError(f"cannot write {path}: {error.strerror or error}; {kept}")


@contextlib.contextmanager
def exclusive_lock(path: str, wait: bool = True) -> Iterator[None]:
    """Hold an exclusive flock on the sidecar file ``folder/.NAME.lock`` of ``path``: wait for another holder,
    or (``wait=False``) refuse in one RunDirError line while one holds it. The kernel drops the lock when its
    holder dies, so a killed writer never blocks the next one."""
    folder, name = os.path.split(path)
    lock = os.path.join(folder, f".{name}.lock")
    try:
        os.makedirs(folder or ".", exist_ok=True)
        handle = open(lock, "a")
    except OSError as error:
        raise RunDirError(f"cannot lock {path} through {lock}: {error.strerror or error}") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirError(
                f"{path} is being written by another process (it holds {lock}); wait for it to end"
            ) from None
        yield


def sync_folder(folder: str) -> None:
    """fsync a folder so that a rename inside it survives a power loss."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def remove_stale_temporaries(folder: str, names: Optional[Sequence[str]] = None) -> List[str]:
    """Remove the temporaries (files or folders) in ``folder`` that other processes left, only those of
    ``folder/NAME`` for NAME in ``names`` if given; returns their paths.

    Only where no other process can be writing them (the caller holds the run's lock, or that of the
    files ``names``): a temporary of another PID there belongs to a writer that died, whether or not its
    PID was reused since.
    """
    entries = os.listdir(folder) if os.path.isdir(folder) else []
    stale = [
        os.path.join(folder, entry)
        for entry in entries
        if (match := TEMPORARY.match(entry))
        and int(match["pid"]) != os.getpid()
        and (names is None or match["name"] in names)
    ]
    for path in stale:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    return stale
