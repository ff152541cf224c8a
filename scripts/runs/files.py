"""Writing files atomically: a crash or a failed write leaves the previous file intact.

``write_atomic(path)`` writes ``.NAME.tmp-PID`` beside ``path``, fsyncs it and renames it over
``path``. A process killed mid-write (kill -9) leaves its temporary file behind;
``remove_stale_temporaries`` clears those of other processes. ``exclusive_lock(path)`` serialises
read-modify-write cycles of several processes (or machines sharing a file system where flock works).
"""

import contextlib
import fcntl
import os
import re
from typing import Iterator, List

from scripts.cli.errors import RunDirError

TEMPORARY = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)$")


def temporary_path(path: str) -> str:
    """``folder/.NAME.tmp-PID``: where ``write_atomic`` stages ``folder/NAME``."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.tmp-{os.getpid()}")


def write_atomic(path: str, payload: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``.

    An OSError (full disk, read-only folder, a folder named like the file) becomes one RunDirError
    line naming ``path``; the previous file, if any, is left as it was.
    """
    folder = os.path.dirname(path) or "."
    temporary = temporary_path(path)
    try:
        os.makedirs(folder, exist_ok=True)
        with open(temporary, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as error:
        kept = "the previous file is intact" if os.path.isfile(path) else "nothing was written"
        raise RunDirError(f"cannot write {path}: {error.strerror or error}; {kept}") from None
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    sync_folder(folder)


@contextlib.contextmanager
def exclusive_lock(path: str) -> Iterator[None]:
    """Hold an exclusive flock on the sidecar file ``folder/.NAME.lock`` of ``path``, waiting for other
    holders; the kernel drops the lock when its holder dies, so a killed writer never blocks the next."""
    folder, name = os.path.split(path)
    lock = os.path.join(folder, f".{name}.lock")
    try:
        handle = open(lock, "a")
    except OSError as error:
        raise RunDirError(f"cannot lock {path} through {lock}: {error.strerror or error}") from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def sync_folder(folder: str) -> None:
    """fsync a folder so that a rename inside it survives a power loss."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def remove_stale_temporaries(folder: str) -> List[str]:
    """Remove ``write_atomic`` temporaries in ``folder`` that another process left (returns their paths).

    Only for folders that this process alone writes (the caller holds the run's lock): a temporary
    of another PID there belongs to a writer that died, whether or not its PID was reused since.
    """
    names = os.listdir(folder) if os.path.isdir(folder) else []
    stale = [
        os.path.join(folder, name)
        for name in names
        if (match := TEMPORARY.match(name)) and int(match["pid"]) != os.getpid()
    ]
    for path in stale:
        os.remove(path)
    return stale
