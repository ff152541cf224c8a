"""Config values checked in one place, before any data is loaded or any statistic computed.

Every entry point calls ``validate_config`` on the config it will use (a config file with its
command-line overrides, or a run's saved config.json). A bad value raises ``ValueError`` with one
line, ``<key>=<value>: <what is allowed>``, which the command prints as ``error: ...``. Names that a
registry resolves (``model.forward``, ``data.dataset``, ...) are checked by the registry when the
object is built, which also happens before any data is loaded.
"""

from __future__ import annotations

import math
from typing import Any, Callable, List, Optional, Tuple

import ml_collections

Check = Callable[[Any], bool]


def bad_value(key: str, value: Any, allowed: str) -> ValueError:
    """The one-line error ``<key>=<value>: <allowed>``, the key as the user types it (a config key or a --flag).

    A string value of a config key is quoted (as in the config file); a flag's value appears as typed.
    """
    shown = repr(value) if isinstance(value, str) and not key.startswith("--") else str(value)
    return ValueError(f"{key}={shown}: {allowed}")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def int_at_least(low: int) -> Check:
    return lambda value: is_int(value) and value >= low


def real_above(low: float) -> Check:
    return lambda value: is_real(value) and value > low


def real_at_least(low: float) -> Check:
    return lambda value: is_real(value) and value >= low


def unit_interval(*, closed_above: bool) -> Check:
    return lambda value: is_real(value) and 0 <= value and (value <= 1 if closed_above else value < 1)


def one_of(*allowed: str) -> Check:
    return lambda value: value in allowed


def is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def is_str(value: Any) -> bool:
    return isinstance(value, str)


def image_size(value: Any) -> bool:
    """An int >= 1, or a pair (H, W) of ints >= 1."""
    if is_int(value):
        return value >= 1
    return isinstance(value, (tuple, list)) and len(value) == 2 and all(is_int(v) and v >= 1 for v in value)


