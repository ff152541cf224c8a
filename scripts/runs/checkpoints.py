"""Checkpoint files: what they hold, atomic saves, and strict loads that refuse damaged files.

A checkpoint is the ``torch.save`` zip of a dict of plain types and tensors (``weights_only=True``
loads it):

    format_version   CHECKPOINT_FORMAT (absent in the first format, which held no config)
    config           the run's resolved config as a plain dict (``ConfigDict.to_dict()``)
    step             optimiser steps taken
    net, ema         network and EMA weights (state dicts)
    optimizer, scaler, rng   optimiser, loss-scaler and RNG states (exact resume)
    process, prior   the process's persistent buffers (the random matrices of ``random_matrix*``)
                     and the prior's fitted state

An exported checkpoint (``python -m scripts.export_model``) holds only what sampling reads
(``SAMPLING_ENTRIES``, the config and the format version) and ``exported: True``; it loads for
sampling and evaluation (``sampling_only=True``) and is refused as a resume point.

The heat and blur operators keep their matrices as non-persistent buffers: they are a deterministic
function of config keys that a checkpoint's config pins (image size, K, blur_sigma_*, min_scale), so
rebuilding them from the stored config gives the same operator, while saving them would add
2 (K + 1) H^2 floats per file (105 MB at 256x256, K = 200). Matrices drawn from a random generator
are saved, since they should not depend on the generator's implementation staying the same.

Integrity: ``torch.load`` does not check the CRC-32 that the zip stores for every record, so bytes
changed inside a tensor load silently. ``load_checkpoint`` verifies every record's CRC first and
refuses a damaged file with one line naming it.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from typing import Any, Dict, List, Sequence

import ml_collections
import torch

from scripts.cli.errors import CheckpointError
from scripts.storage.files import write_atomic

CHECKPOINT_FORMAT = 2  # 1: no config inside (read as such when "format_version" is absent)
REQUIRED_ENTRIES = ("step", "net", "ema", "optimizer", "scaler", "rng", "process", "prior")
SAMPLING_ENTRIES = ("step", "ema", "process", "prior")  # what loading a model for sampling reads
EXPORTED = "exported"  # True in a checkpoint written by scripts.export_model


def save_checkpoint(paths: Sequence[str], state: Dict[str, Any], config: ml_collections.ConfigDict) -> None:
    """Serialise ``state`` once, with the format version and the resolved config, and write it to each
    of ``paths`` in order, atomically: a failure leaves the file it was writing as it was."""
    buffer = io.BytesIO()
    torch.save({**state, "format_version": CHECKPOINT_FORMAT, "config": config.to_dict()}, buffer)
    payload = buffer.getbuffer()
    for path in paths:
        write_atomic(path, payload)


def damaged_record(path: str) -> str:
    """'' if every zip record of ``path`` matches its stored CRC-32 and sizes, else what is wrong."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as error:
        return f"not a readable checkpoint archive ({type(error).__name__}: {error})"
    return f"record {bad} does not match its CRC-32" if bad is not None else ""


def load_checkpoint(path: str, map_location: Any = "cpu", *, sampling_only: bool = False) -> Dict[str, Any]:
    """Verify the zip CRCs of ``path``, then ``torch.load`` it with ``weights_only=True``.

    ``sampling_only``: accept an exported checkpoint (``SAMPLING_ENTRIES`` only); otherwise every entry that
    resuming training needs must be there and an exported checkpoint is refused."""
    if not os.path.isfile(path):
        what = "is not a file" if os.path.exists(path) else "does not exist"
        raise CheckpointError(f"checkpoint {path} {what}")
    damage = damaged_record(path)
    if damage:
        raise CheckpointError(f"checkpoint {path} is damaged: {damage}; it was left as it is, use another checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:  # a pickled object of a type that a weights-only load refuses
        raise CheckpointError(
            f"checkpoint {path} holds objects that a weights-only load refuses ({load_failure(error)}); nothing in "
            "it was run: not a checkpoint this project wrote"
        ) from None
    except Exception as error:  # unsupported types, truncated records, ...
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({type(error).__name__}: {load_failure(error)})"
        ) from None
    if isinstance(state, dict) and state.get(EXPORTED) and not sampling_only:
        raise exported_model_refusal(path)
    required = SAMPLING_ENTRIES if sampling_only else REQUIRED_ENTRIES
    missing = [key for key in required if key not in state] if isinstance(state, dict) else ["everything"]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} lacks {', '.join(missing)}: not a training checkpoint of this project"
        )
    version = state.get("format_version", 1)
    if version > CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"checkpoint {path} has format {version}; this code reads formats up to {CHECKPOINT_FORMAT} "
            "(update the code)"
        )
    return state


def exported_model_refusal(path: str) -> CheckpointError:
    """The one-line refusal to resume training from the exported checkpoint ``path``."""
    return CheckpointError(
        f"checkpoint {path} is an exported model (EMA weights, no optimiser or RNG state): it samples but "
        "cannot resume training; train in another --workdir"
    )


def load_failure(error: Exception) -> str:
    """The line of a ``torch.load`` error that says what failed, without torch's advice on weights_only."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    boilerplate = ("Weights only load failed", "Check the documentation", "Please file an issue")
    specific = [line for line in lines if not line.startswith(boilerplate)]
    return (specific or lines or [type(error).__name__])[0]


def state_mismatch(module: torch.nn.Module, state: Dict[str, torch.Tensor]) -> List[str]:
    """Whole-entry descriptions of how ``state`` differs from ``module.state_dict()`` (names and shapes)."""
    expected = module.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    shapes = [
        f"{key} {list(state[key].shape)} vs {list(value.shape)}"
        for key, value in expected.items()
        if key in state and state[key].shape != value.shape
    ]
    parts = [("missing", missing), ("unexpected", unexpected), ("shape in checkpoint vs model", shapes)]
    return [
        f"{label}: {', '.join(items[:3])}{f' (+{len(items) - 3} more)' if len(items) > 3 else ''}"
        for label, items in parts
        if items
    ]


def load_module_state(module: torch.nn.Module, state: Dict[str, Any], what: str, path: str) -> None:
    """Strict load_state_dict with one error line that names the checkpoint and every kind of mismatch."""
    mismatch = state_mismatch(module, state)
    if mismatch:
        raise CheckpointError(
            f"the model built from the config does not fit the {what} in {path} ({'; '.join(mismatch)}): "
            "the config differs from the one the checkpoint was trained with"
        )
    module.load_state_dict(state, strict=True)
