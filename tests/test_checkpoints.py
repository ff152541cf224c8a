"""Self-describing, damage-proof checkpoints, and a run directory that loses nothing good."""

import errno
import hashlib
import os
import shutil
import subprocess
import sys

import pytest
import torch

from scripts.cli.errors import CheckpointError, ConfigMismatch, RunDirError, TrainingDiverged
from scripts.config.validate import is_free
from scripts.runs import checkpoints
from scripts.runs.checkpoints import CHECKPOINT_FORMAT, load_checkpoint, state_mismatch
from scripts.runs.runconfig import binding_differences
from scripts.runs.rundir import RunDir, config_from_dict
from scripts.runs.trained import load_trained
from scripts.storage import files
from scripts.training.trainer import Trainer
from tests.configs import tiny
from tests.helpers import load_config_file, train_tiny_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join("tests", "configs", "tiny.py")
CPU = torch.device("cpu")


def tiny_config(**training):
    config = tiny.get_config()
    config.training.sampling_freq = 1000
    for key, value in training.items():
        config.training[key] = value
    return config


def sha1(path):
    with open(path, "rb") as handle:
        return hashlib.sha1(handle.read()).hexdigest()


def run_cli(*args):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def one_error_line(result):
    """The single line a refused command prints (and nothing that looks like a traceback)."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines and lines[-1].startswith("error: "), result.stderr
    return lines[-1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run trained to step 10 (resume point and snapshot 1 at step 10)."""
    workdir = str(tmp_path_factory.mktemp("trained") / "run")
    Trainer(tiny_config(n_iters=10), workdir, CPU).run()
    return workdir


@pytest.fixture
def run_copy(trained, tmp_path):
    workdir = str(tmp_path / "run")
    shutil.copytree(trained, workdir)
    return workdir


# --- a checkpoint describes itself ----------------------------------------------------------------


def test_checkpoint_holds_format_version_and_resolved_config(trained):
    state = torch.load(RunDir(trained).meta_checkpoint, weights_only=True)
    assert state["format_version"] == CHECKPOINT_FORMAT == 2
    assert state["config"] == tiny_config(n_iters=10).to_dict() and state["step"] == 10


def test_sample_and_evaluate_from_a_checkpoint_alone(run_copy):
    os.remove(RunDir(run_copy).config_path)
    sampled = run_cli("sample.py", "--workdir", run_copy, "--batch_size=2")
    assert sampled.returncode == 0 and "2 samples (random)" in sampled.stdout, sampled.stderr
    evaluated = run_cli("evaluate.py", "--workdir", run_copy, "--mode=elbo", "--num_test=4", "--batch_size=4")
    assert evaluated.returncode == 0 and evaluated.stdout.strip().splitlines()[-1].startswith("ELBO: ")


def test_contradicting_config_is_refused_with_one_line_naming_every_key(run_copy):
    result = run_cli(
        "sample.py",
        "--config",
        TINY,
        "--workdir",
        run_copy,
        "--config.model.K=7",
        "--config.model.forward=blur",
        "--config.data.num_channels=3",
        "--config.eval.batch_size=3",  # free: not reported
    )
    line = one_error_line(result)
    meta = RunDir(run_copy).meta_checkpoint
    assert line.startswith(f"error: the --config differs from the run's (stored in {meta}) on keys that change")
    for difference in [
        "data.num_channels: run 1, --config 3",
        "model.K: run 5, --config 7",
        "model.forward: run 'heat', --config 'blur'",
    ]:
        assert difference in line
    assert "eval.batch_size" not in line and line.endswith("or another --workdir")


def test_free_keys_may_differ_and_take_effect(run_copy):
    config = tiny_config(n_iters=99)
    config.eval.batch_size, config.optim.lr, config.seed = 3, 1.0, 7
    config.model.delta, config.model.dropout, config.model.ema_rate = 0.05, 0.3, 0.5
    config.data.root, config.data.random_flip = "elsewhere", True
    model = load_trained(run_copy, 0, CPU, config=config)
    assert model.config is config and model.process.delta == 0.05 and model.step == 10


