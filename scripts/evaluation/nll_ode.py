"""evaluate.py --mode=nll_ode: the probability-flow ODE log-likelihood of a gaussian-process model.

Each test image (dequantised uniformly, as for the ELBO) is integrated from level 0 to K along the probability-flow
ODE with scipy's adaptive RK45 (model_code/ode_likelihood.py); -log p(x) in nats per image, bits/dim and 8-bit
discrete bits/dim, with the standard error over images and the network evaluations (NFE) per solve. The
divergence is exact for inputs of at most ``EXACT_DIVERGENCE_MAX_DIMS`` dimensions (2D points, tiny images)
unless ``--hutchinson_probes`` is given; larger inputs use Hutchinson's estimator with that many Rademacher
probes (default 1). Whole batches are shared out over the processes and each solves its own: no collective
runs inside a solve (the solvers take different step counts), the results are gathered at the end, and
batch b draws its dequantisation and probes from a generator seeded by (seed, b), so the result is the same
for any number of processes.
"""

from __future__ import annotations

import math
import time
from typing import Any, Dict, Optional

import torch
from tqdm import tqdm

from model_code.conditioning import conditioned, num_classes_of
from model_code.ode_likelihood import probability_flow_log_likelihood, rademacher_probes
from model_code.randomness import seed_from
from scripts.runtime import distributed

EXACT_DIVERGENCE_MAX_DIMS = 256


def divergence_probes(requested: Optional[int], dims: int) -> Optional[int]:
    """Hutchinson probes per image, or None for the exact divergence (the module docstring's rule)."""
    if requested is not None:
        return requested
    return None if dims <= EXACT_DIVERGENCE_MAX_DIMS else 1


def flow_denoiser(model, labels: Optional[torch.Tensor] = None):
    """The run's denoiser (its network given ``labels`` [B], a class-conditional model's) if its process has a
    probability-flow ODE in continuous time, else one line saying why."""
    denoiser = model.process.denoiser(conditioned(model.net, labels))
    if "marginal" not in denoiser.provides:
        raise ValueError(
            f"--mode=nll_ode: the {model.process.name!r} process has no probability-flow ODE (it needs the forward "
            "marginal per coefficient); allowed: runs of the gaussian process"
        )
    if not denoiser.continuous:
        raise ValueError(
            "--mode=nll_ode: the run was trained at integer levels (model.continuous_time=False), and the ODE "
            "needs the network at every level in [0, K]; allowed: continuous-time runs"
        )
    return denoiser


def sharded_flow_nll(
    model,
    test_data,
    count: int,
    *,
    rtol: float,
    atol: float,
    probes: Optional[int],
    seed: int,
    batch_size: int,
    device,
) -> Dict[str, torch.Tensor]:
    """-log p(x) [count] (float64) of the first ``count`` test items under the flow of the run's denoiser (a
    class-conditional model's given each item's label) and the run's prior, and the NFE of each batch's solve
    [batches], on every process."""
    levels = (0.0, float(model.process.K))
    nll_parts, nfe_parts = [], []
    bar = tqdm(total=count, desc="PF-ODE NLL", dynamic_ncols=True, disable=not distributed.is_main())
    for rows in distributed.my_blocks(count, batch_size):
        generator = torch.Generator(device).manual_seed(seed_from(seed, rows.start // batch_size))
        x = test_data.prepare(test_data.raw_batch(rows).to(device), generator, augment=False)
        denoiser = flow_denoiser(model, test_data.labels_of(rows, num_classes_of(model.net)))
        probe_draws = None if probes is None else rademacher_probes(probes, tuple(x.shape), generator)
        flow = probability_flow_log_likelihood(
            denoiser.flow_velocity, model.prior.log_density, x, levels, rtol=rtol, atol=atol, probes=probe_draws
        )
        nll_parts.append((rows.start, -flow.log_likelihood.cpu()))
        nfe_parts.append((rows.start // batch_size, torch.tensor([flow.nfe])))
        bar.update(len(rows) * distributed.world_size())
    bar.close()
    return {
        "nll": distributed.gather_blocks(nll_parts, torch.zeros(0, dtype=torch.float64)),
        "nfe": distributed.gather_blocks(nfe_parts, torch.zeros(0, dtype=torch.long)),
    }


def run_nll_ode(request, config, model, device) -> Dict[str, Any]:
    from scripts.config import build
    from scripts.evaluation.elbo import bits_per_dim

    flow_denoiser(model)  # a process without a flow is refused before any work
    test_data = build.build_data(config, "test", model.process, uniform_dequantization=True)
    num_test = config.eval.num_test if request.num_test is None else request.num_test
    count = len(test_data) if num_test <= 0 else min(num_test, len(test_data))
    dims = int(test_data.raw_batch(range(1))[0].numel())
    probes = divergence_probes(request.hutchinson_probes, dims)
    started = time.perf_counter()
    solved = sharded_flow_nll(
        model,
        test_data,
        count,
        rtol=request.ode_rtol,
        atol=request.ode_atol,
        probes=probes,
        seed=config.eval.seed if request.seed is None else request.seed,
        batch_size=config.eval.batch_size if request.batch_size is None else request.batch_size,
        device=device,
    )
    nll = solved["nll"]
    mean, stderr = float(nll.mean()), float(nll.std() / math.sqrt(count)) if count > 1 else float("nan")
    result: Dict[str, Any] = {
        "nll_nats": mean,
        "nll_nats_stderr": stderr,
        **bits_per_dim(mean, dims, model.process.data_range, discrete=test_data.kind == "image"),
        "bits_per_dim_stderr": stderr / (dims * math.log(2)),
        "divergence": "exact" if probes is None else "hutchinson",
        "hutchinson_probes": probes,
        "ode_rtol": request.ode_rtol,
        "ode_atol": request.ode_atol,
        "nfe_mean": float(solved["nfe"].double().mean()),
        "nfe_max": int(solved["nfe"].max()),
        "test_images": count,
        "dimensions": dims,
        "seconds": time.perf_counter() - started,
    }
    result["headline"] = headline(result)
    return result


def headline(result: Dict[str, Any]) -> str:
    divergence = (
        "exact divergence"
        if result["divergence"] == "exact"
        else f"Hutchinson, {result['hutchinson_probes']} probe{'s' if result['hutchinson_probes'] > 1 else ''}"
    )
    text = (
        f"NLL (probability-flow ODE, {divergence}, {result['nfe_mean']:.0f} NFE per solve): "
        f"{result['nll_nats']:.4f} +- {result['nll_nats_stderr']:.4f} nats, {result['bits_per_dim']:.4f} bits/dim"
    )
    if "discrete_bits_per_dim" in result:
        text += f" (8-bit discrete <= {result['discrete_bits_per_dim']:.4f})"
    return text
