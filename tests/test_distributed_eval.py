"""Sampling, the ELBO, the information-theoretic and probability-flow NLLs and FID statistics from 2 processes
equal those from 1 (gloo on the CPU)."""

import os
import subprocess

import pytest
import torch

from scripts.training.trainer import Trainer
from tests.configs import tiny
from tests.helpers import ROOT
from tests.launchers import launch, launch_command, one_thread_env


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    config = tiny.get_config()
    config.training.n_iters = 3
    config.training.sampling_freq = 0
    workdir = str(tmp_path_factory.mktemp("run"))
    Trainer(config, workdir, torch.device("cpu")).run()
    return workdir


def one_and_two_processes(script: str, workdir: str, folder):
    """What tests/SCRIPT saved, run on ``workdir`` by one process and by two (torchrun)."""
    outputs = []
    for launcher in ("python", "torchrun"):
        out = folder / f"{launcher}.pt"
        result = launch(launcher, [os.path.join(ROOT, "tests", script), workdir, str(out)], timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        outputs.append(torch.load(out, weights_only=False))
    return outputs


def test_two_processes_sample_evaluate_and_fit_fid_statistics_like_one(trained, tmp_path):
    one, two = one_and_two_processes("dist_eval.py", trained, tmp_path)
    for name in [key for key in one if isinstance(one[key], torch.Tensor) and key != "elbo"]:
        assert torch.equal(one[name], two[name]), name  # every sampling mode, bit for bit
    assert one["random"].shape[0] == 5 and one["nll_itd"].shape == (7,) and one["nll_itd_logsnr"].shape == (28,)
    assert torch.allclose(one["elbo"], two["elbo"], rtol=1e-6, atol=0)
    for name in ("generated", "reference"):
        (mu1, sigma1, n1), (mu2, sigma2, n2) = one[name], two[name]
        assert n1 == n2 and n1 >= 7
        assert torch.allclose(mu1, mu2, rtol=0, atol=1e-10) and torch.allclose(sigma1, sigma2, rtol=0, atol=1e-10)


def test_two_processes_solve_the_probability_flow_nll_like_one(tmp_path):
    """Each process solves its own batches (different step counts, no collective inside a solve): the same NLL
    per image and the same NFE per batch as one process, bit for bit."""
    config = tiny.get_config()
    config.model.update(process="gaussian", forward="identity")
    config.training.update(n_iters=2, sampling_freq=0)
    workdir = str(tmp_path / "gaussian")
    Trainer(config, workdir, torch.device("cpu")).run()
    one, two = one_and_two_processes("dist_nll_ode.py", workdir, tmp_path)
    assert one["nll"].shape == (7,) and one["nfe"].shape == (3,) and torch.isfinite(one["nll"]).all()
    assert torch.equal(one["nll"], two["nll"]) and torch.equal(one["nfe"], two["nfe"])


def test_mpiexec_trains_and_samples_end_to_end(tmp_path):
    workdir = tmp_path / "run"
    train = ["train.py", "--config", "tests/configs/tiny.py", f"--workdir={workdir}", "--config.training.n_iters=2"]
    result = subprocess.run(
        launch_command("mpiexec", train), cwd=ROOT, env=one_thread_env(), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sample = ["sample.py", f"--workdir={workdir}", "--batch_size=3"]
    result = subprocess.run(
        launch_command("mpiexec", sample), cwd=ROOT, env=one_thread_env(), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    folders = os.listdir(workdir / "sample_outputs")
    assert len(folders) == 1
    samples = __import__("numpy").load(workdir / "sample_outputs" / folders[0] / "samples.npz")["samples"]
    assert samples.shape == (3, 1, 8, 8)
    assert result.stdout.count("3 samples") == 1  # rank 0 alone reports and writes
