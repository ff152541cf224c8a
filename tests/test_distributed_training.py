"""Training with 2 processes (torchrun and mpiexec, gloo on the CPU) equals training with one."""

import os
import signal
import subprocess
import time

import torch

from tests.helpers import ROOT
from tests.launchers import launch_command, one_thread_env

EXACT_SETTINGS = [  # every random draw exercised, dropout off (its masks are per process by design)
    "--config.model.dropout=0.0",
    "--config.data.random_flip=True",
    "--config.data.uniform_dequantization=True",
    "--config.training.sampling_freq=0",
    "--config.training.snapshot_freq=0",
    "--config.training.log_freq=2",
    # Adam's step g / (sqrt(v) + eps) turns round-off in the near-zero gradients of layers that the
    # zero-initialised output conv has just unblocked into whole steps; a larger eps keeps the test about
    # the split, not about Adam's amplification of float summation order
    "--config.optim.eps=1e-4",
]


def train(launcher, workdir, *overrides, batch_size=8, timeout=240):
    args = ["train.py", "--config", "tests/configs/tiny.py", f"--workdir={workdir}", *EXACT_SETTINGS, *overrides]
    args.append(f"--config.training.batch_size={batch_size}")
    command = launch_command(launcher, args)
    return subprocess.run(command, cwd=ROOT, env=one_thread_env(), capture_output=True, text=True, timeout=timeout)


def weights(workdir):
    state = torch.load(os.path.join(workdir, "checkpoints-meta", "checkpoint.pth"), weights_only=True)
    return state["step"], state["net"], state["ema"]


def assert_close(a, b, relative, name=""):
    """Every weight within ``relative`` of the largest weight (Adam turns float summation noise in the
    gradient of a near-zero parameter into a step of the same size, so per-tensor ratios mean little)."""
    scale = max(value.float().abs().max() for value in a.values())
    for key in a:
        assert (a[key].float() - b[key].float()).abs().max() <= relative * scale, (name, key)


CONDITIONAL = ("--config.model.num_classes=10", "--config.model.label_dropout=0.5")  # labels and their dropout too


def test_two_processes_and_accumulation_train_the_one_process_model(tmp_path):
    steps = "--config.training.n_iters=4"
    runs = {
        "one": train("python", tmp_path / "one", steps, *CONDITIONAL),
        "two": train("torchrun", tmp_path / "two", steps, *CONDITIONAL),
        "rounds": train("python", tmp_path / "rounds", steps, *CONDITIONAL, "--config.training.batch_per_device=4"),
    }
    for name, result in runs.items():
        assert result.returncode == 0, (name, result.stderr[-3000:])
    step, net, ema = weights(tmp_path / "one")
    assert step == 4
    for name in ("two", "rounds"):
        other_step, other_net, other_ema = weights(tmp_path / name)
        assert other_step == 4
        assert_close(net, other_net, 1e-5, name)
        assert_close(ema, other_ema, 1e-5, name)
    start = torch.load(tmp_path / "one" / "checkpoints-meta" / "checkpoint.pth", weights_only=True)
    assert start["config"]["training"]["batch_size"] == 8


def test_a_two_process_run_stopped_by_sigterm_resumes_to_the_uninterrupted_weights(tmp_path):
    workdir = tmp_path / "stopped"
    args = ["train.py", "--config", "tests/configs/tiny.py", f"--workdir={workdir}", *EXACT_SETTINGS]
    args += ["--config.training.n_iters=100000", "--config.training.snapshot_freq_for_preemption=3"]
    args += ["--config.training.batch_size=8"]
    process = subprocess.Popen(
        launch_command("torchrun", args),
        cwd=ROOT,
        env=one_thread_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    meta = workdir / "checkpoints-meta" / "checkpoint.pth"
    deadline = time.time() + 120
    while not meta.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert meta.exists(), stderr[-3000:]
    stopped_step = weights(workdir)[0]
    assert 3 <= stopped_step < 100000, stderr[-3000:]
    end = f"--config.training.n_iters={stopped_step + 3}"
    resumed = train("torchrun", workdir, end)
    straight = train("torchrun", tmp_path / "straight", end)
    assert resumed.returncode == 0 and straight.returncode == 0, resumed.stderr[-3000:] + straight.stderr[-3000:]
    step, net, ema = weights(workdir)
    straight_step, straight_net, straight_ema = weights(tmp_path / "straight")
    assert step == straight_step == stopped_step + 3
    for key in net:
        assert torch.equal(net[key], straight_net[key]), key
        assert torch.equal(ema[key], straight_ema[key]), key


def test_splits_that_do_not_divide_are_refused_with_both_numbers(tmp_path):
    uneven = train("torchrun", tmp_path / "a", "--config.training.n_iters=1", batch_size=7)
    assert uneven.returncode != 0
    assert "training.batch_size=7 cannot be split evenly over 2 processes" in uneven.stderr
    rounds = train("python", tmp_path / "b", "--config.training.batch_per_device=3", "--config.training.n_iters=1")
    assert rounds.returncode == 1 and "Traceback" not in rounds.stderr
    assert (
        rounds.stderr.strip()
        .splitlines()[-1]
        .startswith("error: training.batch_per_device=3 does not divide the 8 examples per process")
    )


def rank_processes(launcher_pid: int):
    """{RANK: pid} of the worker processes torchrun started (its children that carry a RANK)."""
    ranks = {}
    for child in open(f"/proc/{launcher_pid}/task/{launcher_pid}/children").read().split():
        environment = open(f"/proc/{child}/environ", "rb").read().split(b"\0")
        for entry in environment:
            if entry.startswith(b"RANK="):
                ranks[int(entry[5:])] = int(child)
    return ranks


def test_the_survivor_of_a_killed_peer_says_so_in_one_line(tmp_path):
    """kill -9 of rank 1 mid-training: rank 0's collective breaks, and it says which rank was lost in one line
    (not gloo's 30-line traceback) and exits non-zero; its checkpoint stays loadable."""
    workdir = tmp_path / "run"
    args = ["train.py", "--config", "tests/configs/tiny.py", f"--workdir={workdir}"]
    args += ["--config.training.n_iters=100000", "--config.training.snapshot_freq_for_preemption=3"]
    process = subprocess.Popen(
        launch_command("torchrun", args), cwd=ROOT, env=one_thread_env(), stderr=subprocess.PIPE, text=True
    )
    meta = workdir / "checkpoints-meta" / "checkpoint.pth"
    deadline = time.time() + 120
    while not meta.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    os.kill(rank_processes(process.pid)[1], signal.SIGKILL)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0
    assert "error: rank 0 of 2: rank 1 stopped or lost its connection" in stderr, stderr[-3000:]
    assert "[rank0]: Traceback" not in stderr and "pair.cc" not in stderr, stderr[
        -3000:
    ]  # (torchrun's own report stays)
    assert weights(workdir)[0] >= 3
