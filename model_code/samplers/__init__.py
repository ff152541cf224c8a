"""Samplers: functions over a process's denoiser, registered by name, and the time grids they step through.

The registry discovers its entries from this package (``model_code.registry``): a new file here with an
``@SAMPLERS.register("name", needs=..., deterministic=...)`` function is all it takes (see the README's "Add a
sampler"). The interface is in ``base.py``, the grids in ``grids.py``.

- ``ancestral``: the process's own reverse step (ihdm, gaussian).
- ``ddim``: DDIM with its noise scale ``eta`` (the gaussian process).
- ``heun``: Heun's method on the probability-flow ODE, EDM's Algorithm 1 (``churn`` > 0: Algorithm 2).
- ``dpmpp_2m``: DPM-Solver++(2M).
- ``cold_default`` and ``x0_step_down``: Cold Diffusion's Algorithms 1 and 2 (the cold process).
"""

from model_code.samplers.base import SAMPLERS, check_sampler, samplers_for, settings
from model_code.samplers.grids import GRIDS

__all__ = ["GRIDS", "SAMPLERS", "check_sampler", "samplers_for", "settings"]
