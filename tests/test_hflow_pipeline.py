"""hflow through the framework's commands: trained by the trainer (resumed bit-exactly, 2 processes as 1), sampled,
encoded and decoded exactly, interpolated between real images and evaluated (exact NLL) from the command line, and
its bad configs refused in one line before anything is written."""

import os
import re
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
    """Also with a checkpoint due by the minute at every step, which every rank must agree on (else it hangs)."""
    results = {}
    for launcher in ("python", "torchrun"):
        args = ["train.py", "--config", CONFIG, f"--workdir={tmp_path / launcher}", "--config.training.sampling_freq=0"]
        args.append("--config.training.checkpoint_minutes=1e-9")  # due at every step: rank 0's clock, agreed by all
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


def video_frames(path):
    """(frame count, frames per second) of an MP4, read back through imageio-ffmpeg."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(path)
    meta = next(reader)
    return sum(1 for _ in reader), meta["fps"]


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(video=True), "--video given without --interpolate; allowed: with --interpolate"),
        (dict(interpolate=True, video=True, fps=0.0), "--fps=0.0: a finite number > 0"),
        (dict(level_temperatures=["0.9", "-1"]), "--level_temperatures=0.9,-1: finite numbers >= 0"),
        (dict(level_temperatures=["0.9", "x"]), "--level_temperatures=0.9,x: finite numbers >= 0"),
    ],
)
def test_bad_sampling_flags_are_refused_in_one_line(fields, message):
    from scripts.sampling.request import SamplingRequest, check_flag_values

    with pytest.raises(ValueError, match=re.escape(message)):
        check_flag_values(SamplingRequest(workdir="unused", **fields))


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--level_temperatures=0.9,0.8"], "level_temperatures=[0.9, 0.8]: one per level, 3 (K of this model)"),
        (["--level_temperatures=1,1,1", "--sampler=ancestral"], "does not apply to sampler=ancestral"),
        (["--video"], "--video given without --interpolate; allowed: with --interpolate"),
    ],
)
def test_sample_py_refuses_them_in_one_line_with_nothing_written(trained_run, flags, message):
    before = sorted(os.listdir(os.path.join(trained_run, "sample_outputs")))
    result = run_cli("sample.py", "--workdir", trained_run, *flags, timeout=120)
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 1 and last.startswith("error: ") and message in last, result.stderr[-2000:]
    assert sorted(os.listdir(os.path.join(trained_run, "sample_outputs"))) == before


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("hflow") / "run")
    trained = run_cli("train.py", "--config", CONFIG, "--workdir", workdir, "--config.training.n_iters=2")
    assert trained.returncode == 0, trained.stderr[-3000:]
    os.makedirs(os.path.join(workdir, "sample_outputs"), exist_ok=True)
    return workdir


def test_per_level_temperatures_scale_each_levels_latent():
    """flow_inverse with level temperatures (T, T, T) is the sampler at temperature T; a level at temperature 0
    draws its latent as 0, so its detail is the flow's image of z = 0 whatever the noise."""
    from model_code.samplers.flow_inverse import flow_inverse
    from tests.helpers import make_process, tiny_hflow

    process = make_process("hflow", "haar_pyramid", 3, 8, hflow_resolutions=(8, 4, 2))
    denoiser = process.denoiser(tiny_hflow(resolutions=(8, 4, 2)).eval())
    levels, start = [3, 2, 1, 0], torch.zeros(2, 1, 8, 8)

    def draw(seed, **settings):
        generator = torch.Generator().manual_seed(seed)
        noise = lambda: torch.randn(2, 1, 8, 8, generator=generator)
        with torch.no_grad():
            return flow_inverse(denoiser, levels, start, noise, lambda i, u: None, **settings)

    assert torch.equal(draw(0, temperature=0.7), draw(0, level_temperatures=(0.7, 0.7, 0.7)))
    coarse = lambda u: process.operator.level_image(u, 1)
    frozen = [draw(seed, level_temperatures=(1.0, 0.0, 0.0)) for seed in (0, 1)]
    torch.testing.assert_close(coarse(frozen[0]), coarse(frozen[1]), atol=1e-6, rtol=0)
    assert not torch.allclose(frozen[0], frozen[1])


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
    interpolated = run_cli("sample.py", "--workdir", workdir, "--interpolate", *flags, "--video", "--fps=4")
    assert interpolated.returncode == 0, interpolated.stderr[-3000:]
    folder = next(p for p in os.listdir(os.path.join(workdir, "sample_outputs")) if p.startswith("interpolate"))
    samples = np.load(os.path.join(workdir, "sample_outputs", folder, "samples.npz"))["samples"]
    assert video_frames(os.path.join(workdir, "sample_outputs", folder, "interpolation.mp4")) == (3, 4.0)
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
    "key, value, message",
    [
        ("hflow_resolutions", (8, 3), "model.hflow_resolutions=(8, 3): 3 is not 8 halved"),
        ("hflow_resolutions", (16, 8, 4), "the first must be the image height 8"),
        ("hflow_latent_channels", (5,), "model.hflow_latent_channels=(5,): level 0"),
        ("hflow_prior_stds", (0.0,), "model.hflow_prior_stds=(0.0,): a non-empty tuple of finite numbers > 0"),
        ("hflow_prior_stds", (1.0, -1.0, 1.0), "model.hflow_prior_stds=(1.0, -1.0, 1.0)"),
        ("K", 4, "model.K=4: one level per resolution of model.hflow_resolutions; allowed: 3"),
        ("network", "unet", "model.network='unet': hflow runs as model.process='hflow'"),
    ],
)
def test_bad_hflow_configs_are_refused_in_one_line(key, value, message):
    from scripts.config.validate import validate_config

    bad = config()
    bad.model[key] = value
    with pytest.raises(ValueError) as refused:
        validate_config(bad)
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_a_bad_hflow_config_stops_train_py_with_one_line_and_nothing_written(tmp_path):
    workdir = tmp_path / "run"
    result = run_cli("train.py", "--config", CONFIG, f"--workdir={workdir}", "--config.model.hflow_resolutions=(8,3)")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: model.hflow_resolutions=(8, 3): 3 is not 8 halved"), last
    assert not workdir.exists() or not os.listdir(workdir)


