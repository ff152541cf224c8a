"""evaluate.py --mode=nll_itd: the information-theoretic NLL estimate of a plain-Gaussian-channel model.

-log p(x) ~= (d/2) log(2 pi e) + 0.5 E_a[w(a) (|eps - eps_hat(z_a, a)|^2 - d sigmoid(a))], with a from
the truncated logistic(model.logistic_loc, model.logistic_scale) (Kong et al. 2023; model_code/itd.py).
Alongside: the MSE-against-log-SNR curve with the Gaussian baseline d sigmoid(a) (PNG and TensorBoard),
the DDPM variational bound of the same model on the same images where the process defines it (the
estimate is recorded before it starts; ``--novariational_bound`` skips it), and
for 2D data a picture of the estimated density next to the true one where it is known.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Optional

import torch

from model_code.conditioning import conditioned, num_classes_of
from model_code.itd import gaussian_baseline_mse, log_density_grid, nll_estimate, summarise_nll
from model_code.randomness import seed_from
from scripts.runs.rundir import RunDir
from scripts.runtime import distributed
from scripts.storage.files import write_atomic_with


def sharded_nll_estimate(
    eps_pred_given: Callable[[Optional[torch.Tensor]], Callable],
    test_data,
    count: int,
    num_logsnr: int,
    loc: float,
    scale: float,
    *,
    seed: int,
    batch_size: int,
    device,
    num_classes: int = 0,
) -> Dict[str, Any]:
    """``nll_estimate`` of the first ``count`` test items (dequantised) under ``eps_pred_given(labels)``, the
    eps predictor given the items' labels [B] (those of a model of ``num_classes`` classes; None: unconditional),
    in batches of ``batch_size`` shared out over the processes; batch b draws from a generator seeded by
    (seed, b), so the estimate is the same for any number of processes. Every process gets the whole result."""
    per_example, per_draw = {"nll": []}, {"terms": [], "logsnr": [], "mse": [], "weight": []}
    d = int(test_data.raw_batch(range(1))[0].numel())
    for rows in distributed.my_blocks(count, batch_size):
        generator = torch.Generator(device).manual_seed(seed_from(seed, rows.start // batch_size))
        x = test_data.prepare(test_data.raw_batch(rows).to(device), generator, augment=False)
        eps_pred = eps_pred_given(test_data.labels_of(rows, num_classes))
        estimate = nll_estimate(eps_pred, x, num_logsnr, loc, scale, generator)
        for name, parts in {**per_example, **per_draw}.items():
            parts.append((rows.start, estimate[name].detach().cpu()))
    empty = torch.zeros(0, dtype=torch.float32)
    gathered = {name: distributed.gather_blocks(parts, empty) for name, parts in {**per_example, **per_draw}.items()}
    return summarise_nll(
        gathered["nll"], gathered["terms"], gathered["logsnr"], gathered["mse"], gathered["weight"], d, num_logsnr
    )


def binned_curve(logsnr: torch.Tensor, mse: torch.Tensor, bins: int = 40):
    """Mean MSE per log-SNR bin: (bin centres [n], means [n]) over the non-empty bins."""
    edges = torch.linspace(logsnr.min().item(), logsnr.max().item() + 1e-6, bins + 1, dtype=torch.float64)
    index = (torch.bucketize(logsnr.double(), edges, right=True) - 1).clamp(0, bins - 1)
    sums = torch.zeros(bins, dtype=torch.float64).index_add_(0, index, mse.double())
    counts = torch.zeros(bins, dtype=torch.float64).index_add_(0, index, torch.ones_like(mse, dtype=torch.float64))
    keep = counts > 0
    return ((edges[:-1] + edges[1:]) / 2)[keep], (sums / counts.clamp_min(1))[keep]


def plot_mse_curve(centres: torch.Tensor, means: torch.Tensor, d: int, path: str, title: str):
    import logging

    import matplotlib

    matplotlib.use("Agg")
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.8))
    axis.plot(centres.numpy(), means.numpy() / d, "o-", ms=3, label="model: E|eps - eps_hat|^2 / d")
    grid = torch.linspace(centres.min().item() - 2, centres.max().item() + 2, 200)
    axis.plot(grid.numpy(), (gaussian_baseline_mse(grid, d) / d).numpy(), "--", label="N(0, I) baseline: sigmoid(a)")
    axis.set_xlabel("log SNR a")
    axis.set_ylabel("eps-MSE per dimension")
    axis.set_title(title)
    axis.legend()
    figure.tight_layout()
    write_atomic_with(path, lambda handle: figure.savefig(handle, format="png", dpi=120))
    return figure


def plot_density(
    eps_pred,
    distribution,
    loc: float,
    scale: float,
    path: str,
    num_samples: int,
    generator,
    device,
    extent: float = 3.0,
    size: int = 60,
) -> str:
    """Estimated log density on a size x size grid over [-extent, extent]^2, beside the true one if known."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axis_values = torch.linspace(-extent, extent, size)
    xx, yy = torch.meshgrid(axis_values, axis_values, indexing="xy")
    grid = torch.stack([xx.flatten(), yy.flatten()], dim=1)
    estimated = log_density_grid(eps_pred, grid[:, :, None, None].to(device), num_samples, loc, scale, generator).cpu()
    panels = [("estimated log p (information-theoretic)", estimated)]
    try:
        panels.append(("true log p", distribution.log_prob(grid)))
    except NotImplementedError:
        pass
    figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
    reference = panels[-1][1]
    low, high = max(float(reference.max()) - 10, float(reference.min())), float(reference.max()) + 1
    for axis, (title, values) in zip(axes[0], panels):
        image = axis.imshow(
            values.reshape(size, size).clamp(low, high).numpy(),
            origin="lower",
            extent=(-extent, extent, -extent, extent),
            cmap="viridis",
            vmin=low,
            vmax=high,
        )
        axis.set_title(title, fontsize=9)
        figure.colorbar(image, ax=axis, fraction=0.046)
    figure.tight_layout()
    write_atomic_with(path, lambda handle: figure.savefig(handle, format="png", dpi=110))
    plt.close(figure)
    return path


