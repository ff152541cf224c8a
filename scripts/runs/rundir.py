"""The layout of a run directory and its saved config.

WORKDIR/config.json                    the resolved config of the run
WORKDIR/train.lock                     flock-held by the training process that uses the run
WORKDIR/checkpoints-meta/checkpoint.pth  the latest state (resume point; --checkpoint 0)
WORKDIR/checkpoints/checkpoint_N.pth   numbered snapshots, N = step // snapshot_freq
WORKDIR/samples/                       sample grids written during training
WORKDIR/tensorboard/                   TensorBoard logs
WORKDIR/sample_outputs/, WORKDIR/evaluation_results/   sample.py and evaluate.py outputs
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from typing import Any, Callable, Dict, Iterator, List

import ml_collections

from scripts.cli.errors import CheckpointError, RunDirError
from scripts.runs.checkpoints import exported_model_refusal
from scripts.runs.exported import CHECKSUMS
from scripts.storage.files import remove_stale_temporaries, write_atomic


class RunDir:
    def __init__(self, workdir: str):
        self.workdir = workdir

    def path(self, *parts: str) -> str:
        return os.path.join(self.workdir, *parts)

    @property
    def config_path(self) -> str:
        return self.path("config.json")

    @property
    def lock_path(self) -> str:
        return self.path("train.lock")

    @property
    def meta_checkpoint(self) -> str:
        return self.path("checkpoints-meta", "checkpoint.pth")

    def snapshot(self, number: int) -> str:
        return self.path("checkpoints", f"checkpoint_{number}.pth")

    def snapshot_numbers(self) -> List[int]:
        folder = self.path("checkpoints")
        names = os.listdir(folder) if os.path.isdir(folder) else []
        return sorted(int(m.group(1)) for m in map(re.compile(r"checkpoint_(\d+)\.pth$").match, names) if m)

    def checkpoint_path(self, number: int) -> str:
        """--checkpoint 0 is the latest state (checkpoints-meta), N the numbered snapshot N."""
        if number < 0:
            raise CheckpointError(f"--checkpoint must be >= 0 (0 = latest), got {number}")
        path = self.meta_checkpoint if number == 0 else self.snapshot(number)
        if os.path.exists(path) and not os.path.isfile(path):
            raise CheckpointError(f"checkpoint {path} is not a file")
        if not os.path.isfile(path):
            available = ", ".join(map(str, self.snapshot_numbers())) or "none"
            raise CheckpointError(
                f"checkpoint {path} does not exist (numbered snapshots available: {available}); "
                "train first or pick another --checkpoint"
            )
        return path

    def results_folder(self, experiment: str) -> str:
        """WORKDIR/evaluation_results/EXPERIMENT/, created if needed."""
        folder = self.path("evaluation_results", experiment)
        os.makedirs(folder, exist_ok=True)
        return folder

    def save_config(self, config: ml_collections.ConfigDict) -> None:
        write_atomic(self.config_path, json.dumps(config.to_dict(), indent=2, sort_keys=True).encode())

    def has_config(self) -> bool:
        return os.path.isfile(self.config_path)

    def load_config(self) -> ml_collections.ConfigDict:
        if not self.has_config():
            raise CheckpointError(
                f"{self.config_path} does not exist: pass --config, or point --workdir at a training run"
            )
        try:
            with open(self.config_path) as handle:
                return config_from_dict(json.load(handle))
        except (OSError, ValueError) as error:
            raise CheckpointError(f"{self.config_path} is unreadable ({type(error).__name__}: {error})") from None

    @contextlib.contextmanager
    def training_lock(self) -> Iterator[None]:
        """Hold an exclusive flock on WORKDIR/train.lock while training. The kernel drops it when the
        holder dies, so only a live process refuses a second one. An exported model (WORKDIR/SHA256SUMS) is
        refused before anything is written there."""
        if os.path.isfile(self.path(CHECKSUMS)):
            raise exported_model_refusal(self.meta_checkpoint)
        try:
            os.makedirs(self.workdir, exist_ok=True)
            handle = open(self.lock_path, "a+")
        except OSError as error:
            raise RunDirError(f"cannot use --workdir {self.workdir}: {error.strerror or error}") from None
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                raise RunDirError(
                    f"{self.workdir} is in use by another training process (pid {holder} holds {self.lock_path}); "
                    "wait for it to end or use another --workdir"
                ) from None
            handle.truncate(0)
            handle.write(str(os.getpid()))
            handle.flush()
            yield

    def prepare_for_training(self) -> List[str]:
        """Refuse a folder where a run file belongs (or the reverse), then remove the temporaries that
        killed writers left behind (call while holding ``training_lock``). Returns the removed paths."""
        folders = [self.workdir, self.path("checkpoints-meta"), self.path("checkpoints")]
        files = [self.config_path, self.meta_checkpoint, *map(self.snapshot, self.snapshot_numbers())]
        for folder in folders:
            if os.path.exists(folder) and not os.path.isdir(folder):
                raise RunDirError(f"{folder} is not a folder; move it away so that the run can write there")
        for path in files:
            if os.path.exists(path) and not os.path.isfile(path):
                raise RunDirError(f"{path} is not a file; move it away so that the run can write there")
        return [path for folder in folders for path in remove_stale_temporaries(folder)]


def blur_keys_of_an_older_run(model: Dict[str, Any]) -> Dict[str, Any]:
    """Before model.blurring_sigma_max existed, the blur operator read model.blur_sigma_max (heat's key alone since
    then): a blur run's value moves to the new key and heat's key, which it never set for heat, takes its default;
    any other run takes the new key's default (its operator does not read it)."""
    from configs.default import get_default_configs

    defaults = get_default_configs().model
    if model.get("forward") != "blur":
        return {"blurring_sigma_max": defaults.blurring_sigma_max}
    return {"blurring_sigma_max": model["blur_sigma_max"], "blur_sigma_max": defaults.blur_sigma_max}