@pytest.mark.parametrize(
    "key, free",
    [
        ("eval.batch_size", True),
        ("training.n_iters", True),
        ("optim.lr", True),
        ("seed", True),
        ("model.delta", True),
        ("data.root", True),
        ("model.K", False),
        ("model.blur_sigma_max", False),
        ("model.forward", False),
        ("model.process", False),
        ("model.channel_mult", False),
        ("model.operator_seed", False),
        ("model.prior", False),
        ("data.image_size", False),
        ("data.num_channels", False),
        ("data.dataset", False),
        ("model.deltas", False),  # a prefix of a word is not a group
    ],
)
def test_free_key_rule(key, free):
    assert is_free(key) is free


def test_binding_differences_list_both_values_and_absent_keys():
    run, given = tiny.get_config(), tiny.get_config()
    given.unlock()
    given.model.channel_mult, given.model.extra, given.eval.seed = (1, 2, 2), 1, 5
    assert binding_differences(run, given) == [
        ("model.channel_mult", (1, 2), (1, 2, 2)),
        ("model.extra", "(absent)", 1),
    ]


def test_older_checkpoint_without_config_still_loads(run_copy):
    """The first format: no config and no version inside; config.json (or --config) describes the run."""
    run = RunDir(run_copy)
    state = torch.load(run.meta_checkpoint, weights_only=True)
    old = {key: value for key, value in state.items() if key not in ("config", "format_version")}
    torch.save(old, run.meta_checkpoint)
    model = load_trained(run_copy, 0, CPU)
    assert model.config.model.K == tiny.get_config().model.K and model.step == 10
    assert torch.equal(next(iter(model.net.state_dict().values())), next(iter(state["ema"].values())))
    contradicting = tiny_config()
    contradicting.model.blur_sigma_max = 9.0
    with pytest.raises(
        ConfigMismatch, match=f"run's \\({run.config_path}\\).*model.blur_sigma_max: run 4.0, --config 9.0"
    ):
        load_trained(run_copy, 0, CPU, config=contradicting)
    resumed = Trainer(tiny_config(n_iters=12), run_copy, CPU).run()
    assert resumed.step == 12 and load_checkpoint(run.meta_checkpoint)["format_version"] == CHECKPOINT_FORMAT
    os.remove(run.config_path)
    torch.save(old, run.meta_checkpoint)
    with pytest.raises(CheckpointError, match="holds no config .* pass the run's --config"):
        load_trained(run_copy, 0, CPU)


def test_a_run_stored_before_a_key_existed_loads_with_the_value_that_reproduces_it(run_copy):
    """model.prediction came later: a run stored without it predicted eps, and loads, resumes and compares so."""
    run = RunDir(run_copy)
    state = torch.load(run.meta_checkpoint, weights_only=True)
    assert state["config"]["model"].pop("prediction") == "eps"
    torch.save(state, run.meta_checkpoint)
    assert load_trained(run_copy, 0, CPU).config.model.prediction == "eps"
    predicting_v = tiny_config()
    predicting_v.model.prediction = "v"
    with pytest.raises(ConfigMismatch, match="model.prediction: run 'eps', --config 'v'"):
        load_trained(run_copy, 0, CPU, config=predicting_v)
    assert Trainer(tiny_config(n_iters=12), run_copy, CPU).run().step == 12


def store_as_before_blurring_sigma_max(path):
    """Rewrite the checkpoint at ``path`` as it was stored before model.blurring_sigma_max existed, when the blur
    operator read model.blur_sigma_max (returns the stored model group)."""
    state = torch.load(path, weights_only=True)
    model = state["config"]["model"]
    blurring = model.pop("blurring_sigma_max")
    if model["forward"] == "blur":
        model["blur_sigma_max"] = blurring
    torch.save(state, path)
    return model


