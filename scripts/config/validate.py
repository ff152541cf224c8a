"""Every config key's rule, in one table (``KEYS``): the values it allows and what it changes.

Every entry point calls ``validate_config`` on the config it will use (a config file with its
command-line overrides, or a run's saved config.json). A bad value raises ``ValueError`` with one
line, ``<key>=<value>: <what is allowed>``, which the command prints as ``error: ...``. Names that a
registry resolves (``model.forward``, ``data.dataset``, ...) are checked by the registry when the
object is built, which also happens before any data is loaded.

A key's ``Role`` says where its value may differ from a trained run's: a --config given with a run must
agree with it on every model-changing key (scripts/runs/runconfig.py), and sample.py names its output
folder after the sample-changing keys of a --config that differ from the run's (scripts/sampling/request.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Dict, List, Optional

import ml_collections

from scripts.cli.values import (
    Check,
    OneOf,
    bad_value,
    int_at_least,
    is_bool,
    is_int,
    is_real,
    is_str,
    one_of,
    real_above,
    real_at_least,
    unit_interval,
)


def image_size(value: Any) -> bool:
    """An int >= 1, or a pair (H, W) of ints >= 1."""
    if is_int(value):
        return value >= 1
    return isinstance(value, (tuple, list)) and len(value) == 2 and all(is_int(v) and v >= 1 for v in value)


def channel_mult(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and len(value) > 0 and all(is_int(v) and v >= 1 for v in value)


def int_tuple(low: int) -> Check:
    """A non-empty tuple (or list) of integers >= low."""
    return lambda value: (
        isinstance(value, (tuple, list)) and len(value) > 0 and all(int_at_least(low)(v) for v in value)
    )


def real_tuple(*, above: bool) -> Check:
    """A non-empty tuple (or list) of finite numbers > 0 (``above``) or >= 0."""
    each = real_above(0) if above else real_at_least(0)
    return lambda value: isinstance(value, (tuple, list)) and len(value) > 0 and all(each(v) for v in value)


def optional_positive(value: Any) -> bool:
    return value is None or real_above(0)(value)


def odd_positive_int(value: Any) -> bool:
    return is_int(value) and value >= 1 and value % 2 == 1


def unit_interval_open_below(value: Any) -> bool:
    return is_real(value) and 0 < value <= 1


class Role(Enum):
    """What a key's value changes, which decides where it may differ from a trained run's config."""

    MODEL = "model-changing"  # the trained model, the process or the data shape: a --config must agree with the run
    SAMPLES = "sample-changing"  # may differ from the run's, and changes the samples drawn from its checkpoint
    FREE = "free"  # may differ from the run's: changes neither the trained model nor the samples drawn from it


MODEL, SAMPLES, FREE = Role.MODEL, Role.SAMPLES, Role.FREE


@dataclass(frozen=True)
class Rule:
    """One config key: ``check(value)`` is True for an allowed value, ``allowed`` says which in words, ``role``
    what the value changes."""

    check: Check
    allowed: str
    role: Role


def positive_int(role: Role) -> Rule:
    return Rule(int_at_least(1), "an integer >= 1", role)


def period(role: Role) -> Rule:
    return Rule(int_at_least(0), "an integer >= 1 (steps between two of them), or 0 for never", role)


def minutes(role: Role) -> Rule:
    return Rule(
        real_at_least(0), "a finite number >= 0 (minutes of wall time between two of them), or 0 for never", role
    )


def flag(role: Role) -> Rule:
    return Rule(is_bool, "True or False", role)


def choice(role: Role, *choices: str) -> Rule:
    return Rule(OneOf(choices), "one of " + ", ".join(map(repr, choices)), role)


# Every key of configs/default.py, in its order (tests/test_config_keys.py checks both ways). Free: how the weights
# are reached (training.*, optim.*; seed: a resumed run restores its RNG state; model.dropout acts in training
# only; the EMA keys shape the averaging during training), where the same data lives and how training augments it,
# evaluation sizes (eval.batch_size changes no sample: each image has its own seed). Sample-changing: the sampling
# noise and clipping of the processes, and the base seed of sampling.
KEYS: Dict[str, Rule] = {
    "seed": Rule(int_at_least(0), "an integer >= 0", FREE),
    "training.batch_size": positive_int(FREE),
    "training.batch_per_device": Rule(int_at_least(0), "an integer >= 0 (0: each process's share in one round)", FREE),
    "training.n_iters": Rule(int_at_least(0), "an integer >= 0 (training steps)", FREE),
    "training.snapshot_freq": period(FREE),
    "training.snapshot_freq_for_preemption": period(FREE),
    "training.sampling_freq": period(FREE),
    "training.log_freq": period(FREE),
    "training.checkpoint_minutes": minutes(FREE),
    "training.sampling_minutes": minutes(FREE),
    "training.fid_minutes": minutes(FREE),
    "training.num_samples": positive_int(FREE),
    "training.fid_freq": period(FREE),
    "training.fid_num_gen": Rule(int_at_least(2), "an integer >= 2 (generated images per FID during training)", FREE),
    "training.fid_feature_net": Rule(
        one_of("inception", "fast_random_conv"), "'inception' or 'fast_random_conv' (quick, not comparable)", FREE
    ),
    "training.fid_stats_dir": Rule(is_str, "a folder path (the cache of reference statistics)", FREE),
    # model_code.precision.MODES, written out: checking a config imports no torch (tests/test_config_keys.py: equal)
    "training.mixed_precision": choice(FREE, "auto", "bf16", "fp16", "no"),
    "training.num_workers": Rule(int_at_least(0), "an integer >= 0 (0: load in the main process)", FREE),
    "training.channels_last": flag(FREE),
    "training.compile": flag(FREE),
    "training.tf32": flag(FREE),
    "data.dataset": Rule(is_str, "a dataset name (a string)", MODEL),
    "data.image_size": Rule(image_size, "an integer >= 1, or a pair (H, W) of integers >= 1", MODEL),
    "data.num_channels": positive_int(MODEL),
    "data.root": Rule(is_str, "a path, or '' for data/<dataset>", FREE),
    "data.random_flip": flag(FREE),
    "data.uniform_dequantization": flag(FREE),  # the ELBO dequantises regardless
    "model.process": Rule(is_str, "a process name (a string)", MODEL),
    "model.forward": Rule(is_str, "an operator name (a string)", MODEL),
    "model.K": positive_int(MODEL),
    "model.sigma": Rule(real_above(0), "a finite number > 0", MODEL),
    "model.delta": Rule(optional_positive, "a finite number > 0, or None for 1.25 model.sigma", SAMPLES),
    "model.blur_sigma_min": Rule(real_above(0), "a finite number > 0", MODEL),
    "model.blur_sigma_max": Rule(real_above(0), "a finite number > 0 (heat's sigma_B at level K)", MODEL),
    "model.blurring_sigma_max": Rule(real_at_least(0), "a finite number >= 0 (blur's sigma_B at t = 1)", MODEL),
    "model.min_scale": Rule(unit_interval(closed_above=False), "a number in [0, 1)", MODEL),
    "model.operator_seed": Rule(int_at_least(0), "an integer >= 0", MODEL),
    "model.kernel_size": Rule(odd_positive_int, "an odd integer >= 1 (cold_blur's kernel side)", MODEL),
    "model.kernel_std": Rule(real_above(0), "a finite number > 0 (cold_blur's kernel std in pixels)", MODEL),
    "model.kernel_std_step": Rule(real_at_least(0), "a finite number >= 0 (cold_blur's linear step)", MODEL),
    "model.blur_routine": choice(MODEL, "constant", "incremental", "exponential", "linear"),
    "model.blur_padding": choice(MODEL, "reflect", "circular"),
    "model.mask_std": Rule(real_above(0), "a finite number > 0 (the Gaussian mask's std in pixels)", MODEL),
    "model.mask_initial": Rule(real_at_least(0), "a finite number >= 0 (mask's incremental offset)", MODEL),
    "model.mask_routine": choice(MODEL, "incremental", "constant"),
    "model.mask_centre": choice(MODEL, "centre", "seeded"),
    "model.pixelate_every": Rule(int_at_least(1), "an integer >= 1 (pixelate's levels per halving)", MODEL),
    "model.desaturate_routine": choice(MODEL, "constant", "linear"),
    "model.desaturate_factor": Rule(
        unit_interval_open_below, "a number in (0, 1] (desaturate's factor per level)", MODEL
    ),
    "model.loss_norm": choice(MODEL, "l1", "l2"),
    "model.prior_noise": Rule(real_above(0), "a finite number > 0 (the cold prior's std around A_K x0)", SAMPLES),
    "model.prior": Rule(is_str, "a prior name (a string)", MODEL),
    "model.gmm_components": positive_int(MODEL),
    "model.continuous_time": flag(MODEL),
    "model.logsnr_min": Rule(is_real, "a finite number", MODEL),
    "model.logsnr_max": Rule(is_real, "a finite number", MODEL),
    "model.clip_denoised": flag(SAMPLES),
    "model.logsnr_sampling": choice(MODEL, "schedule", "logistic"),
    "model.logistic_loc": Rule(is_real, "a finite number", MODEL),
    "model.logistic_scale": Rule(real_above(0), "a finite number > 0", MODEL),
    "model.prediction": choice(MODEL, "eps", "v"),
    "model.hflow_resolutions": Rule(int_tuple(1), "a non-empty tuple of integers >= 1, e.g. (28, 14, 7)", MODEL),
    "model.hflow_latent_channels": Rule(int_tuple(0), "a non-empty tuple of integers >= 0 (0: the level's own)", MODEL),
    "model.hflow_coupling_layers": Rule(int_tuple(0), "a non-empty tuple of integers >= 0", MODEL),
    "model.hflow_coupling_channels": Rule(int_tuple(1), "a non-empty tuple of integers >= 1", MODEL),
    "model.hflow_encoder_channels": Rule(int_tuple(1), "a non-empty tuple of integers >= 1", MODEL),
    "model.hflow_prior_stds": Rule(real_tuple(above=True), "a non-empty tuple of finite numbers > 0", MODEL),
    "model.hflow_loss_weights": Rule(real_tuple(above=False), "a non-empty tuple of finite numbers >= 0", FREE),
    "model.hflow_encoder_lr_scale": Rule(real_above(0), "a finite number > 0 (times optim.lr)", FREE),
    "model.hflow_noise_std": Rule(real_at_least(0), "a finite number >= 0 (training noise std)", FREE),
    "model.network": Rule(is_str, "a network name (a string)", MODEL),
    "model.mlp_hidden": positive_int(MODEL),
    "model.mlp_depth": positive_int(MODEL),
    "model.model_channels": positive_int(MODEL),
    "model.channel_mult": Rule(channel_mult, "a non-empty tuple of integers >= 1, e.g. (1, 2, 2)", MODEL),
    "model.num_res_blocks": positive_int(MODEL),
    "model.attention_levels": Rule(
        lambda v: isinstance(v, (tuple, list)), "a tuple of indices into model.channel_mult", MODEL
    ),
    "model.scale_shift_norm": flag(MODEL),
    "model.checkpoint_activations": flag(FREE),
    "model.num_classes": Rule(int_at_least(0), "an integer >= 0 (0: unconditional; C: labels 0..C-1)", MODEL),
    "model.label_dropout": Rule(
        unit_interval(closed_above=True), "a number in [0, 1] (0: a purely conditional model)", FREE
    ),
    "model.dropout": Rule(unit_interval(closed_above=False), "a number in [0, 1)", FREE),
    "model.ema_rate": Rule(unit_interval(closed_above=False), "a number in [0, 1)", FREE),
    "model.ema_rampup_ratio": Rule(real_above(0), "a finite number > 0 (a share of the images seen)", FREE),
    "optim.optimizer": Rule(one_of("Adam"), "'Adam'", FREE),
    "optim.lr": Rule(real_above(0), "a finite number > 0", FREE),
    "optim.beta1": Rule(unit_interval(closed_above=False), "a number in [0, 1)", FREE),
    "optim.beta2": Rule(unit_interval(closed_above=False), "a number in [0, 1)", FREE),
    "optim.eps": Rule(real_above(0), "a finite number > 0", FREE),
    "optim.weight_decay": Rule(real_at_least(0), "a finite number >= 0", FREE),
    "optim.warmup": Rule(int_at_least(0), "an integer >= 0 (steps; 0: no warm-up)", FREE),
    "optim.grad_clip": Rule(is_real, "a finite number (<= 0: no clipping)", FREE),
    "optim.implementation": choice(FREE, "auto", "fused", "foreach", "for_loop"),
    "eval.batch_size": positive_int(FREE),
    "eval.seed": Rule(int_at_least(0), "an integer >= 0", SAMPLES),
    "eval.elbo_passes": positive_int(FREE),
    "eval.num_test": Rule(int_at_least(0), "an integer >= 0 (0: the whole test split)", FREE),
}


def is_free(key: str) -> bool:
    """Whether dotted ``key`` may differ from a trained run's config: a key of KEYS that is not model-changing
    (a key outside the table is taken to change the model)."""
    return key in KEYS and KEYS[key].role is not MODEL


def keys_of(role: Role) -> List[str]:
    """The keys of KEYS with ``role``, in the table's order."""
    return [key for key, rule in KEYS.items() if rule.role is role]


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
        for key, rule in KEYS.items():
            value = lookup(config, key)
            if not rule.check(value):
                raise bad_value(key, value, rule.allowed)
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
    if model.process == "hflow" or model.network == "hflow":
        validate_hflow(config)