def the_default_for_a_newer_component(leaf: str) -> Callable[[Dict[str, Any]], Dict[str, Any]]:
    """A key of an operator, process or prior added after the run was stored (the run does not read it): its
    default."""

    def stored_run_values(model: Dict[str, Any]) -> Dict[str, Any]:
        from configs.default import get_default_configs

        return {leaf: get_default_configs().model[leaf]}

    return stored_run_values


def switched_off(leaf: str) -> Callable[[Dict[str, Any]], Dict[str, Any]]:
    """A period added after the run was stored: 0, off, as the run was trained."""
    return lambda training: {leaf: 0.0}


MINUTE_PERIODS = ("checkpoint_minutes", "sampling_minutes", "fid_minutes")  # off in the runs stored before them
HFLOW_KEYS = (  # the haar_pyramid operator, the hflow process and network
    "hflow_resolutions",
    "hflow_latent_channels",
    "hflow_coupling_layers",
    "hflow_coupling_channels",
    "hflow_encoder_channels",
    "hflow_prior_stds",
    "hflow_loss_weights",
    "hflow_encoder_lr_scale",
    "hflow_noise_std",
)
COLD_KEYS = (  # the operators cold_blur, mask, pixelate, desaturate; the cold process; the gmm prior
    "kernel_size",
    "kernel_std",
    "kernel_std_step",
    "blur_routine",
    "blur_padding",
    "mask_std",
    "mask_initial",
    "mask_routine",
    "mask_centre",
    "pixelate_every",
    "desaturate_routine",
    "desaturate_factor",
    "loss_norm",
    "prior_noise",
    "gmm_components",
)

# Config keys added after runs were first stored: for a group that lacks the key, the values (of that group's keys)
# that rebuild the run exactly as it was trained.
ADDED_KEYS: Dict[str, Callable[[Dict[str, Any]], Dict[str, Any]]] = {
    **{f"training.{leaf}": switched_off(leaf) for leaf in MINUTE_PERIODS},
    "model.prediction": lambda model: {"prediction": "eps"},  # the gaussian process predicted eps
    "model.blurring_sigma_max": blur_keys_of_an_older_run,
    "model.num_classes": lambda model: {"num_classes": 0},  # every run was unconditional
    "model.scale_shift_norm": lambda model: {"scale_shift_norm": False},  # the embedding was added before the norm
    "model.label_dropout": lambda model: {"label_dropout": 0.1},  # unused by an unconditional run
    "model.checkpoint_activations": lambda model: {"checkpoint_activations": False},  # activations were kept
    **{f"model.{leaf}": the_default_for_a_newer_component(leaf) for leaf in COLD_KEYS},
    **{f"model.{leaf}": the_default_for_a_newer_component(leaf) for leaf in HFLOW_KEYS},
}


def config_from_dict(values: Dict[str, Any]) -> ml_collections.ConfigDict:
    """Rebuild a (locked) ConfigDict from its JSON form; lists become tuples as in the config files, and a group
    that lacks a key of ``ADDED_KEYS`` (a run stored before the key existed) gets the values given there."""

    def tuples(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: tuples(v) for k, v in value.items()}
        return tuple(value) if isinstance(value, list) else value

    values = tuples(values)
    for key, stored_run_values in ADDED_KEYS.items():
        group, leaf = key.split(".")
        if isinstance(values.get(group), dict) and leaf not in values[group]:
            values[group].update(stored_run_values(values[group]))
    config = ml_collections.ConfigDict(values)
    config.lock()
    return config
