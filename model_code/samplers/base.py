"""The sampler interface: samplers are functions over a process's denoiser, registered by name.

A sampler runs the reverse process from the initial state u at ``levels[0]`` (the highest level, K for the
full process) through ``levels[1:]``; a step to level 0 returns the data estimate (x0_hat at the level before):

    sampler(denoiser, levels, initial, noise, callback, **settings) -> u at levels[-1] [B, C, H, W]

- ``denoiser``: the process's view of its network (``Process.denoiser(net)``), the one place where the
  network's output (eps, v, IHDM's u_{k-1}) becomes what samplers use. Every denoiser has
  ``ancestral_step(u, k, k_next, noise)`` (``provides`` holds "ancestral"); the gaussian process's also gives
  the forward marginal per basis coefficient and x0_hat (``provides`` holds "marginal"): ``to_basis``,
  ``from_basis``, ``marginal(k, like) -> (alpha [1, 1, H, W], sigma [1, 1, 1, 1])``, ``x0(u, k) -> x0_hat`` in
  the basis from u in pixels (one network evaluation; ``denoiser.nfe`` counts them), ``ddim_step`` and the
  log-SNR schedule (``logsnr(k)``, ``level_at_logsnr(a)``) for grids and churn.
- ``levels``: the path, in the process's levels (0..K; reals for continuous time): a grid of ``grids.py``
  followed by 0 to sample; a deterministic sampler given rising levels (0, then the grid reversed) runs
  backwards and encodes.
- ``noise()``: a fresh standard normal [B, C, H, W] per call (the caller seeds it per image).
- ``callback(i, u)``: called with the state after step i = 1, ..., len(levels) - 1 (the last is the output).

A sampler is registered with ``@SAMPLERS.register(name, needs=..., deterministic=...)``: ``needs`` names what
the denoiser must provide, ``deterministic(settings) -> bool`` whether with these settings it draws no noise
(so that run backwards it encodes).
Its keyword settings (``eta``, ``churn``, ...) are its own; ``settings(name)`` lists them.
"""

from __future__ import annotations

import inspect
from typing import Callable, List, Sequence

import torch

from model_code.registry import Registry

SAMPLERS = Registry("sampler", package="model_code.samplers")

NoiseSource = Callable[[], torch.Tensor]
Callback = Callable[[int, torch.Tensor], None]
SAMPLER_ARGUMENTS = ("denoiser", "levels", "initial", "noise", "callback")
NEEDS = {  # what each capability a denoiser ``provides`` is, for the refusals
    "ancestral": "a stochastic reverse step of the process's own",
    "marginal": "the forward marginal per coefficient and an estimate of x0",
    "restoration": "an estimate of x0 and a deterministic degradation to apply to it",
    "flow": "an exactly invertible reverse step whose noise is a flow's latent",
}


def settings(name: str) -> List[str]:
    """The keyword settings sampler ``name`` takes beyond the common arguments."""
    parameters = inspect.signature(SAMPLERS.get(name)).parameters
    return [key for key in parameters if key not in SAMPLER_ARGUMENTS]


def samplers_for(denoiser) -> List[str]:
    """The samplers whose needs ``denoiser`` provides."""
    return [name for name in SAMPLERS.names() if SAMPLERS.metadata(name)["needs"] in denoiser.provides]


def check_sampler(name: str, denoiser, process_name: str) -> None:
    """A known sampler that ``denoiser`` can run, else one line naming what the process supports."""
    SAMPLERS.get(name)
    needs = SAMPLERS.metadata(name)["needs"]
    if needs not in denoiser.provides:
        raise ValueError(
            f"sampler={name!r}: the {process_name!r} process cannot run it (it needs {NEEDS[needs]}); "
            f"allowed for this process: {', '.join(samplers_for(denoiser))}"
        )


def transitions(levels: Sequence[float]):
    """(i, k, k_next) for each step i = 1..len(levels) - 1, from levels[i - 1] to levels[i]."""
    return [(i, k, k_next) for i, (k, k_next) in enumerate(zip(levels[:-1], levels[1:]), start=1)]
