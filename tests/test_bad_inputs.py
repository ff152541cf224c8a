"""Every bad input is refused with one line through the real command line, before any work is done.

Each case runs the command in a subprocess and asserts: a non-zero exit status, a last line on stderr
that starts with ``error:`` and names the bad value, no traceback, and nothing written where nothing
should be. The checks run before torch is imported wherever the command allows, so each case costs a
fraction of a second (evaluate.py imports torch before checking: about 3 s a case on 2 busy cores).
"""

import dataclasses
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from scripts.cli.errors import DatasetUnavailable
from scripts.config.validate import validate_config
from scripts.runs.checkpoints import load_checkpoint, save_checkpoint
from scripts.runs.rundir import RunDir, config_from_dict
from scripts.training.trainer import Trainer
from tests.configs import tiny
from tests.helpers import CONFIG_FILES, build_dataset, load_config_file, train_tiny_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join("tests", "configs", "tiny.py")


def run(*args, timeout=120):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def assert_refused(result, *named):
    """Non-zero exit, the last stderr line 'error: ...' containing every string in ``named``, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0, result.stdout + result.stderr
    assert lines and lines[-1].startswith("error: "), result.stderr
    for text in named:
        assert text in lines[-1], (text, lines[-1])
    assert "Traceback" not in result.stderr + result.stdout


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A tiny run trained for 2 steps (its checkpoint is the latest state)."""
    return train_tiny_run(str(tmp_path_factory.mktemp("trained")))


@pytest.fixture(scope="module")
def config_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("config_files")
    files = {
        "syntax": "def get_config(:\n",
        "no_get_config": "CONFIG = None\n",
        "raises": "def get_config():\n    raise RuntimeError('no such experiment')\n",
        "returns_dict": "def get_config():\n    return {'seed': 1}\n",
    }
    for name, text in files.items():
        (folder / f"{name}.py").write_text(text)
    return {name: str(folder / f"{name}.py") for name in files}


TRAIN_CONFIG_VALUES = [
    ("--config.training.batch_size=0", "training.batch_size=0: an integer >= 1"),
    ("--config.training.batch_size=-4", "training.batch_size=-4: an integer >= 1"),
    ("--config.data.image_size=0", "data.image_size=0: an integer >= 1"),
    ("--config.data.num_channels=0", "data.num_channels=0: an integer >= 1"),
    ("--config.model.model_channels=0", "model.model_channels=0: an integer >= 1"),
    ("--config.model.channel_mult=()", "model.channel_mult=(): a non-empty tuple"),
    ("--config.model.attention_levels=(4,)", "model.attention_levels=(4,): indices into model.channel_mult, 0..1"),
    ("--config.model.K=0", "model.K=0: an integer >= 1"),
    ("--config.model.sigma=nan", "model.sigma=nan: a finite number > 0"),
    ("--config.model.delta=-0.1", "model.delta=-0.1: a finite number > 0"),
    ("--config.model.dropout=1.0", "model.dropout=1.0: a number in [0, 1)"),
    ("--config.training.n_iters=-1", "training.n_iters=-1: an integer >= 0"),
    ("--config.training.snapshot_freq_for_preemption=-1", "training.snapshot_freq_for_preemption=-1: an integer >= 1"),
    ("--config.training.snapshot_freq=-10", "training.snapshot_freq=-10: an integer >= 1 (steps between two of them)"),
    ("--config.training.log_freq=-5", "training.log_freq=-5: an integer >= 1 (steps between two of them), or 0"),
    ("--config.training.sampling_freq=-1", "training.sampling_freq=-1: an integer >= 1"),
    ("--config.training.num_samples=0", "training.num_samples=0: an integer >= 1"),
    ("--config.training.mixed_precision=fp8", "training.mixed_precision='fp8': one of 'auto', 'bf16', 'fp16', 'no'"),
    ("--config.training.mixed_precision=fp16", "mixed precision 'fp16' runs on CUDA only; on cpu allowed: 'auto'"),
    ("--config.optim.lr=inf", "optim.lr=inf: a finite number > 0"),
    ("--config.optim.warmup=-1", "optim.warmup=-1: an integer >= 0"),
    ("--config.eval.batch_size=0", "eval.batch_size=0: an integer >= 1"),
]


