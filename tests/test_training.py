"""Training, exact resume, sampling modes, checkpoint safety, and the command-line entry points."""

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from scripts.cli.errors import CheckpointError, RunDirError, TrainingDiverged
from scripts.runs.checkpoints import load_checkpoint, save_checkpoint
from scripts.runs.rundir import RunDir
from scripts.training.trainer import Trainer
from tests.configs import tiny  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join("tests", "configs", "tiny.py")


def tiny_config(**training):
    config = tiny.get_config()
    config.data.random_flip = True
    config.data.uniform_dequantization = True
    for key, value in training.items():
        config.training[key] = value
    return config


def run_cli(*args, timeout=300, check=True):
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def sha1(path):
    with open(path, "rb") as handle:
        return hashlib.sha1(handle.read()).hexdigest()


def test_resumed_run_is_bit_identical(tmp_path):
    device = torch.device("cpu")
    straight = Trainer(tiny_config(n_iters=8, sampling_freq=100), str(tmp_path / "a"), device).run()
    Trainer(tiny_config(n_iters=3, sampling_freq=100), str(tmp_path / "b"), device).run()
    resumed = Trainer(tiny_config(n_iters=8, sampling_freq=100), str(tmp_path / "b"), device).run()
    assert resumed.step == straight.step == 8
    for name, state in [("net", lambda s: s.net.state_dict()), ("ema", lambda s: s.ema.shadow.state_dict())]:
        for key, value in state(straight).items():
            assert torch.equal(value, state(resumed)[key]), (name, key)
    for key, value in straight.optimizer.state_dict()["state"][0].items():
        assert torch.equal(value, resumed.optimizer.state_dict()["state"][0][key]), key


def test_checkpoints_and_outputs(tmp_path):
    Trainer(tiny_config(n_iters=10), str(tmp_path), torch.device("cpu")).run()
    run = RunDir(str(tmp_path))
    assert run.snapshot_numbers() == [1]  # snapshot_freq 10 -> checkpoint_1 at step 10
    state = load_checkpoint(run.meta_checkpoint)
    assert state["step"] == 10 and set(state) >= {"net", "ema", "optimizer", "scaler", "rng", "process", "prior"}
    assert os.path.isfile(run.path("samples", "iter_0000010.png")) and os.path.isfile(run.config_path)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(run.path("tensorboard")).Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"loss", "learning_rate", "grad_norm", "images_per_second"} <= scalars
    assert any(tag.startswith("loss_by_level/") for tag in scalars) and "samples" in events.Tags()["images"]
    assert [e.step for e in events.Scalars("loss")] == [5, 10]  # log_freq 5
    assert events.Scalars("learning_rate")[0].value == pytest.approx(tiny.get_config().optim.lr)


def test_atomic_save_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = str(tmp_path / "checkpoint.pth")
    config = tiny.get_config()
    save_checkpoint([path], {"step": 1}, config)
    before = sha1(path)

    def full_disk(descriptor):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(RunDirError, match=f"cannot write {path}: No space left on device; the previous file is intact"):
        save_checkpoint([path], {"step": 2}, config)
    assert sha1(path) == before and os.listdir(tmp_path) == ["checkpoint.pth"]


def test_corrupt_or_missing_checkpoint_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "checkpoint.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint(str(path))
    with pytest.raises(CheckpointError, match="checkpoint_3.pth does not exist"):
        RunDir(str(tmp_path)).checkpoint_path(3)