def test_a_blur_run_stored_before_its_own_key_rebuilds_identically(tmp_path):
    """Its blur_sigma_max becomes blurring_sigma_max, and it samples as before."""
    from scripts.sampling.sampler import sample

    model = dict(process="gaussian", forward="blur", prior="standard_normal", blurring_sigma_max=3.0)
    workdir = train_tiny_run(str(tmp_path / "new"), **model)
    shutil.copytree(workdir, tmp_path / "old")
    stored = store_as_before_blurring_sigma_max(RunDir(str(tmp_path / "old")).meta_checkpoint)
    assert stored["blur_sigma_max"] == 3.0 and "blurring_sigma_max" not in stored
    old = load_trained(str(tmp_path / "old"), 0, CPU)
    assert old.config.model.blurring_sigma_max == 3.0 == old.process.operator.blurring_sigma_max
    draws = [
        sample(run.process, run.net, run.prior, mode="random", count=2, seed=0, shape=run.shape, device=CPU)["samples"]
        for run in (load_trained(workdir, 0, CPU), old)
    ]
    assert torch.equal(*draws)


def test_todays_blur_config_agrees_with_its_run_stored_before_blurring_sigma_max():
    """Heat's key, which such a run never set for heat, takes its default, as in today's config files."""
    config = load_config_file(os.path.join(ROOT, "configs", "mnist", "quick_blurring.py"))
    stored = config.to_dict()
    stored["model"]["blur_sigma_max"] = stored["model"].pop("blurring_sigma_max")
    assert binding_differences(config, config_from_dict(stored)) == []


def test_the_shipped_heat_run_stored_before_blurring_sigma_max_agrees_with_its_config_file():
    from configs.default import get_default_configs

    shipped = os.path.join(ROOT, "pretrained", "quickstart")
    assert "blurring_sigma_max" not in torch.load(RunDir(shipped).meta_checkpoint, weights_only=True)["config"]["model"]
    model = load_trained(
        shipped, 0, CPU, config=load_config_file(os.path.join(ROOT, "configs", "mnist", "quickstart.py"))
    )
    assert model.config.model.blur_sigma_max == 4.0
    assert (
        load_trained(shipped, 0, CPU).config.model.blurring_sigma_max == get_default_configs().model.blurring_sigma_max
    )


def test_refused_resume_writes_nothing(run_copy):
    run = RunDir(run_copy)
    before = {path: sha1(path) for path in (run.config_path, run.meta_checkpoint, run.snapshot(1))}
    config = tiny_config(n_iters=20)
    config.model.num_res_blocks = 2
    with pytest.raises(ConfigMismatch, match="model.num_res_blocks: run 1, --config 2"):
        Trainer(config, run_copy, CPU).run()
    assert {path: sha1(path) for path in before} == before


@pytest.mark.parametrize("forward", ["heat", "blur"])
def test_rebuilding_from_the_stored_config_gives_the_same_operator(forward):
    """Why the heat and blur matrices need not be saved: they are a deterministic function of the config."""
    from scripts.config import build

    config = tiny_config()
    config.model.forward = forward
    first, second = build.build_operator(config), build.build_operator(config)
    buffers = dict(second.named_buffers())
    assert len(buffers) >= 4 and not first.state_dict()  # none of them is persistent
    assert all(torch.equal(value, buffers[name]) for name, value in first.named_buffers())


def test_a_file_that_is_not_a_training_checkpoint_is_refused(tmp_path):
    path = str(tmp_path / "weights.pth")
    torch.save({"net": {}}, path)
    with pytest.raises(CheckpointError, match=f"checkpoint {path} lacks step, ema, .*not a training checkpoint"):
        load_checkpoint(path)


def test_mismatch_of_state_names_whole_entries():
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    state = {"0.weight": torch.zeros(4, 2), "0.bias": torch.zeros(3), "2.weight": torch.zeros(1)}
    assert state_mismatch(net, state) == [
        "missing: 1.weight, 1.bias",
        "unexpected: 2.weight",
        "shape in checkpoint vs model: 0.weight [4, 2] vs [3, 2]",
    ]


# --- damaged checkpoints are refused on every load --------------------------------------------------


