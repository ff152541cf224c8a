"""Time grids: the levels a sampler steps through, highest first, chosen by name.

``GRIDS.get(name)(denoiser, steps) -> [levels]``, S = ``steps`` levels from K down:

- ``uniform``: evenly spaced levels, l_i = ceil(K (S - i) / S) (K first, ceil(K / S) last); S = K is every
  level. Integers, so every process can use it (``Process.sampling_levels``).
- ``edm``: Karras et al. (2022), Eq. 5: noise levels s_i = (s_max^(1/rho) + i / (S - 1) (s_min^(1/rho) -
  s_max^(1/rho)))^rho, rho = 7, in s = sigma / alpha = exp(-logsnr / 2) of the process's log-SNR schedule,
  from level K to level 1 (the lowest level the uniform grid reaches), mapped back to levels.
- ``logsnr``: log SNR evenly spaced from its value at level K to its value at level 1.

The last two need real levels: a continuous-time gaussian process (``denoiser.continuous``), whose denoiser
gives ``logsnr(level)`` and its inverse ``level_at_logsnr(logsnr)``.
"""

from __future__ import annotations

import math
from typing import List

from model_code.registry import Registry

GRIDS = Registry("grid")
EDM_RHO = 7.0


@GRIDS.register("uniform")
def uniform(denoiser, steps: int) -> List[int]:
    return denoiser.process.sampling_levels(steps)


def _require_continuous(denoiser, grid: str) -> None:
    if not getattr(denoiser, "continuous", False):
        raise ValueError(
            f"grid={grid!r} places levels between the integers, which this model was not trained at; "
            "allowed: grid='uniform' (or train with model.continuous_time=True)"
        )


def _from_logsnrs(denoiser, logsnrs: List[float]) -> List[float]:
    """Levels of the log SNRs, the ends pinned to K and 1 exactly."""
    levels = [denoiser.level_at_logsnr(a) for a in logsnrs]
    levels[0] = float(denoiser.K)
    if len(levels) > 1:
        levels[-1] = 1.0
    return levels


@GRIDS.register("edm")
def edm(denoiser, steps: int) -> List[float]:
    _require_continuous(denoiser, "edm")
    high, low = (math.exp(-denoiser.logsnr(level) / 2) ** (1 / EDM_RHO) for level in (denoiser.K, 1))
    fractions = [i / (steps - 1) for i in range(steps)] if steps > 1 else [0.0]
    return _from_logsnrs(denoiser, [-2 * EDM_RHO * math.log(high + f * (low - high)) for f in fractions])


@GRIDS.register("logsnr")
def logsnr(denoiser, steps: int) -> List[float]:
    _require_continuous(denoiser, "logsnr")
    high, low = denoiser.logsnr(denoiser.K), denoiser.logsnr(1)
    fractions = [i / (steps - 1) for i in range(steps)] if steps > 1 else [0.0]
    return _from_logsnrs(denoiser, [high + f * (low - high) for f in fractions])
