"""The sampling flags that sample.py and evaluate.py share: --sampler, --grid, --steps, --eta, --churn, --guidance,
--mixed_precision.

``define()`` declares them, ``options(FLAGS)`` reads them into the keyword options of a sampling
specification (``model_code.samplers.spec.SamplingSpec.from_options``), and ``check(options)`` refuses a bad
value in one line naming the flag, before anything is loaded.
"""

from __future__ import annotations

from typing import Any, Dict

SAMPLING_FLAGS = ("sampler", "grid", "steps", "eta", "churn", "guidance", "mixed_precision")


def define() -> None:
    from absl import flags

    flags.DEFINE_string(
        "sampler",
        None,
        "ancestral (ihdm, gaussian, hflow) | ddim | heun | dpmpp_2m (gaussian) | cold_default | x0_step_down (cold) "
        "| flow_inverse (hflow); default: the process's own.",
    )
    flags.DEFINE_string("grid", None, "Time grid: uniform (default) | edm (rho = 7) | logsnr (continuous time only).")
    flags.DEFINE_integer("steps", None, "Sampling steps (levels of the grid); default: all K levels.")
    flags.DEFINE_float("eta", None, "ddim: noise scale, 0 deterministic .. 1 ancestral; without --sampler: ddim.")
    flags.DEFINE_float("churn", None, "heun: EDM's S_churn >= 0 (0: deterministic, the default).")
    flags.DEFINE_float(
        "guidance", None, "Class-conditional models: classifier-free guidance weight w >= 0 (0: the conditional model)."
    )
    flags.DEFINE_string(
        "mixed_precision",
        None,
        "The network's precision while sampling: no (float32, the default) | auto (bf16 where the device computes it "
        "natively) | bf16 | fp16 (CUDA).",
    )


def options(values) -> Dict[str, Any]:
    """{flag: value} of the sampling flags that were given (parsed absl ``FLAGS`` or any object with them)."""
    return {name: getattr(values, name) for name in SAMPLING_FLAGS if getattr(values, name) is not None}


def check(given: Dict[str, Any]) -> None:
    """One-line errors ``--flag=<value>: <allowed>`` for the sampling flags' values; then the combination's
    (a setting the sampler does not take) from the spec itself."""
    from model_code.precision import MODES
    from model_code.samplers import GRIDS, SAMPLERS
    from model_code.samplers.spec import SamplingSpec
    from scripts.cli.values import int_at_least, is_real, real_at_least, require

    require("--sampler", given.get("sampler"), lambda v: v in SAMPLERS, "one of " + ", ".join(SAMPLERS.names()))
    require("--grid", given.get("grid"), lambda v: v in GRIDS, "one of " + ", ".join(GRIDS.names()))
    require("--steps", given.get("steps"), int_at_least(1), "an integer in 1..K (K: the model's levels)")
    require("--eta", given.get("eta"), lambda value: is_real(value) and 0 <= value <= 1, "a number in [0, 1]")
    require("--churn", given.get("churn"), real_at_least(0), "a finite number >= 0 (EDM's S_churn)")
    require("--guidance", given.get("guidance"), real_at_least(0), "a finite number >= 0 (0: the conditional model)")
    require("--mixed_precision", given.get("mixed_precision"), lambda v: v in MODES, "one of " + ", ".join(MODES))
    SamplingSpec.from_options(**given).check()