def channel_mult(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and len(value) > 0 and all(is_int(v) and v >= 1 for v in value)


def optional_positive(value: Any) -> bool:
    return value is None or real_above(0)(value)


POSITIVE_INT = (int_at_least(1), "an integer >= 1")
PERIOD = (int_at_least(0), "an integer >= 1 (steps between two of them), or 0 for never")

# (key, check, what is allowed): every key of configs/default.py.
RULES: List[Tuple[str, Check, str]] = [
    ("seed", int_at_least(0), "an integer >= 0"),
    ("training.batch_size", *POSITIVE_INT),
    ("training.n_iters", int_at_least(0), "an integer >= 0 (training steps)"),
    ("training.snapshot_freq", *PERIOD),
    ("training.snapshot_freq_for_preemption", *PERIOD),
    ("training.sampling_freq", *PERIOD),
    ("training.log_freq", *PERIOD),
    ("training.num_samples", *POSITIVE_INT),
    ("training.fid_freq", *PERIOD),
    ("training.fid_num_gen", int_at_least(2), "an integer >= 2 (generated images per FID during training)"),
    (
        "training.fid_feature_net",
        one_of("inception", "fast_random_conv"),
        "'inception' or 'fast_random_conv' (quick, not comparable)",
    ),
    ("training.mixed_precision", one_of("bf16", "fp16", "no"), "one of 'bf16', 'fp16', 'no'"),
    ("training.num_workers", int_at_least(0), "an integer >= 0 (0: load in the main process)"),
    ("training.batch_per_device", int_at_least(0), "an integer >= 0 (0: each process's share in one round)"),
    ("data.dataset", is_str, "a dataset name (a string)"),
    ("data.image_size", image_size, "an integer >= 1, or a pair (H, W) of integers >= 1"),
    ("data.num_channels", *POSITIVE_INT),
    ("data.root", is_str, "a path, or '' for data/<dataset>"),
    ("data.random_flip", is_bool, "True or False"),
    ("data.uniform_dequantization", is_bool, "True or False"),
    ("model.process", is_str, "a process name (a string)"),
    ("model.forward", is_str, "an operator name (a string)"),
    ("model.K", *POSITIVE_INT),
    ("model.sigma", real_above(0), "a finite number > 0"),
    ("model.delta", optional_positive, "a finite number > 0, or None for 1.25 model.sigma"),
    ("model.blur_sigma_min", real_above(0), "a finite number > 0"),
    ("model.blur_sigma_max", real_at_least(0), "a finite number >= 0"),
    ("model.min_scale", unit_interval(closed_above=False), "a number in [0, 1)"),
    ("model.operator_seed", int_at_least(0), "an integer >= 0"),
    ("model.prior", is_str, "a prior name (a string)"),
    ("model.continuous_time", is_bool, "True or False"),
    ("model.logsnr_min", is_real, "a finite number"),
    ("model.logsnr_max", is_real, "a finite number"),
    ("model.clip_denoised", is_bool, "True or False"),
    ("model.logsnr_sampling", one_of("schedule", "logistic"), "one of 'schedule', 'logistic'"),
    ("model.logistic_loc", is_real, "a finite number"),
    ("model.logistic_scale", real_above(0), "a finite number > 0"),
    ("model.prediction", one_of("eps", "v"), "one of 'eps', 'v'"),
    ("model.network", is_str, "a network name (a string)"),
    ("model.mlp_hidden", *POSITIVE_INT),
    ("model.mlp_depth", *POSITIVE_INT),
    ("model.model_channels", *POSITIVE_INT),
    ("model.channel_mult", channel_mult, "a non-empty tuple of integers >= 1, e.g. (1, 2, 2)"),
    ("model.num_res_blocks", *POSITIVE_INT),
    ("model.attention_levels", lambda v: isinstance(v, (tuple, list)), "a tuple of indices into model.channel_mult"),
    ("model.dropout", unit_interval(closed_above=False), "a number in [0, 1)"),
    ("model.ema_rate", unit_interval(closed_above=True), "a number in [0, 1]"),
    ("optim.optimizer", one_of("Adam"), "'Adam'"),
    ("optim.lr", real_above(0), "a finite number > 0"),
    ("optim.beta1", unit_interval(closed_above=False), "a number in [0, 1)"),
    ("optim.beta2", unit_interval(closed_above=False), "a number in [0, 1)"),
    ("optim.eps", real_above(0), "a finite number > 0"),
    ("optim.weight_decay", real_at_least(0), "a finite number >= 0"),
    ("optim.warmup", int_at_least(0), "an integer >= 0 (steps; 0: no warm-up)"),
    ("optim.grad_clip", is_real, "a finite number (<= 0: no clipping)"),
    ("eval.batch_size", *POSITIVE_INT),
    ("eval.seed", int_at_least(0), "an integer >= 0"),
    ("eval.elbo_passes", *POSITIVE_INT),
    ("eval.num_test", int_at_least(0), "an integer >= 0 (0: the whole test split)"),
]


def lookup(config: ml_collections.ConfigDict, key: str) -> Any:
    """config[a][b] for key 'a.b'; a missing key is a one-line error."""
    node = config
    for part in key.split("."):
        if not hasattr(node, "keys") or part not in node:
            raise ValueError(f"{key} is missing from the config (every key of configs/default.py is required)")
        node = node[part]
    return node


def validate_config(config: ml_collections.ConfigDict, source: Optional[str] = None) -> None:
    """Raise ValueError ``<key>=<value>: <allowed>`` for the first bad value; return None if all are good.

    ``source`` (where the config comes from, e.g. a checkpoint's path) prefixes the message when given.
    """
    try:
        for key, check, allowed in RULES:
            value = lookup(config, key)
            if not check(value):
                raise bad_value(key, value, allowed)
        validate_relations(config)
    except ValueError as error:
        if source is None:
            raise
        raise ValueError(f"{source}: {error}") from None


def validate_relations(config: ml_collections.ConfigDict) -> None:
    """Values that are only wrong together with another key."""
    model = config.model
    levels = len(model.channel_mult)
    for level in model.attention_levels:
        if not (is_int(level) and 0 <= level < levels):
            allowed = f"indices into model.channel_mult, 0..{levels - 1}"
            raise bad_value("model.attention_levels", tuple(model.attention_levels), allowed)
    if model.logsnr_min >= model.logsnr_max:
        raise bad_value("model.logsnr_min", model.logsnr_min, f"below model.logsnr_max={model.logsnr_max}")


def require(flag: str, value: Any, check: Check, allowed: str) -> None:
    """A command-line flag's value: ``--flag=<value>: <allowed>`` unless ``check(value)``; None means unset."""
    if value is not None and not check(value):
        raise bad_value(flag, value, allowed)