def run_nll_itd(request, config, model, device) -> Dict[str, Any]:
    from scripts.config import build
    from scripts.evaluation.elbo import bits_per_dim

    eps_pred = model.process.itd_eps_predictor(model.net)
    loc = config.model.logistic_loc if request.logsnr_loc is None else request.logsnr_loc
    scale = config.model.logistic_scale if request.logsnr_scale is None else request.logsnr_scale
    test_data = build.build_data(config, "test", model.process, uniform_dequantization=True)
    num_test = config.eval.num_test if request.num_test is None else request.num_test
    count = len(test_data) if num_test <= 0 else min(num_test, len(test_data))
    seed = config.eval.seed if request.seed is None else request.seed
    batch_size = config.eval.batch_size if request.batch_size is None else request.batch_size
    estimate = sharded_nll_estimate(
        lambda labels: model.process.itd_eps_predictor(conditioned(model.net, labels)),
        test_data,
        count,
        request.num_logsnr,
        loc,
        scale,
        seed=seed,
        batch_size=batch_size,
        device=device,
        num_classes=num_classes_of(model.net),
    )
    units = bits_per_dim(estimate["mean"], estimate["d"], model.process.data_range, discrete=test_data.kind == "image")
    result: Dict[str, Any] = {
        "nll_nats": estimate["mean"],
        "nll_nats_stderr": estimate["stderr"],
        "bits_per_dim_stderr": estimate["bits_per_dim_stderr"],
        **units,
        "logistic_loc": loc,
        "logistic_scale": scale,
        "logsnr_samples_per_image": request.num_logsnr,
        "test_images": count,
        "dimensions": estimate["d"],
    }
    if distributed.is_main():
        write_pictures(request, result, estimate, eps_pred, test_data, loc, scale, seed, model.step, device)
    if request.variational_bound:
        if distributed.is_main():
            save_estimate_first(request, result, model)
        elbo = ddpm_bound(request, config, model, test_data, count, seed, device)  # every process takes part
        if elbo is not None:
            result["variational_bound"] = elbo
    result["headline"] = headline(result)
    return result


