"""What evaluate.py is asked to compute (its flags), and the check of their values.

Kept apart from the evaluator so that a bad flag value is refused before torch is even imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

import ml_collections

from scripts.cli import sampling_flags
from scripts.cli.values import int_at_least, is_real, one_of, real_above, require
from scripts.config.validate import validate_config

SAMPLING_MODES = ("fid", "class_accuracy", "restore")  # the modes that draw samples (and take the sampling flags)


@dataclass
class EvaluationRequest:
    config: Optional[ml_collections.ConfigDict]
    workdir: str
    checkpoint: int = 0
    mode: str = "fid"
    experiment_name: str = "default"
    param_name: str = "default"
    delta: Optional[float] = None
    sampling: Dict[str, Any] = field(default_factory=dict)  # the sampling flags given (--sampler, --steps, ...)
    batch_size: Optional[int] = None
    seed: Optional[int] = None
    dataset_name: Optional[str] = None
    num_gen: int = 50000
    num_seeds: int = 1
    dataset_name_cleanfid: Optional[str] = None
    dataset_split: str = "train"
    feature_net: str = "inception"
    stats_dir: str = "data/fid_stats"
    classifier_dir: str = "data/classifiers"
    elbo_passes: Optional[int] = None
    num_test: Optional[int] = None
    num_logsnr: int = 100
    logsnr_loc: Optional[float] = None
    logsnr_scale: Optional[float] = None
    variational_bound: bool = True
    ode_rtol: float = 1e-5
    ode_atol: float = 1e-5
    hutchinson_probes: Optional[int] = None
    from_level: Optional[int] = None


def check_request(request: EvaluationRequest) -> None:
    """One-line errors ``--flag=<value>: <allowed>`` for bad flag values (and the --config's values), before
    anything is loaded or computed."""
    if request.config is not None:
        validate_config(request.config)
    name = lambda value: isinstance(value, str) and value not in ("", ".", "..") and "/" not in value
    require("--experiment_name", request.experiment_name, name, "a folder name (not empty, no '/')")
    require("--param_name", request.param_name, name, "a name (not empty, no '/'): it keys results.json and plot files")
    require("--checkpoint", request.checkpoint, int_at_least(0), "an integer >= 0 (0: the latest state)")
    require("--delta", request.delta, real_above(0), "a finite number > 0 (the sampling noise std)")
    sampling_flags.check(request.sampling)
    for flag, value in request.sampling.items():
        if request.mode not in SAMPLING_MODES:
            allowed = " or ".join(f"--mode={mode}" for mode in SAMPLING_MODES)
            raise ValueError(f"--{flag}={value} with --mode={request.mode}; allowed: with {allowed} (sampling)")
    require("--batch_size", request.batch_size, int_at_least(1), "an integer >= 1")
    if request.from_level is not None and request.mode != "restore":
        raise ValueError(f"--from_level={request.from_level} with --mode={request.mode}; allowed: with --mode=restore")
    require("--from_level", request.from_level, int_at_least(1), "an integer in 1..K (K: the model's levels)")
    require("--seed", request.seed, int_at_least(0), "an integer >= 0")
    require("--num_gen", request.num_gen, int_at_least(1), "an integer >= 1 (images generated for the FID)")
    require("--num_seeds", request.num_seeds, int_at_least(1), "an integer >= 1 (disjoint seed sets for the FID)")
    require("--dataset_split", request.dataset_split, one_of("train", "test"), "'train' or 'test'")
    require("--elbo_passes", request.elbo_passes, int_at_least(1), "an integer >= 1 (passes over the test set)")
    require("--num_test", request.num_test, int_at_least(0), "an integer >= 0 (0: the whole test split)")
    require("--num_logsnr", request.num_logsnr, int_at_least(1), "an integer >= 1 (log-SNR draws per image)")
    require("--logsnr_loc", request.logsnr_loc, is_real, "a finite number")
    require("--logsnr_scale", request.logsnr_scale, real_above(0), "a finite number > 0")
    require("--ode_rtol", request.ode_rtol, real_above(0), "a finite number > 0 (the solver's relative tolerance)")
    require("--ode_atol", request.ode_atol, real_above(0), "a finite number > 0 (the solver's absolute tolerance)")
    require(
        "--hutchinson_probes",
        request.hutchinson_probes,
        int_at_least(1),
        "an integer >= 1 (Rademacher probes per image; leave it out for the exact divergence of small inputs)",
    )


def sampling_spec(request: EvaluationRequest):
    """The sampling specification of the request's sampling flags (``SamplingSpec``)."""
    from model_code.samplers.spec import SamplingSpec

    return SamplingSpec.from_options(**request.sampling)