@pytest.mark.parametrize("override, message", TRAIN_CONFIG_VALUES, ids=[o for o, _ in TRAIN_CONFIG_VALUES])
def test_bad_config_values_are_refused_before_anything_is_written(tmp_path, override, message):
    workdir = tmp_path / "run"
    assert_refused(run("train.py", "--config", TINY, "--workdir", str(workdir), override), "error: " + message)
    assert not workdir.exists()


def test_bad_config_files_are_named(tmp_path, config_files):
    workdir = tmp_path / "run"
    cases = [
        (config_files["syntax"], "syntax error at line 1"),
        (config_files["no_get_config"], "defines no get_config()"),
        (config_files["raises"], "get_config() raised RuntimeError: no such experiment"),
        (config_files["returns_dict"], "get_config() returned dict, not a ConfigDict"),
        (str(tmp_path / "missing.py"), "no such file"),
    ]
    for path, message in cases:
        assert_refused(run("train.py", "--config", path, "--workdir", str(workdir)), f"--config={path}: {message}")
    assert not workdir.exists()


def test_bad_command_lines(tmp_path):
    workdir = str(tmp_path / "run")
    repeated = run(
        "train.py", "--config", TINY, "--workdir", workdir, "--config.model.channel_mult=(1,2)",
        "--config.model.channel_mult=(1,2,2)",
    )  # fmt: skip
    assert_refused(repeated, "--config.model.channel_mult is given 2 times", "(1,2)", "(1,2,2)", "give each key once")
    # `--same_init False` leaves 'False' as a positional argument: refused instead of ignored
    stray = run("train.py", "--config", TINY, "--workdir", workdir, "False")
    assert_refused(stray, "unexpected argument 'False'")
    assert not os.path.exists(workdir)


@pytest.mark.parametrize("command", ["train.py", "sample.py", "evaluate.py"])
def test_help_exits_with_status_zero(command):
    """absl exits with status 1 after printing the help; asking for it is not an error."""
    result = run(command, "--help")
    assert result.returncode == 0 and "--workdir" in result.stdout and result.stderr == "", result.stderr