def test_train_kill_resume_sample_cli(tmp_path):
    workdir = str(tmp_path / "run")
    command = [
        sys.executable,
        "train.py",
        "--config",
        TINY,
        "--workdir",
        workdir,
        "--config.training.n_iters=100000",
        "--config.training.sampling_freq=100000",
    ]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    meta = RunDir(workdir).meta_checkpoint
    deadline = time.time() + 120
    while not os.path.exists(meta) and time.time() < deadline:
        time.sleep(0.2)
    second = run_cli(*command[1:], check=False)
    assert second.returncode == 1 and "Traceback" not in second.stderr, second.stderr
    assert (
        second.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: {workdir} is in use by another training process (pid {process.pid} holds")
    )
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 75, output  # stopped by SIGTERM, state saved: requeue (scripts/cli/command.py)
    assert "stopped by SIGTERM" in output
    stopped_at = load_checkpoint(meta)["step"]
    assert stopped_at >= 5

    target = stopped_at + 3
    resumed = run_cli(
        "train.py",
        "--config",
        TINY,
        "--workdir",
        workdir,
        f"--config.training.n_iters={target}",
        "--config.training.sampling_freq=100000",
    )
    assert f"resuming from {meta} at step {stopped_at}" in resumed.stdout
    assert load_checkpoint(meta)["step"] == target

    # --share_noise parses like --same_init; what each mode does is tested in-process (test_sampler.py)
    for extra, folder in [
        ([], "random_n3"),
        (["--same_init"], "same_init_n3"),
        (["--interpolate", "--num_points=5"], "interpolate_n5"),
        (["--interpolate", "--share_noise", "--num_points=5"], "interpolate_shared_noise_n5"),
    ]:
        out = run_cli(
            "sample.py", "--config", TINY, "--workdir", workdir, "--checkpoint", "0", "--batch_size=3", *extra
        )
        folder_path = os.path.join(workdir, "sample_outputs", f"{folder}_checkpoint0_step{target}_seed0")
        for name in ("samples.png", "initial.png", "process.gif", "samples.npz"):
            assert os.path.join(folder_path, name) in out.stdout
            assert os.path.getsize(os.path.join(folder_path, name)) > 0
    without_config = run_cli("sample.py", "--workdir", workdir, "--batch_size=2")
    assert "2 samples (random)" in without_config.stdout

    evaluation = run_cli(
        "evaluate.py",
        "--workdir",
        workdir,
        "--mode=elbo",
        "--experiment_name=e1",
        "--param_name=delta0.02",
        "--delta=0.02",
        "--num_test=16",
    )
    last_line = evaluation.stdout.strip().splitlines()[-1]
    assert last_line.startswith("ELBO: ") and "bits/dim" in last_line
    results = json.load(open(os.path.join(workdir, "evaluation_results", "e1", "results.json")))
    assert results["delta0.02"]["elbo"]["delta"] == 0.02 and results["delta0.02"]["elbo"]["test_images"] == 16
    assert len(results["delta0.02"]["elbo"]["per_level_nats"]["transitions"]) == tiny.get_config().model.K - 1
    assert "delta0.02 elbo" in open(os.path.join(workdir, "evaluation_results", "e1", "log.txt")).read()
    stats = str(tmp_path / "stats")
    fid = run_cli(
        "evaluate.py",
        "--workdir",
        workdir,
        "--mode=fid",
        "--feature_net=fast_random_conv",
        "--num_gen=8",
        "--batch_size=4",
        f"--stats_dir={stats}",
        "--experiment_name=e1",
    )
    assert fid.stdout.strip().splitlines()[-1].startswith("FID (fast_random_conv, 8 samples vs mnist5k train, KID ")
    assert os.listdir(stats) == ["mnist5k_train_8_fast_random_conv.npz"]
    results = json.load(open(os.path.join(workdir, "evaluation_results", "e1", "results.json")))
    assert results["default"]["fid"]["num_gen"] == 8 and results["default"]["fid"]["fid_fast_random_conv"] > 0
    other = run_cli(
        "evaluate.py",
        "--workdir",
        workdir,
        "--mode=fid",
        "--feature_net=fast_random_conv",
        "--num_gen=8",
        f"--stats_dir={stats}",
        "--dataset_name_cleanfid=afhq",
        check=False,
    )
    assert (
        other.returncode == 1 and f"{stats}/afhq_train_8_fast_random_conv.npz" in other.stderr.strip().splitlines()[-1]
    )
    bad = run_cli("evaluate.py", "--workdir", workdir, "--mode=likelihood", check=False)
    assert bad.returncode == 1 and "unknown --mode 'likelihood'; allowed:" in bad.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--config.model.forward=sharpen"], "unknown operator 'sharpen'; known: blur"),
        (["--config.model.shape=3"], "unknown config key 'model.shape'"),
        (["--config.model.K=many"], "--config.model.K=many"),
        (["--config.data.dataset=cifar9"], "unknown dataset 'cifar9'"),
    ],
)
def test_bad_training_input_gives_one_line(tmp_path, args, message):
    result = run_cli("train.py", "--config", TINY, "--workdir", str(tmp_path), *args, check=False)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: ") and message in lines[-1], result.stderr
    assert "Traceback" not in result.stderr


def test_missing_checkpoint_and_bad_mode_for_sample(tmp_path):
    result = run_cli("sample.py", "--config", TINY, "--workdir", str(tmp_path), check=False)
    assert result.returncode == 1 and "checkpoints-meta/checkpoint.pth does not exist" in result.stderr
    result = run_cli(
        "sample.py", "--config", TINY, "--workdir", str(tmp_path), "--same_init", "--interpolate", check=False
    )
    assert result.returncode == 1 and "choose at most one" in result.stderr


def test_divergence_stops_and_keeps_the_last_checkpoint(tmp_path):
    workdir = str(tmp_path)
    Trainer(tiny_config(n_iters=5, sampling_freq=100), workdir, torch.device("cpu")).run()
    meta = RunDir(workdir).meta_checkpoint
    before = sha1(meta)
    config = tiny_config(n_iters=50, sampling_freq=100)
    config.optim.lr, config.optim.grad_clip = 1e30, 0.0
    with pytest.raises(TrainingDiverged, match="the training loss became .* last checkpoint is intact"):
        Trainer(config, workdir, torch.device("cpu")).run()
    assert sha1(meta) == before


def test_ctrl_c_saves_the_state_then_reaches_the_caller_as_keyboard_interrupt(tmp_path, monkeypatch):
    """In-process (as under pytest), Ctrl-C at step 2 stops with the state saved and is not swallowed."""
    config = tiny.get_config()
    config.training.update(n_iters=50, sampling_freq=0, snapshot_freq=0, snapshot_freq_for_preemption=0)
    trainer = Trainer(config, str(tmp_path), torch.device("cpu"))
    step = trainer.train_step

    def interrupted_step(batch):
        losses = step(batch)
        if trainer.state.step == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return losses

    monkeypatch.setattr(trainer, "train_step", interrupted_step)
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    assert trainer.stopped_by == "SIGINT" and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert load_checkpoint(RunDir(str(tmp_path)).meta_checkpoint)["step"] == 2
