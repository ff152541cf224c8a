"""Suggest the logistic log-SNR parameters (model.logistic_loc, model.logistic_scale).

    python -m scripts.suggest_logsnr --config configs/toy2d/correlated_gaussian.py          # from the data
    python -m scripts.suggest_logsnr --workdir runs/toy2d/spiral --checkpoint 0             # from a trained model

From the data: the eps-MMSE curve of a Gaussian with the data's covariance,
sum_i sigmoid(a + log lambda_i), from the eigenvalues lambda_i of the training set's covariance.
From a model: its eps-MSE on test data over a log-SNR grid. Either way the curve rises from 0 to d
like a CDF; loc is where it crosses d/2 and scale = (a at 3d/4 - loc) / ln 3 (model_code/itd.py).
"""

from __future__ import annotations

import torch
from absl import flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    "config", None, "Configuration file (default with --workdir: the run's).", lock_config=True
)
flags.DEFINE_string("workdir", None, "A trained gaussian/identity run: use its MSE curve instead of the data spectrum.")
flags.DEFINE_integer("checkpoint", 0, "Checkpoint of --workdir (0 = latest).")
flags.DEFINE_integer("num_items", 5000, "Training (spectrum) or test (MSE curve) items to use.")


def data_matrix(config, process, split: str, count: int) -> torch.Tensor:
    """[n, d] flattened items of a split, in the process's data range."""
    from scripts.config import build

    data = build.build_data(config, split, process)
    return data.fetch(torch.arange(min(count, len(data)))).flatten(1).double()


def spectrum_suggestion(config) -> tuple:
    from model_code.itd import suggest_logistic_params_from_spectrum
    from scripts.config import build

    process = build.build_process(config)
    x = data_matrix(config, process, "train", FLAGS.num_items)
    eigenvalues = torch.linalg.eigvalsh(torch.cov(x.T).reshape(x.shape[1], x.shape[1])).clamp_min(1e-12)
    return suggest_logistic_params_from_spectrum(eigenvalues)


@torch.no_grad()
def model_suggestion() -> tuple:
    from model_code.itd import gaussian_channel, suggest_logistic_params
    from scripts.runs.trained import load_trained
    from scripts.runtime import distributed

    device = distributed.init().device
    model = load_trained(FLAGS.workdir, FLAGS.checkpoint, device, config=FLAGS.config)
    config = model.config
    eps_pred = model.process.itd_eps_predictor(model.net)
    x = data_matrix(config, model.process, "test", FLAGS.num_items).float().to(device).view(-1, *model.shape)
    generator = torch.Generator(device).manual_seed(0)
    grid = torch.linspace(-20, 20, 161)
    mse = []
    for a in grid:
        logsnr = torch.full((x.shape[0],), float(a), device=device)
        eps = torch.randn(x.shape, generator=generator, device=device)
        mse.append((eps - eps_pred(gaussian_channel(x, logsnr, eps), logsnr)).flatten(1).pow(2).sum(1).mean().item())
    return suggest_logistic_params(grid, torch.tensor(mse), x[0].numel())


def run() -> None:
    from scripts.cli.values import int_at_least, require
    from scripts.config.validate import validate_config

    require("--num_items", FLAGS.num_items, int_at_least(2), "an integer >= 2")
    require("--checkpoint", FLAGS.checkpoint, int_at_least(0), "an integer >= 0 (0: the latest state)")
    if FLAGS.config is not None:
        validate_config(FLAGS.config)
    if FLAGS.config is None and FLAGS.workdir is None:
        raise ValueError(
            "give --config (suggest from the data spectrum) or --workdir (from a trained model's MSE curve)"
        )
    if FLAGS.workdir:
        loc, scale = model_suggestion()
        source = f"the MSE curve of {FLAGS.workdir}"
    else:
        loc, scale = spectrum_suggestion(FLAGS.config)
        source = f"the covariance spectrum of {FLAGS.config.data.dataset}"
    print(f"from {source}: loc = {loc:.4f}, scale = {scale:.4f}")
    print(f"--config.model.logistic_loc={loc:.4f} --config.model.logistic_scale={scale:.4f}")


if __name__ == "__main__":
    from scripts.cli.command import run_command

    run_command(run)
