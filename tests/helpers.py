"""Shared test doubles, builders and command runners (test modules import from here, never from each other)."""

import glob
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import torch

from configs.default import get_default_configs
from model_code.networks import UNet
from scripts.config import build
from scripts.data.datasets import DATASETS, check_split
from scripts.training.trainer import Trainer
from tests.configs import tiny

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOT_COPIED = {".git", ".venv", "runs", "data", "docs", ".pytest_cache", ".ruff_cache"}

CONFIG_FILES = sorted(  # every shipped config file
    p
    for p in glob.glob(os.path.join(ROOT, "configs", "**", "*.py"), recursive=True)
    if os.path.basename(p) not in ("__init__.py", "default.py")
)
# small valid model.* values, whatever the operator
TEST_MODEL = dict(blur_sigma_max=4.0, blurring_sigma_max=4.0, operator_seed=1, kernel_size=3, pixelate_every=2)


def load_config_file(path: str):
    """``get_config()`` of the config file at ``path``."""
    spec = importlib.util.spec_from_file_location("config_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def make_operator(name: str, K: int, image_size, **model_overrides):
    """A registered operator fed as the config boundary feeds it: each parameter from its model.* key of
    configs/default.py, with ``TEST_MODEL`` and ``model_overrides`` (model.* keys) applied; keys the operator
    does not take are not read."""
    config = get_default_configs()
    config.model.update(dict(TEST_MODEL, forward=name, K=K, **model_overrides))
    return build.build_registered(build.OPERATOR_FEED, config, {"image_size": lambda: image_size})


def make_process(process_name: str, operator_name: str, K: int, image_size, **model_overrides):
    """A registered process on a registered operator (``make_operator``), both fed as the config boundary feeds
    them: model.* keys of configs/default.py with ``TEST_MODEL`` and ``model_overrides`` applied."""
    config = get_default_configs()
    config.model.update(dict(TEST_MODEL, forward=operator_name, process=process_name, K=K, **model_overrides))
    operator = build.build_registered(build.OPERATOR_FEED, config, {"image_size": lambda: image_size})
    return build.build_registered(build.PROCESS_FEED, config, {"operator": lambda: operator})


def tiny_hflow(channels: int = 1, resolutions=(8, 4, 2), layers: int = 2, seed: int = 0) -> torch.nn.Module:
    """The smallest hflow network the tests use: ``layers`` flow steps of 8 hidden channels per level, its couplings
    moved off their zero initialisation (so that every level's flow acts)."""
    from model_code.networks.hflow import HFlowNetwork

    torch.manual_seed(seed)
    net = HFlowNetwork(
        in_channels=channels,
        out_channels=channels,
        hflow_resolutions=resolutions,
        hflow_latent_channels=(0,),
        hflow_coupling_layers=(layers,),
        hflow_coupling_channels=(8,),
        hflow_encoder_channels=(4,),
    )
    with torch.no_grad():
        for parameter in net.parameters():
            parameter += 0.03 * torch.randn_like(parameter)
    return net


def tiny_unet(channels: int = 1, **overrides) -> torch.nn.Module:
    """The smallest U-Net the tests use: 8 channels, two levels, attention at the second (``overrides``: other
    constructor arguments)."""
    kwargs = dict(model_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,), dropout=0.0)
    return UNet(in_channels=channels, out_channels=channels, **{**kwargs, **overrides})


def train_tiny_run(folder: str, n_iters: int = 2, **model_overrides) -> str:
    """Train tests/configs/tiny.py (with model.* overrides) for ``n_iters`` steps into ``folder`` on the CPU;
    returns ``folder``."""
    config = tiny.get_config()
    config.model.update(model_overrides)
    config.training.n_iters = n_iters
    Trainer(config, folder, torch.device("cpu")).run()
    return folder


class IHDMOracle(torch.nn.Module):
    """Knows the clean image x0: f(u_k, k) = A_{k-1} x0 - u_k, the perfect residual for the ihdm process."""

    def __init__(self, process, x0):
        super().__init__()
        self.process, self.x0 = process, x0

    def forward(self, u, time):
        return self.process.operator(self.x0, time.round().long() - 1) - u