HFLOW_PARTS = {"model.process": "hflow", "model.forward": "haar_pyramid", "model.network": "hflow"}
HFLOW_PER_LEVEL = (
    "hflow_latent_channels",
    "hflow_coupling_layers",
    "hflow_coupling_channels",
    "hflow_encoder_channels",
    "hflow_prior_stds",
    "hflow_loss_weights",
)


def validate_hflow(config: ml_collections.ConfigDict) -> None:
    """hflow's parts go together; its resolutions halve the image; per-level tuples have one value per resolution
    (or one for all); each level's latent channels are its own times 4^j with 2^j dividing its sides."""
    from model_code import haar
    from model_code.flows import squeezes

    model = config.model
    for key, value in {**HFLOW_PARTS, "model.prior": "standard_normal", "model.num_classes": 0}.items():
        if lookup(config, key) != value:
            together = ", ".join(f"{k}={v!r}" for k, v in HFLOW_PARTS.items())
            raise bad_value(key, lookup(config, key), f"hflow runs as {together}; allowed here: {value!r}")
    size = config.data.image_size
    height, width = (size, size) if is_int(size) else size
    resolutions = tuple(model.hflow_resolutions)
    try:
        sizes = haar.pyramid_sizes(height, width, resolutions)
    except ValueError as error:
        raise bad_value("model.hflow_resolutions", resolutions, str(error).split(": ", 1)[1]) from None
    if model.K != len(resolutions):
        raise bad_value(
            "model.K", model.K, f"one level per resolution of model.hflow_resolutions; allowed: {len(sizes)}"
        )
    for key in HFLOW_PER_LEVEL:
        if len(model[key]) not in (1, len(resolutions)):
            raise bad_value(f"model.{key}", tuple(model[key]), f"one value per resolution ({len(resolutions)}) or one")
    channels, latent = config.data.num_channels, tuple(model.hflow_latent_channels)
    halved = haar.halvings(resolutions)
    for j, (h, w) in enumerate(sizes):
        own = channels * (4 ** halved[j] - 1) if j < len(sizes) - 1 else channels
        wanted = latent[j if len(latent) > 1 else 0] or own
        coarse = sizes[j + 1] if j < len(sizes) - 1 else (h, w)
        try:
            squeeze = 2 ** squeezes(own, wanted)
        except ValueError as error:
            raise bad_value(
                "model.hflow_latent_channels", latent, f"level {j}: {str(error).split(': ', 1)[1]}"
            ) from None
        if coarse[0] % squeeze or coarse[1] % squeeze:
            allowed = f"level {j} ({coarse[0]}x{coarse[1]}) squeezed by {squeeze} is not whole; allowed: fewer channels"
            raise bad_value("model.hflow_latent_channels", latent, allowed)