def damage(path, tensor, edit):
    """Apply ``edit(bytearray, offset)`` at the (unique) bytes of ``tensor``'s storage in the file at ``path``."""
    data = bytearray(open(path, "rb").read())
    raw = tensor.contiguous().numpy().tobytes()
    offset = data.find(raw)
    assert offset > 0 and data.find(raw, offset + 1) == -1
    edit(data, offset + len(raw) // 2)
    with open(path, "wb") as handle:
        handle.write(data)


def sixteen_bytes_of_0x7f(data, offset):
    data[offset : offset + 16] = b"\x7f" * 16


def one_flipped_bit(data, offset):
    data[offset] ^= 0x01


@pytest.mark.parametrize("edit", [sixteen_bytes_of_0x7f, one_flipped_bit])
def test_damaged_checkpoint_is_refused_by_sample_and_resume(run_copy, edit):
    meta = RunDir(run_copy).meta_checkpoint
    state = torch.load(meta, weights_only=True)
    name, tensor = max(state["ema"].items(), key=lambda item: item[1].numel())
    damage(meta, tensor, edit)
    damaged = sha1(meta)
    silently = torch.load(meta, weights_only=True)["ema"][name]  # torch.load alone does not notice
    assert not torch.equal(silently, tensor)
    line = one_error_line(run_cli("sample.py", "--workdir", run_copy, "--batch_size=2"))
    assert line.startswith(f"error: checkpoint {meta} is damaged: record archive/data/") and "CRC-32" in line
    with pytest.raises(CheckpointError, match=f"checkpoint {meta} is damaged"):
        Trainer(tiny_config(n_iters=20), run_copy, CPU).run()
    assert sha1(meta) == damaged


# --- nothing good is overwritten or lost --------------------------------------------------------------


def max_abs_weight(path):
    return max(value.abs().max().item() for value in load_checkpoint(path)["net"].values())


def test_blown_up_weights_are_never_saved(run_copy):
    """lr 1e30 without clipping: the first step's loss is finite but its weights are ~1e30."""
    meta = RunDir(run_copy).meta_checkpoint
    before = sha1(meta)
    config = tiny_config(n_iters=50, snapshot_freq_for_preemption=1)
    config.optim.lr, config.optim.grad_clip, config.optim.warmup = 1e30, 0.0, 0
    with pytest.raises(
        TrainingDiverged, match="weights of step 11 give a training loss of (nan|inf).*last checkpoint is intact"
    ):
        Trainer(config, run_copy, CPU).run()
    assert sha1(meta) == before and max_abs_weight(meta) < 10


def test_checking_weights_before_saving_leaves_training_unchanged(tmp_path):
    every_step = Trainer(tiny_config(n_iters=6, snapshot_freq_for_preemption=1), str(tmp_path / "a"), CPU).run()
    at_end = Trainer(tiny_config(n_iters=6, snapshot_freq_for_preemption=100), str(tmp_path / "b"), CPU).run()
    for key, value in every_step.net.state_dict().items():
        assert torch.equal(value, at_end.net.state_dict()[key]), key
    for key, value in every_step.ema.shadow.state_dict().items():
        assert torch.equal(value, at_end.ema.shadow.state_dict()[key]), key


def test_growing_loss_gives_a_warning(tmp_path, capsys):
    config = tiny_config(n_iters=6, log_freq=1)
    config.optim.lr, config.optim.warmup = 1e9, 0
    Trainer(config, str(tmp_path), CPU).run()
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "the training loss grew from" in warnings[0] and "diverging" in warnings[0]


def test_kill_during_snapshot_write_loses_no_snapshot(tmp_path, monkeypatch):
    straight = str(tmp_path / "straight")
    Trainer(tiny_config(n_iters=20), straight, CPU).run()
    workdir = str(tmp_path / "killed")
    run = RunDir(workdir)
    write_atomic = files.write_atomic

    def killed_while_writing_snapshot_2(path, payload):
        if path == run.snapshot(2):
            raise KeyboardInterrupt
        write_atomic(path, payload)

    monkeypatch.setattr(checkpoints, "write_atomic", killed_while_writing_snapshot_2)
    with pytest.raises(KeyboardInterrupt):
        Trainer(tiny_config(n_iters=20), workdir, CPU).run()
    assert run.snapshot_numbers() == [1] and load_checkpoint(run.meta_checkpoint)["step"] == 15
    monkeypatch.setattr(checkpoints, "write_atomic", write_atomic)
    Trainer(tiny_config(n_iters=20), workdir, CPU).run()
    assert run.snapshot_numbers() == RunDir(straight).snapshot_numbers() == [1, 2]
    for number in (1, 2):
        resumed, reference = load_checkpoint(run.snapshot(number)), load_checkpoint(RunDir(straight).snapshot(number))
        assert all(torch.equal(value, reference["ema"][key]) for key, value in resumed["ema"].items())


def test_resume_rewrites_a_snapshot_lost_by_the_older_write_order(run_copy):
    """Older versions wrote the resume point first; a kill then lost the snapshot of that step."""
    run = RunDir(run_copy)
    expected = load_checkpoint(run.snapshot(1))["ema"]
    os.remove(run.snapshot(1))
    Trainer(tiny_config(n_iters=12), run_copy, CPU).run()
    assert run.snapshot_numbers() == [1]
    restored = load_checkpoint(run.snapshot(1))
    assert restored["step"] == 10 and all(torch.equal(v, expected[k]) for k, v in restored["ema"].items())


def test_stale_temporaries_of_other_processes_are_removed(run_copy):
    run = RunDir(run_copy)
    dead = run.path("checkpoints-meta", ".checkpoint.pth.tmp-999999999")
    other = run.path("checkpoints", f".checkpoint_2.pth.tmp-{os.getppid()}")  # a live pid, not this process
    ours = run.path("checkpoints", f".checkpoint_9.pth.tmp-{os.getpid()}")
    unrelated = run.path("checkpoints", "notes.txt")
    for path in (dead, other, ours, unrelated):
        open(path, "wb").write(b"x" * 64)
    Trainer(tiny_config(n_iters=11), run_copy, CPU).run()
    assert not os.path.exists(dead) and not os.path.exists(other)
    assert os.path.exists(ours) and os.path.exists(unrelated)


def test_second_trainer_is_refused_while_the_lock_is_held_and_not_after_its_holder_dies(run_copy):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from scripts.runs.rundir import RunDir\n"
            "with RunDir(sys.argv[1]).training_lock():\n    print('locked', flush=True); sys.stdin.read()",
            run_copy,
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline() == "locked\n"
    lock = RunDir(run_copy).lock_path
    before = sha1(RunDir(run_copy).meta_checkpoint)
    with pytest.raises(RunDirError, match=f"in use by another training process \\(pid {holder.pid} holds {lock}\\)"):
        Trainer(tiny_config(n_iters=12), run_copy, CPU).run()
    assert sha1(RunDir(run_copy).meta_checkpoint) == before
    holder.kill()
    holder.wait()
    assert Trainer(tiny_config(n_iters=12), run_copy, CPU).run().step == 12


def test_checkpoint_that_is_a_folder_is_refused_at_start(tmp_path):
    run = RunDir(str(tmp_path))
    os.makedirs(run.meta_checkpoint)
    with pytest.raises(RunDirError, match=f"{run.meta_checkpoint} is not a file"):
        Trainer(tiny_config(), str(tmp_path), CPU).run()
    assert not os.path.exists(run.config_path) and not os.path.exists(run.path("checkpoints"))


def test_full_disk_while_saving_names_the_path_and_keeps_the_previous_checkpoint(run_copy, monkeypatch):
    meta = RunDir(run_copy).meta_checkpoint
    before = sha1(meta)
    fsync = os.fsync

    def full_disk_for_checkpoints(descriptor):
        if os.readlink(f"/proc/self/fd/{descriptor}").endswith(f".pth.tmp-{os.getpid()}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        fsync(descriptor)

    monkeypatch.setattr(os, "fsync", full_disk_for_checkpoints)
    with pytest.raises(RunDirError, match=f"cannot write {meta}: No space left on device; the previous file is intact"):
        Trainer(tiny_config(n_iters=15), run_copy, CPU).run()
    assert sha1(meta) == before
    assert [name for name in os.listdir(os.path.dirname(meta)) if name != "checkpoint.pth"] == []