def test_a_run_stored_before_hflow_loads_with_its_keys_defaults():
    import json

    from configs.default import get_default_configs
    from scripts.config.validate import validate_config
    from scripts.runs.rundir import HFLOW_KEYS, MINUTE_PERIODS, config_from_dict

    with open(os.path.join(ROOT, "pretrained", "quickstart", "config.json")) as file:
        stored = json.load(file)
    assert not set(HFLOW_KEYS) & set(stored["model"])  # the shipped run predates the keys
    loaded = config_from_dict(stored)
    validate_config(loaded)
    defaults = get_default_configs().model
    assert {key: loaded.model[key] for key in HFLOW_KEYS} == {key: defaults[key] for key in HFLOW_KEYS}
    assert [loaded.training[key] for key in MINUTE_PERIODS] == [0.0] * 3 and not set(MINUTE_PERIODS) & set(stored)


def test_the_condition_encoders_train_at_their_own_learning_rate(tmp_path):
    """Two Adam groups: the flows at optim.lr, the encoders at hflow_encoder_lr_scale times it (hflow's
    LEARNING_RATE_ENCODERS); an encoder scale of 1e-9 leaves the encoders where they started."""
    run = config(n_iters=2, sampling_freq=0)
    run.model.hflow_encoder_lr_scale = 1e-9
    trainer = Trainer(run, str(tmp_path), torch.device("cpu"))
    start = {key: value.clone() for key, value in trainer.state.net.state_dict().items()}
    state = trainer.run()
    rates = [group["lr"] for group in state.optimizer.param_groups]
    assert len(rates) == 2 and abs(rates[1] - 1e-9 * rates[0]) < 1e-18
    moved = {key: not torch.allclose(value, start[key], atol=1e-7) for key, value in state.net.state_dict().items()}
    assert not any(moved[key] for key in moved if ".encoder." in key)
    assert any(moved[key] for key in moved if "steps" in key and key.endswith("weight"))


def test_tensorboard_logs_bits_per_dim_per_level_that_add_up_to_the_total(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    Trainer(config(n_iters=3, sampling_freq=0), str(tmp_path), torch.device("cpu")).run()
    events = EventAccumulator(str(tmp_path / "tensorboard")).Reload()
    value = lambda tag: events.Scalars(tag)[-1].value
    levels = {"bits_per_dim/level_0_8x8": 48, "bits_per_dim/level_1_4x4": 12, "bits_per_dim/level_2_2x2": 4}
    assert set(levels) | {"bits_per_dim/total"} <= set(events.Tags()["scalars"])
    mixed = sum((value(tag) - 8) * dims for tag, dims in levels.items()) / 64 + 8  # dims n_j of D = 64
    assert abs(mixed - value("bits_per_dim/total")) < 1e-4


def test_the_python_api_encodes_decodes_samples_and_scores_an_hflow_run(trained_run):
    from scripts.api import Model

    model = Model.from_run(trained_run, device="cpu")
    images = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)) - 0.5
    latent = model.encode(images)
    assert (model.decode(latent) - images).abs().max() < 1e-5
    nats = model.elbo(images)
    z, logdet = model.net(images, torch.zeros(2))
    exact = model.process.level_nll(z, logdet).sum(1)  # the ELBO of an exact model is its NLL
    torch.testing.assert_close(nats, exact, atol=1e-3, rtol=1e-6)
    cold = model.sample(2, temperature=0.0)
    assert torch.equal(cold, model.sample(2, seed=5, level_temperatures=(0.0, 0.0, 0.0)))