def build_dataset(name: str, *, split: str, image_size, num_channels: int, root: str):
    """A registered dataset built directly (no config): uint8 images [C, H, W] or points [D]."""
    check_split(split)
    return DATASETS.build(name, split=split, image_size=tuple(image_size), num_channels=num_channels, root=root)


def optimal_gaussian_eps_pred(mean, cov):
    """Oracle: E[eps | z_a] for data N(mean, cov) (float64 [d], [d, d]), in closed form.

    With alpha^2 = sigmoid(a), sigma^2 = sigmoid(-a) and cov = U diag(lambda) U^T,
    E[eps | z] = sigma (alpha^2 Sigma + sigma^2 I)^{-1} (z - alpha m)
               = U diag(sigma / (alpha^2 lambda + sigma^2)) U^T (z - alpha m).
    Returns (z [B, ...] with d entries, logsnr [B]) -> [B, ...].
    """
    eigenvalues, eigenvectors = torch.linalg.eigh(torch.as_tensor(cov, dtype=torch.float64))
    mean = torch.as_tensor(mean, dtype=torch.float64).reshape(-1)

    def eps_pred(z, logsnr):
        alpha2 = torch.sigmoid(logsnr.to(z.dtype))[:, None]
        sigma2 = torch.sigmoid(-logsnr.to(z.dtype))[:, None]
        coefficients = (z.reshape(z.shape[0], -1) - alpha2.sqrt() * mean.to(z)) @ eigenvectors.to(z)
        coefficients = coefficients * sigma2.sqrt() / (alpha2 * eigenvalues.to(z) + sigma2)
        return (coefficients @ eigenvectors.to(z).T).reshape(z.shape)

    return eps_pred


def run_command(*args, cwd=ROOT, timeout=120) -> subprocess.CompletedProcess:
    """``python ARGS`` in ``cwd`` (the project), its output captured as text."""
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def project_copy(destination: str) -> str:
    """A copy of the project's files without the version control, environment, runs, data payload and pictures."""

    def ignore(folder, names):
        skipped = {"__pycache__"} | (NOT_COPIED if os.path.samefile(folder, ROOT) else set())
        return [name for name in names if name in skipped]

    shutil.copytree(ROOT, destination, ignore=ignore)
    return destination


def train_sample_and_evaluate(project: str, config: str, workdir: str) -> dict:
    """The add-a-X recipe through the command line in a project copy: train ``config`` into ``workdir``, draw 2
    samples and evaluate the ELBO on 8 test images; returns the recorded ELBO result."""
    run_in_copy(project, "train.py", "--config", config, "--workdir", workdir)
    sampled = run_in_copy(project, "sample.py", "--workdir", workdir, "--batch_size=2")
    assert "2 samples (random)" in sampled
    run_in_copy(project, "evaluate.py", "--workdir", workdir, "--mode=elbo", "--num_test=8", "--batch_size=8")
    with open(os.path.join(project, workdir, "evaluation_results", "default", "results.json")) as handle:
        return json.load(handle)["default"]["elbo"]


def run_in_copy(project: str, *args) -> str:
    """``python ARGS`` in a project copy, which must succeed; returns its standard output."""
    result = run_command(*args, cwd=project, timeout=300)
    assert result.returncode == 0, f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result.stdout


class GaussianDataOracle(torch.nn.Module):
    """E[eps | u_t] for data with independent coefficients x_f ~ N(m_f, s_f^2) in the operator's basis:
    sigma_t (u_f - alpha_f m_f) / (alpha_f^2 s_f^2 + sigma_t^2) per frequency f."""

    def __init__(self, process, mean, std):
        super().__init__()
        self.process, self.mean, self.std = process, mean, std

    def forward(self, u, time):
        alpha, sigma, _ = self.process.marginal(time / 1000 * self.process.K)  # the network sees 1000 t
        op = self.process.operator
        return op.from_basis((op.to_basis(u) - alpha * self.mean) * sigma / (alpha**2 * self.std**2 + sigma**2))
