"""The files of an exported model folder (``python -m scripts.export_model``) and their checksums.

DEST/SHA256SUMS lists the SHA-256 of every other file of the export, in ``sha256sum`` format; the exporter
writes it last, in a staging folder that is renamed into place whole. Loading an exported model checks it
(``verify_export``), so a folder that was changed, or mixed from two exports, is refused in one line.
"""

from __future__ import annotations

import hashlib
import os
from typing import Dict, List

from scripts.cli.errors import CheckpointError

CHECKPOINT = os.path.join("checkpoints-meta", "checkpoint.pth")
CONFIG = "config.json"
README = "README.md"
CHECKSUMS = "SHA256SUMS"
EXPORT_FILES = (CHECKPOINT, CONFIG, README, CHECKSUMS)


def sha256(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def checksum_lines(folder: str, names: List[str]) -> str:
    """``sha256sum`` format: '<hex>  <name>' per file, names relative to ``folder`` with forward slashes."""
    return "".join(f"{sha256(os.path.join(folder, name))}  {name.replace(os.sep, '/')}\n" for name in names)


def listed_checksums(folder: str) -> Dict[str, str]:
    """{name: sha256 hex} as DEST/SHA256SUMS lists them; a missing or malformed file is a CheckpointError."""
    path = os.path.join(folder, CHECKSUMS)
    try:
        with open(path) as handle:
            pairs = [line.rstrip("\n").split("  ", 1) for line in handle if line.strip()]
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise CheckpointError(
            f"exported model {folder} has no readable {CHECKSUMS} ({reason}); export it again"
        ) from None
    if not pairs or any(len(pair) != 2 for pair in pairs):
        raise CheckpointError(f"{path} is not in sha256sum format ('<hex>  <name>' lines); export the model again")
    return {name: digest for digest, name in pairs}


def verify_export(folder: str) -> None:
    """Refuse, in one line naming them, the files of ``folder`` that do not match DEST/SHA256SUMS."""
    bad = []
    for name, digest in listed_checksums(folder).items():
        path = os.path.join(folder, *name.split("/"))
        if not os.path.isfile(path):
            bad.append(f"{name} (missing)")
        elif sha256(path) != digest:
            bad.append(f"{name} (changed)")
    if bad:
        raise CheckpointError(
            f"exported model {folder} does not match its {CHECKSUMS}: {', '.join(bad)}; "
            "export it again (python -m scripts.export_model ... --force)"
        )
