"""hflow through the framework's commands: trained by the trainer (resumed bit-exactly, 2 processes as 1), sampled,
encoded and decoded exactly, interpolated between real images and evaluated (exact NLL) from the command line, and
its bad configs refused in one line before anything is written."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from model_code.latents import decode, encode
from model_code.randomness import seeded_generators
from scripts.training.trainer import Trainer
from tests.configs import tiny_hflow
from tests.helpers import ROOT
from tests.launchers import launch_command, one_thread_env

CONFIG = "tests/configs/tiny_hflow.py"


def run_cli(*args, timeout=300):
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=one_thread_env(), capture_output=True, text=True, timeout=timeout
    )


def config(**training):
    config = tiny_hflow.get_config()
    config.training.update(training)
    return config


def test_a_resumed_run_is_bit_identical_and_its_actnorm_was_initialised_once(tmp_path):
    device = torch.device("cpu")
    straight = Trainer(config(sampling_freq=0), str(tmp_path / "a"), device).run()
    Trainer(config(n_iters=3, sampling_freq=0), str(tmp_path / "b"), device).run()
    resumed = Trainer(config(sampling_freq=0), str(tmp_path / "b"), device).run()
    for name, state in [("net", straight.net.state_dict()), ("ema", straight.ema.shadow.state_dict())]:
        other = resumed.net.state_dict() if name == "net" else resumed.ema.shadow.state_dict()
        for key, value in state.items():
            assert torch.equal(value, other[key]), (name, key)
    assert all(bool(value) for key, value in straight.net.state_dict().items() if key.endswith("initialized"))


def test_exact_latents_of_a_trained_model_decode_to_the_image(tmp_path):
    from scripts.config import build

    trainer = Trainer(config(sampling_freq=0), str(tmp_path), torch.device("cpu"))
    state = trainer.run()
    x0 = trainer.data.prepare(trainer.data.raw_batch(range(4)), None, augment=False)
    latent = encode(trainer.process, state.ema.shadow, x0, seeded_generators(0, 2, range(4)))
    assert (decode(trainer.process, state.ema.shadow, latent) - x0).abs().max() < 1e-5
    noise = latent[1]
    sizes = trainer.process.latent_sizes(1)  # level j's latent fills its own entries of step K - j's noise
    for step, j in enumerate(reversed(range(trainer.process.K))):
        assert torch.count_nonzero(noise[:, step].flatten(1), dim=1).max() <= sizes[j]
    assert build.build_prior(trainer.config, trainer.process, None).name == "standard_normal"


@pytest.mark.slow
def test_two_processes_train_the_one_process_model(tmp_path):
    results = {}
    for launcher in ("python", "torchrun"):
        args = ["train.py", "--config", CONFIG, f"--workdir={tmp_path / launcher}", "--config.training.sampling_freq=0"]
        results[launcher] = subprocess.run(
            launch_command(launcher, args), cwd=ROOT, env=one_thread_env(), capture_output=True, text=True, timeout=240
        )
        assert results[launcher].returncode == 0, results[launcher].stderr[-3000:]
    states = [
        torch.load(tmp_path / name / "checkpoints-meta" / "checkpoint.pth", weights_only=True) for name in results
    ]
    for part in ("net", "ema"):
        scale = max(value.float().abs().max() for value in states[0][part].values())
        for key, value in states[0][part].items():
            assert (value.float() - states[1][part][key].float()).abs().max() <= 1e-5 * scale, (part, key)


def save_digit(path, seed):
    pixels = (np.random.default_rng(seed).random((8, 8)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return pixels


def test_train_sample_interpolate_resample_and_evaluate_from_the_command_line(tmp_path):
    workdir = str(tmp_path / "run")
    trained = run_cli("train.py", "--config", CONFIG, "--workdir", workdir)
    assert trained.returncode == 0, trained.stderr[-3000:]
    sampled = run_cli("sample.py", "--workdir", workdir, "--batch_size=4", "--temperature=0.7")
    assert sampled.returncode == 0, sampled.stderr[-3000:]
    a, b = save_digit(tmp_path / "a.png", 0), save_digit(tmp_path / "b.png", 1)
    flags = [f"--image_a={tmp_path / 'a.png'}", f"--image_b={tmp_path / 'b.png'}", "--num_points=3"]
    interpolated = run_cli("sample.py", "--workdir", workdir, "--interpolate", *flags)
    assert interpolated.returncode == 0, interpolated.stderr[-3000:]
    folder = next(p for p in os.listdir(os.path.join(workdir, "sample_outputs")) if p.startswith("interpolate"))
    samples = np.load(os.path.join(workdir, "sample_outputs", folder, "samples.npz"))["samples"]
    ends = np.stack([a, b]).astype(np.float32) / 255 - 0.5  # the ends are the images themselves, decoded exactly
    np.testing.assert_allclose(samples[[0, -1], 0], ends, atol=1e-5)
    below = run_cli("sample.py", "--workdir", workdir, f"--image={tmp_path / 'a.png'}", "--resample_below=1")
    assert below.returncode == 0, below.stderr[-3000:]
    evaluated = run_cli("evaluate.py", "--workdir", workdir, "--mode=elbo", "--num_test=32")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    import json

    results = json.load(open(os.path.join(workdir, "evaluation_results", "default", "results.json")))
    result = next(iter(results.values())) if "terms_nats" not in results else results
    assert "discrete_bits_per_dim" in json.dumps(result)


@pytest.mark.parametrize(
    "override, message",
    [
        ("--config.model.hflow_resolutions=(8,3)", "model.hflow_resolutions=(8, 3): 3 is not 8 halved"),
        ("--config.model.hflow_resolutions=(16,8,4)", "the first must be the image height 8"),
        ("--config.model.hflow_latent_channels=(5,)", "model.hflow_latent_channels=(5,): level 0"),
        ("--config.model.hflow_prior_stds=(0.0,)", "model.hflow_prior_stds=(0.0,): a non-empty tuple of finite"),
        ("--config.model.hflow_prior_stds=(1.0,-1.0,1.0)", "model.hflow_prior_stds=(1.0, -1.0, 1.0)"),
    ],
)
def test_bad_hflow_configs_are_refused_in_one_line_with_nothing_written(tmp_path, override, message):
    workdir = tmp_path / "run"
    result = run_cli("train.py", "--config", CONFIG, f"--workdir={workdir}", override, timeout=120)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last, last
    assert not workdir.exists() or not os.listdir(workdir)


def test_a_run_stored_before_hflow_loads_with_its_keys_defaults():
    import json

    from configs.default import get_default_configs
    from scripts.config.validate import validate_config
    from scripts.runs.rundir import HFLOW_KEYS, config_from_dict

    with open(os.path.join(ROOT, "pretrained", "quickstart", "config.json")) as file:
        stored = json.load(file)
    assert not set(HFLOW_KEYS) & set(stored["model"])  # the shipped run predates the keys
    loaded = config_from_dict(stored)
    validate_config(loaded)
    defaults = get_default_configs().model
    assert {key: loaded.model[key] for key in HFLOW_KEYS} == {key: defaults[key] for key in HFLOW_KEYS}