def write_pictures(request, result, estimate, eps_pred, test_data, loc, scale, seed, step, device) -> None:
    """The MSE curve (PNG and TensorBoard) and, for 2D points, the estimated density; adds their paths
    (and the exact entropy where known) to ``result``."""
    folder = RunDir(request.workdir).results_folder(request.experiment_name)
    centres, means = binned_curve(estimate["logsnr"].cpu(), estimate["mse"].cpu())
    result["mse_curve"] = {"logsnr": centres.tolist(), "mse": means.tolist()}
    figure = plot_mse_curve(
        centres,
        means,
        estimate["d"],
        os.path.join(folder, f"mse_curve_{request.param_name}.png"),
        f"NLL {estimate['mean']:.3f} nats ({result['bits_per_dim']:.4f} bits/dim)",
    )
    result["mse_curve_plot"] = os.path.join(folder, f"mse_curve_{request.param_name}.png")
    write_tensorboard(request, figure, result, step)
    if test_data.kind == "points":
        result["density_plot"] = plot_density(
            eps_pred,
            test_data.dataset.distribution,
            loc,
            scale,
            os.path.join(folder, f"density_{request.param_name}.png"),
            max(request.num_logsnr, 256),
            torch.Generator(device).manual_seed(seed),
            device,
        )
        exact = _exact_entropy(test_data.dataset.distribution)
        if exact is not None:
            result["exact_entropy_nats"] = exact


def save_estimate_first(request, result: Dict[str, Any], model) -> None:
    """Record the estimate now: the K-step variational bound that follows can take hours on a CPU."""
    from scripts.evaluation.results import record

    path = record(request, dict(result, headline=headline(result)), model)
    print(
        f"{headline(result)}\nsaved to {path}; now the process's variational bound on the same images "
        "(--novariational_bound skips it)",
        flush=True,
    )


def _exact_entropy(distribution) -> Optional[float]:
    entropy = getattr(distribution, "entropy", None)
    return float(entropy()) if callable(entropy) else None


def ddpm_bound(request, config, model, test_data, count: int, seed: int, device) -> Optional[Dict[str, Any]]:
    """The process's own variational bound on the same test images, or None if it defines none."""
    from scripts.evaluation.elbo import evaluate_elbo

    try:
        result = evaluate_elbo(
            model.process,
            model.net,
            model.prior,
            test_data,
            batch_size=config.eval.batch_size,
            passes=1,
            num_test=count,
            seed=seed,
            device=device,
        )
    except NotImplementedError:
        return None
    return {key: result[key] for key in ("nats_per_image", "bits_per_dim", "discrete_bits_per_dim") if key in result}


def write_tensorboard(request, figure, result: Dict[str, Any], step: int) -> None:
    import matplotlib.pyplot as plt
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(os.path.join(request.workdir, "tensorboard", "evaluation")) as writer:
        writer.add_figure(f"nll_itd/mse_curve/{request.param_name}", figure, step)
        writer.add_scalar(f"nll_itd/nats/{request.param_name}", result["nll_nats"], step)
    plt.close(figure)


def headline(result: Dict[str, Any]) -> str:
    text = (
        f"NLL (information-theoretic): {result['nll_nats']:.4f} +- {result['nll_nats_stderr']:.4f} nats, "
        f"{result['bits_per_dim']:.4f} bits/dim"
    )
    if "discrete_bits_per_dim" in result:
        text += f" (8-bit discrete <= {result['discrete_bits_per_dim']:.4f})"
    if "variational_bound" in result:
        text += f"; variational bound: {result['variational_bound']['nats_per_image']:.4f} nats"
    if "exact_entropy_nats" in result:
        text += f"; exact: {result['exact_entropy_nats']:.4f} nats"
    return text