def test_workdirs_that_cannot_be_used(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    assert_refused(run("train.py", "--config", TINY, "--workdir", str(a_file)), f"--workdir={a_file}: is a file")
    under_a_file = a_file / "run"
    assert_refused(run("train.py", "--config", TINY, "--workdir", str(under_a_file)), "cannot be written")
    assert a_file.read_text() == "not a folder"


@pytest.mark.skipif(not os.path.isdir("/sys/kernel"), reason="needs Linux's /sys, where nobody may create files")
def test_a_read_only_workdir_is_refused():
    """/sys refuses new files even to root, so this holds whoever runs the tests."""
    assert_refused(
        run("train.py", "--config", TINY, "--workdir", "/sys/kernel"), "--workdir=/sys/kernel: cannot be written"
    )


@pytest.mark.slow
def test_a_single_tuple_override_lands_in_the_run(tmp_path):
    workdir = tmp_path / "run"
    result = run(
        "train.py", "--config", TINY, "--workdir", str(workdir), "--config.model.channel_mult=(1,2,2)",
        "--config.model.attention_levels=(2,)", "--config.training.n_iters=0",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    saved = json.loads((workdir / "config.json").read_text())
    assert saved["model"]["channel_mult"] == [1, 2, 2] and saved["model"]["attention_levels"] == [2]


SAMPLE_FLAGS = [
    (["--delta=nan"], "--delta=nan: a finite number > 0"),
    (["--delta=-0.5"], "--delta=-0.5: a finite number > 0"),
    (["--delta=0"], "--delta=0.0: a finite number > 0"),
    (["--interpolate", "--num_points=1"], "--num_points=1: an integer >= 2"),
    (["--batch_size=0"], "--batch_size=0: an integer >= 1"),
    (["--checkpoint=-1"], "--checkpoint=-1: an integer >= 0"),
    (["--seed=-1"], "--seed=-1: an integer >= 0"),
    (["--steps=0"], "--steps=0: an integer in 1..K"),
    (["--steps=6"], "--steps=6: an integer in 1..5"),  # K = 5: after loading
    (["--steps=2"], "steps=2: the ihdm process cannot skip levels"),
    (["--eta=1.5"], "--eta=1.5: a number in [0, 1]"),
    (["--eta=0.5"], "sampler='ddim': the 'ihdm' process cannot run it"),
    (["--deterministic"], "--deterministic given without --interpolate --image_a/--image_b"),
    (["--mixed_precision=fp8"], "--mixed_precision=fp8: one of auto, bf16, fp16, no"),
    (["--mixed_precision=fp16"], "mixed precision 'fp16' runs on CUDA only; on cpu allowed: 'auto', 'bf16' or 'no'"),
    (["--batch_size=10000000000000"], "--batch_size=10000000000000: the samples need about 10,245,120 GB on "),
]


@pytest.mark.parametrize("flags, message", SAMPLE_FLAGS, ids=[" ".join(f) for f, _ in SAMPLE_FLAGS])
def test_bad_sample_flags(trained_run, flags, message):
    assert_refused(run("sample.py", "--workdir", trained_run, *flags), "error: " + message)
    outputs = os.path.join(trained_run, "sample_outputs")  # checked writable (created empty) before loading
    assert not os.path.exists(outputs) or not os.listdir(outputs)


IMAGE_FLAGS = [
    (["--interpolate", "--image_a={png}"], "--image_a given alone"),
    (["--interpolate", "--image_b={png}"], "--image_b given alone"),
    (["--image_a={png}", "--image_b={png}"], "without --interpolate"),
    (["--image={png}"], "--image={png} given without --resample_below or --resample_above"),
    (["--resample_below=1"], "--resample_below given without --image"),
    (["--image={png}", "--resample_below=1", "--resample_above=1"], "both --resample_below and --resample_above"),
    (["--image={png}", "--resample_below=1", "--same_init"], "--same_init cannot be combined"),
    (["--image={png}", "--resample_below=-1"], "--resample_below=-1: an integer in 0..K"),
    (["--image={text}", "--resample_below=1"], "image '{text}' cannot be read"),
    (["--interpolate", "--image_a={png}", "--image_b={missing}"], "image '{missing}' cannot be read"),
    (["--image={png}", "--resample_above=6"], "--resample_above=6: an integer in 0..5"),  # K = 5: after loading
    (["--image={png}", "--resample_below=1", "--steps=2"], "--steps=2 with --image"),
    (
        ["--image={png}", "--resample_below=1", "--batch_size=10000000000000"],
        "--batch_size=10000000000000: the samples",
    ),
    (["--interpolate", "--image_a={png}", "--image_b={png}", "--steps=2"], "allowed: with --deterministic"),
    (
        ["--interpolate", "--image_a={png}", "--image_b={png}", "--deterministic", "--mixed_precision=bf16"],
        "--mixed_precision=bf16 with --image_a/--image_b: latents are encoded and decoded in float32",
    ),
]


@pytest.mark.parametrize("flags, message", IMAGE_FLAGS, ids=[" ".join(f) for f, _ in IMAGE_FLAGS])
def test_bad_image_flags_of_sample(trained_run, tmp_path, flags, message):
    from PIL import Image

    names = {"png": str(tmp_path / "a.png"), "text": str(tmp_path / "a.txt"), "missing": str(tmp_path / "no.png")}
    Image.new("L", (8, 8)).save(names["png"])
    (tmp_path / "a.txt").write_text("not an image")
    result = run("sample.py", "--workdir", trained_run, *[flag.format(**names) for flag in flags])
    assert_refused(result, "error: ", message.format(**names))
    outputs = os.path.join(trained_run, "sample_outputs")
    assert not os.path.exists(outputs) or not os.listdir(outputs)


def test_damaged_or_bad_run_configs_are_named(trained_run, tmp_path):
    """The run's config comes from its checkpoint, or from config.json for checkpoints of the first format."""
    state = load_checkpoint(RunDir(trained_run).meta_checkpoint)
    first_format = {key: value for key, value in state.items() if key not in ("config", "format_version")}
    for name, message in [
        ("truncated", "config.json is unreadable (JSONDecodeError"),
        ("bad_value", "config.json: training.batch_size=0: an integer >= 1"),
        ("missing_key", "config.json: model.K is missing from the config"),
        ("bad_value_in_checkpoint", "checkpoint.pth: eval.batch_size=0: an integer >= 1"),
    ]:
        workdir = tmp_path / name
        shutil.copytree(trained_run, workdir)
        run_dir = RunDir(str(workdir))
        config = json.loads((workdir / "config.json").read_text())
        if name == "bad_value_in_checkpoint":
            stored = config_from_dict(state["config"])
            stored.unlock()
            stored.eval.batch_size = 0
            save_checkpoint([run_dir.meta_checkpoint], {k: v for k, v in state.items() if k != "config"}, stored)
        else:
            torch.save(first_format, run_dir.meta_checkpoint)
        if name == "bad_value":
            config["training"]["batch_size"] = 0
        if name == "missing_key":
            del config["model"]["K"]
        (workdir / "config.json").write_text('{"seed": 4' if name == "truncated" else json.dumps(config))
        assert_refused(run("sample.py", "--workdir", str(workdir)), message)
        assert not (workdir / "sample_outputs").exists() or not os.listdir(workdir / "sample_outputs")


class GetcwdPayload:
    """Unpickles to a call of os.getcwd: a stand-in for code hidden in a checkpoint."""

    def __reduce__(self):
        return (os.getcwd, ())


@pytest.mark.parametrize("hostile", ["pickled_code", "image_size_100000"])
def test_hostile_checkpoints_are_refused_in_one_line(trained_run, tmp_path, hostile):
    """A pickled object (torch's refusal is 6 lines of advice on weights_only) and a stored config whose model
    cannot be allocated (a 51-line allocator traceback) are each one line naming the checkpoint."""
    workdir = tmp_path / hostile
    shutil.copytree(trained_run, workdir)
    meta = RunDir(str(workdir)).meta_checkpoint
    state = load_checkpoint(meta)
    if hostile == "pickled_code":
        torch.save(dict(state, net=GetcwdPayload()), meta)
        expected = "holds objects that a weights-only load refuses (Trying to load unsupported GLOBAL posix.getcwd"
    else:
        stored = config_from_dict(state["config"])
        stored.unlock()
        stored.data.image_size, stored.model.K = 100000, 10**6  # the heat decay tables alone: 800 GB
        save_checkpoint([meta], {k: v for k, v in state.items() if k != "config"}, stored)
        expected = "(image_size=100000, K=1000000) does not fit in memory"
    result = run("sample.py", "--workdir", str(workdir))
    assert_refused(result, meta, expected)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


EVALUATE_FLAGS = [
    (["--mode=elbo", "--elbo_passes=0"], "--elbo_passes=0: an integer >= 1"),
    (["--mode=elbo", "--batch_size=0"], "--batch_size=0: an integer >= 1"),
    (["--mode=elbo", "--num_test=-3"], "--num_test=-3: an integer >= 0"),
    (["--mode=fid", "--num_gen=0"], "--num_gen=0: an integer >= 1"),
    (["--mode=fid", "--dataset_split=val"], "--dataset_split=val: 'train' or 'test'"),
    (["--mode=nll_itd", "--logsnr_scale=0"], "--logsnr_scale=0.0: a finite number > 0"),
    (["--mode=elbo", "--steps=2"], "--steps=2 with --mode=elbo"),
    (["--mode=fid", "--steps=0"], "--steps=0: an integer in 1..K"),
    (["--mode=fid", "--steps=9"], "--steps=9: an integer in 1..5"),
    (["--mode=fid", "--steps=2"], "steps=2: the ihdm process cannot skip levels"),
    (["--mode=fid", "--eta=2"], "--eta=2.0: a number in [0, 1]"),
    (["--mode=elbo", "--mixed_precision=bf16"], "--mixed_precision=bf16 with --mode=elbo; allowed: with --mode=fid"),
    (["--mode=fid", "--mixed_precision=fp16"], "mixed precision 'fp16' runs on CUDA only"),
    (["--mode=elbo", "--param_name="], "--param_name=: a name (not empty, no '/')"),
    (["--mode=nll_ode", "--ode_rtol=0"], "--ode_rtol=0.0: a finite number > 0 (the solver's relative tolerance)"),
    (["--mode=nll_ode", "--ode_atol=-1e-5"], "--ode_atol=-1e-05: a finite number > 0"),
    (["--mode=nll_ode", "--hutchinson_probes=0"], "--hutchinson_probes=0: an integer >= 1 (Rademacher probes"),
    (["--mode=nll_ode"], "--mode=nll_ode: the 'ihdm' process has no probability-flow ODE"),
]


@pytest.mark.parametrize("flags, message", EVALUATE_FLAGS, ids=[" ".join(f) for f, _ in EVALUATE_FLAGS])
def test_bad_evaluate_flags_are_refused_before_any_statistics(trained_run, tmp_path, flags, message):
    stats = tmp_path / "stats"
    result = run(
        "evaluate.py", "--workdir", trained_run, f"--stats_dir={stats}", "--feature_net=fast_random_conv", *flags
    )
    assert_refused(result, "error: " + message)
    results = os.path.join(trained_run, "evaluation_results")  # checked writable (created empty) before loading
    assert not stats.exists() and not any(files for _, _, files in os.walk(results))


def test_bad_visualize_and_suggest_flags(tmp_path):
    out = tmp_path / "forward.png"
    for flag, message in [("--num_levels=0", "--num_levels=0: an integer >= 2"), ("--num_images=0", "--num_images=0")]:
        result = run("-m", "scripts.visualize_forward", "--config", TINY, flag, f"--out={out}")
        assert_refused(result, "error: " + message)
    assert_refused(run("-m", "scripts.visualize_forward", "--config", TINY, "--config.model.K=-1"), "model.K=-1")
    assert_refused(run("-m", "scripts.suggest_logsnr", "--config", TINY, "--num_items=1"), "--num_items=1")
    assert not out.exists()


def test_bad_benchmark_blur_flags():
    for flag, message in [
        ("--sizes=0", "--sizes entry '0'; allowed: integers >= 2"),
        ("--sizes=32,x", "--sizes entry 'x'"),
        ("--batch=0", "--batch=0; allowed: a positive integer"),
        ("--device=gpu", "--device=gpu; allowed: cpu, cuda"),
    ]:
        assert_refused(run("-m", "scripts.benchmark_blur", flag), "error: " + message)


def torch_is_loading(pid: int) -> bool:
    """Whether process ``pid`` has mapped torch's library (train.py imports torch once its flags are parsed)."""
    try:
        return "libtorch" in open(f"/proc/{pid}/maps").read()
    except OSError:
        return False


def test_ctrl_c_during_start_up_is_one_quiet_line(tmp_path):
    workdir = tmp_path / "run"
    command = [sys.executable, "train.py", "--config", TINY, "--workdir", str(workdir)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while process.poll() is None and not torch_is_loading(process.pid):
        time.sleep(0.01)  # a state, not a time: the command has parsed its flags and is importing torch
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert err.strip().splitlines()[-1] == "interrupted by Ctrl-C" and "Traceback" not in out + err, err
    assert not os.path.exists(RunDir(str(workdir)).meta_checkpoint)


def test_zero_switches_periodic_actions_off(tmp_path):
    config = tiny.get_config()
    config.training.update(
        dict(n_iters=4, snapshot_freq=0, snapshot_freq_for_preemption=0, sampling_freq=0, log_freq=0)
    )
    validate_config(config)
    Trainer(config, str(tmp_path), torch.device("cpu")).run()
    run_dir = RunDir(str(tmp_path))
    assert load_checkpoint(run_dir.meta_checkpoint)["step"] == 4  # the final state is still saved
    assert not os.path.exists(run_dir.path("checkpoints")) and not os.path.exists(run_dir.path("samples"))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(run_dir.path("tensorboard")).Reload()
    assert [e.step for e in events.Scalars("loss")] == [4]  # logged once, at the last step


def test_every_shipped_config_passes_validation():
    for path in CONFIG_FILES + [os.path.join(ROOT, TINY)]:
        validate_config(load_config_file(path))


def write_images(folder, count, corrupt=()):
    from PIL import Image

    folder.mkdir()
    generator = torch.Generator().manual_seed(0)
    for index in range(count):
        pixels = torch.randint(0, 256, (12, 10, 3), generator=generator, dtype=torch.uint8).numpy()
        Image.fromarray(pixels).save(folder / f"img{index}.png")
    for index in corrupt:
        data = (folder / f"img{index}.png").read_bytes()
        (folder / f"img{index}.png").write_bytes(data[: len(data) // 2])  # a truncated download


def test_an_unreadable_image_is_skipped_with_a_warning_naming_it(tmp_path, capfd):
    write_images(tmp_path / "images", 4, corrupt=[1])
    dataset = build_dataset(
        "image_folder", split="train", image_size=(8, 8), num_channels=3, root=str(tmp_path / "images")
    )
    first = [dataset[i] for i in range(4)]
    again = dataset[1]
    assert torch.equal(first[1], first[2]) and torch.equal(again, first[2])  # the next image takes its place
    warnings = [line for line in capfd.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and str(tmp_path / "images" / "img1.png") in warnings[0]

    write_images(tmp_path / "broken", 2, corrupt=[0, 1])
    broken = build_dataset(
        "image_folder", split="train", image_size=(8, 8), num_channels=3, root=str(tmp_path / "broken")
    )
    with pytest.raises(DatasetUnavailable, match=f"no image in {tmp_path / 'broken'} can be read"):
        broken[0]


@pytest.mark.parametrize("config_file", ["configs/cifar10/default_cifar10_configs.py", "configs/mnist/small_mnist.py"])
def test_offline_dataset_hint_works_for_the_config_at_hand(monkeypatch, config_file):
    """Offline, the hint's overrides turn the config into one that builds and runs on the embedded digits."""
    import scripts.runtime.compat
    from scripts.config import build

    class Offline:
        def __getattr__(self, name):
            def constructor(**kwargs):
                raise OSError("no network")

            return constructor

    monkeypatch.setattr(scripts.runtime.compat, "import_torchvision", lambda: type("tv", (), {"datasets": Offline()}))
    config = load_config_file(os.path.join(ROOT, config_file))
    config.data.dataset = {"mnist5k": "mnist"}.get(config.data.dataset, config.data.dataset)
    config.data.root = "does-not-matter"
    with pytest.raises(DatasetUnavailable) as refused:
        build.build_data(config, "train", build.build_process(config))
    overrides = re.findall(r"--config\.([\w.]+)=(\S+)", str(refused.value))
    assert overrides and ("data.dataset", "mnist5k") in overrides
    config.unlock()
    for key, value in overrides:
        group, name = key.split(".")
        config[group][name] = int(value) if value.isdigit() else value
    validate_config(config)
    process = build.build_process(config)
    data = build.build_data(config, "train", process)
    net = build.build_network(config)
    batch = data.prepare(torch.stack([data.dataset[0]]))
    with torch.no_grad():
        losses, _ = process.loss(net, batch, torch.Generator().manual_seed(0))
    assert losses.shape == (1,) and torch.isfinite(losses).all()


def test_sample_folders_of_different_requests_do_not_overwrite_each_other(trained_run):
    """A second call with another --batch_size, --delta and config keeps the first call's samples."""
    import numpy as np

    other_config = ["--config", TINY, "--config.training.n_iters=2", "--config.model.delta=0.03"]
    folders = []
    for flags in (["--batch_size=2"], ["--batch_size=3", "--delta=0.02", *other_config]):
        result = run("sample.py", "--workdir", trained_run, *flags)
        assert result.returncode == 0, result.stderr
        folders.append(os.path.dirname(result.stdout.strip().splitlines()[-1].strip()))
    names = [os.path.basename(folder) for folder in folders]
    assert names[0] == "random_n2_checkpoint0_step2_seed0"
    assert re.fullmatch(r"random_n3_checkpoint0_step2_seed0_delta0.02_config[0-9a-f]{8}", names[1]), names[1]
    for folder, count in zip(folders, (2, 3)):
        assert np.load(os.path.join(folder, "samples.npz"))["samples"].shape[0] == count


@pytest.fixture(scope="module")
def trained_points(tmp_path_factory):
    """A 2D DDPM (gaussian + identity, logistic log SNR) trained for 3 steps: enough to evaluate."""
    workdir = str(tmp_path_factory.mktemp("points"))
    config = load_config_file(os.path.join(ROOT, "configs", "toy2d", "correlated_gaussian.py"))
    config.model.update(dict(K=10, mlp_hidden=16, mlp_depth=1))
    config.training.update(dict(n_iters=3, batch_size=64, num_samples=16))
    Trainer(config, workdir, torch.device("cpu")).run()
    return workdir


def test_nll_itd_records_its_estimate_before_the_variational_bound(trained_points, monkeypatch):
    import scripts.evaluation.itd_eval as itd_eval
    from scripts.evaluation.evaluator import EvaluationRequest, evaluate

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C during the K-step bound

    request = EvaluationRequest(
        config=None, workdir=trained_points, mode="nll_itd", experiment_name="itd", num_test=64, num_logsnr=4
    )
    monkeypatch.setattr(itd_eval, "ddpm_bound", interrupted)
    with pytest.raises(KeyboardInterrupt):
        evaluate(request)
    results = os.path.join(trained_points, "evaluation_results", "itd", "results.json")
    saved = json.load(open(results))["default"]["nll_itd"]
    assert math.isfinite(saved["nll_nats"]) and "variational_bound" not in saved

    def must_not_run(*args, **kwargs):
        raise AssertionError("--novariational_bound must skip the bound")

    monkeypatch.setattr(itd_eval, "ddpm_bound", must_not_run)
    skipped = evaluate(dataclasses.replace(request, variational_bound=False))
    assert skipped["nll_nats"] == saved["nll_nats"] and "variational_bound" not in skipped
