"""Exported models: a slim copy of a run samples bit-identically and cannot resume; the shipped quickstart model
matches its checksums, loads and decodes its latents exactly; the README's figure command draws what it says."""

import hashlib
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from scripts.api import Model
from scripts.config import build
from scripts.runs.checkpoints import load_checkpoint
from scripts.runs.rundir import RunDir
from scripts.sampling.imaging import make_grid, to_unit
from tests.helpers import train_tiny_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = os.path.join(ROOT, "pretrained", "quickstart")
EXPORTED_FILES = {"checkpoints-meta/checkpoint.pth", "config.json", "README.md"}


def command(*args):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def checksums(folder):
    """{name: sha256 hex} as listed in folder/SHA256SUMS."""
    lines = open(os.path.join(folder, "SHA256SUMS")).read().splitlines()
    return {name: digest for digest, name in (line.split("  ", 1) for line in lines)}


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train_tiny_run(str(tmp_path_factory.mktemp("export_run")))


@pytest.fixture(scope="module")
def exported(run_dir, tmp_path_factory):
    dest = str(tmp_path_factory.mktemp("exports") / "tiny")
    result = command("-m", "scripts.export_model", f"--workdir={run_dir}", f"--dest={dest}", "--about=two steps")
    assert result.returncode == 0, result.stderr
    return dest


def test_export_samples_encodes_and_scores_bit_identically(run_dir, exported):
    original, slim = Model.from_run(run_dir), Model.from_run(exported)
    assert slim.step == original.step == 2
    assert torch.equal(slim.sample(3, seed=1, temperature=0.8), original.sample(3, seed=1, temperature=0.8))
    x = original.sample(2, seed=2)
    for ours, theirs in zip(slim.encode(x), original.encode(x)):
        assert torch.equal(ours, theirs)
    assert torch.equal(slim.elbo(x), original.elbo(x))


def test_export_holds_only_what_sampling_reads_and_checks(run_dir, exported):
    path = os.path.join(exported, "checkpoints-meta", "checkpoint.pth")
    state = torch.load(path, weights_only=True)
    assert set(state) == {"step", "ema", "process", "prior", "config", "format_version", "exported"}
    full = load_checkpoint(RunDir(run_dir).meta_checkpoint)
    assert all(torch.equal(value, full["ema"][key]) for key, value in state["ema"].items())
    assert state["config"] == full["config"] and os.path.getsize(path) < 0.6 * os.path.getsize(
        RunDir(run_dir).meta_checkpoint
    )
    assert set(checksums(exported)) == EXPORTED_FILES
    assert all(sha256(os.path.join(exported, name)) == digest for name, digest in checksums(exported).items())
    if shutil.which("sha256sum"):
        assert subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=exported, capture_output=True).returncode == 0
    readme = open(os.path.join(exported, "README.md")).read()
    assert "two steps" in readme and f"--workdir={run_dir}" in readme


def test_sample_command_reads_the_export_like_the_run(run_dir, exported):
    result = command("sample.py", f"--workdir={exported}", "--batch_size=2", "--seed=4")
    assert result.returncode == 0, result.stderr
    npz = result.stdout.strip().splitlines()[-1].strip()
    assert npz.startswith(exported)
    saved = torch.from_numpy(np.load(npz)["samples"])
    assert torch.equal(saved, Model.from_run(run_dir).sample(2, seed=4))


def test_an_export_cannot_resume_training(exported):
    before = checksums(exported)
    result = command("train.py", "--config=tests/configs/tiny.py", f"--workdir={exported}")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert lines[-1].startswith("error: checkpoint ") and "is an exported model" in lines[-1], lines
    assert {name: sha256(os.path.join(exported, name)) for name in before} == before
    assert "train.lock" not in os.listdir(exported)  # nothing written when refusing


SLOW = pytest.mark.slow  # one more start of the command each; the first three cover the kinds of refusal
BAD_EXPORTS = [
    (["--workdir={missing}", "--dest={new}"], "checkpoint {missing}/checkpoints-meta/checkpoint.pth does not exist"),
    (["--workdir={run}", "--dest={exported}"], "--dest={exported}: exists; give a new folder, or --force"),
    (["--workdir={run}", "--dest={run}", "--force"], "--dest={run}: is the run itself"),
    (["--workdir={run}", "--dest={foreign}", "--force"], "--dest={foreign}: holds files that are not an export's"),
    pytest.param(["--workdir={run}", "--checkpoint=7", "--dest={new}"], "checkpoint_7.pth does not exist", marks=SLOW),
    pytest.param(["--workdir={run}", "--checkpoint=-1", "--dest={new}"], "--checkpoint=-1: an integer", marks=SLOW),
    pytest.param(["--workdir={run}"], "--dest is missing", marks=SLOW),
]


@pytest.mark.parametrize("args, message", BAD_EXPORTS)
def test_bad_export_input_is_one_line_and_writes_nothing(run_dir, exported, tmp_path, args, message):
    names = {"run": run_dir, "exported": exported, "missing": str(tmp_path / "nothing"), "new": str(tmp_path / "new")}
    names["foreign"] = str(tmp_path / "foreign")
    os.makedirs(os.path.join(names["foreign"], "notes"))
    open(os.path.join(names["foreign"], "notes", "keep.txt"), "w").close()
    before = checksums(exported)
    result = command("-m", "scripts.export_model", *[arg.format(**names) for arg in args])
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message.format(**names) in lines[0], lines[0]
    assert not os.path.exists(names["new"]) and os.listdir(names["foreign"]) == ["notes"]
    assert {name: sha256(os.path.join(exported, name)) for name in before} == before
    assert load_checkpoint(RunDir(run_dir).meta_checkpoint)["optimizer"]  # the run keeps its full state


def test_shipped_quickstart_matches_its_checksums():
    listed = checksums(SHIPPED)
    assert set(listed) == EXPORTED_FILES
    for name, digest in listed.items():
        assert sha256(os.path.join(SHIPPED, name)) == digest, name


def test_shipped_quickstart_samples_and_decodes_a_held_out_digit_exactly():
    model = Model.from_run(SHIPPED)
    assert model.step == 600 and model.shape == (1, 28, 28)
    samples = model.sample(2, seed=0)
    assert samples.shape == (2, 1, 28, 28) and torch.isfinite(samples).all()
    digit = build.build_data(model.config, "test", model.process).fetch(torch.tensor([0]))
    assert (model.decode(model.encode(digit)) - digit).abs().max() < 1e-5


def test_figure_command_draws_the_temperature_rows_and_the_edits(run_dir, tmp_path):
    out = str(tmp_path / "figures")
    args = ["--temperatures=1,0.5,0", "--num_samples=3", "--seed=2", "--below=0,2", "--above=5", "--test_index=4"]
    args.append("--save_test=4")
    result = command("-m", "scripts.make_figures", f"--workdir={run_dir}", f"--out={out}", *args)
    assert result.returncode == 0, result.stderr
    model = Model.from_run(run_dir)
    unit = lambda x: to_unit(x, model.process.data_range)
    rows = torch.cat([model.sample(3, seed=2, temperature=t) for t in (1.0, 0.5, 0.0)])
    picture = np.asarray(Image.open(os.path.join(out, "temperature.png")).convert("RGB"))
    assert np.array_equal(picture, make_grid(unit(rows), 3))
    edits = np.asarray(Image.open(os.path.join(out, "level_of_detail.png")).convert("RGB"))
    digit = build.build_data(model.config, "test", model.process).fetch(torch.tensor([4]))
    decoded = model.decode(model.encode(digit, seed=2))
    variations = [model.resample(digit[0], 3, seed=2, **edit) for edit in ({"below": 0}, {"below": 2}, {"above": 5})]
    assert np.array_equal(edits, make_grid(unit(torch.cat([t for v in variations for t in (decoded, v)])), 4))
    tile = 8 + 2  # 8x8 images, 2 pixels apart: below 0 gives the held-out digit four times (to 8-bit rounding)
    below_zero = make_grid(unit(digit.expand(4, -1, -1, -1)), 4)
    assert np.abs(edits[: tile + 2].astype(int) - below_zero.astype(int)).max() <= 1
    assert np.abs(edits[tile : 2 * tile + 2].astype(int) - below_zero.astype(int)).max() > 0  # below 2: new detail
    saved = model.load_images([os.path.join(out, "mnist5k_test_4.png")])  # the stored digit, loaded back exactly
    assert torch.equal(saved, digit)


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--below=21", "--below=21: integers in 0..5"),
        pytest.param("--temperatures=-1", "--temperatures=-1: numbers >= 0", marks=SLOW),
    ],
)
def test_figure_command_refuses_bad_levels_in_one_line(run_dir, tmp_path, flag, message):
    out = str(tmp_path / "figures")
    result = command("-m", "scripts.make_figures", f"--workdir={run_dir}", f"--out={out}", flag)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and lines[-1] == "error: " + message, lines
    assert not os.path.exists(out) or not os.listdir(out)


def test_figure_command_can_save_no_test_images(run_dir, tmp_path):
    out = tmp_path / "figures"
    args = ["--temperatures=1", "--num_samples=1", "--below=0", "--above=5", "--save_test="]
    result = command("-m", "scripts.make_figures", f"--workdir={run_dir}", f"--out={out}", *args)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(out)) == ["level_of_detail.png", "temperature.png"]


def export_in_process(run_dir, dest):
    from scripts import export_model

    return export_model.export(run_dir, 0, str(dest), about="in process")


def test_a_failed_export_leaves_the_previous_one_and_the_next_clears_stale_staging(run_dir, tmp_path, monkeypatch):
    """--force writes a staging folder and renames it into place: a failure after the new checkpoint was written
    (here at the last file, SHA256SUMS, after a README with another text) leaves DEST exactly as it was and no
    staging folder; what a killed export leaves beside DEST (staging folders of another PID) the next one removes."""
    from scripts import export_model
    from scripts.cli.errors import RunDirError

    dest = tmp_path / "tiny"
    export_in_process(run_dir, dest)
    before = {name: sha256(os.path.join(dest, name)) for name in checksums(dest)}
    real_write = export_model.write_atomic

    def full_disk(path, payload):
        if path.endswith("SHA256SUMS"):
            raise RunDirError(f"cannot write {path}: No space left on device; nothing was written")
        real_write(path, payload)

    monkeypatch.setattr(export_model, "write_atomic", full_disk)
    with pytest.raises(RunDirError, match="No space left on device"):
        export_model.export(run_dir, 0, str(dest), about="a new text")
    assert {name: sha256(os.path.join(dest, name)) for name in before} == before
    assert sorted(os.listdir(tmp_path)) == [".tiny.lock", "tiny"]
    monkeypatch.setattr(export_model, "write_atomic", real_write)
    for stale in (".tiny.tmp-999999999", ".tiny.old.tmp-999999998"):
        os.makedirs(tmp_path / stale / "checkpoints-meta")
    export_in_process(run_dir, dest)
    assert sorted(os.listdir(tmp_path)) == [".tiny.lock", "tiny"]
    Model.from_run(str(dest))  # checks SHA256SUMS


@pytest.mark.parametrize("change", ["README.md", "checkpoints-meta/checkpoint.pth", "SHA256SUMS"])
def test_an_export_whose_files_do_not_match_its_checksums_is_refused(run_dir, tmp_path, change):
    """A folder mixed from two exports (as a killed overwrite left them before) or edited by hand is refused
    in one line naming the file; the checkpoint is changed by a valid resave, so only the checksum notices."""
    from scripts.cli.errors import CheckpointError

    dest = tmp_path / "tiny"
    export_in_process(run_dir, dest)
    path = os.path.join(dest, change)
    if change.endswith(".pth"):
        state = torch.load(path, weights_only=True)
        torch.save(dict(state, step=state["step"] + 1), path)
    elif change == "SHA256SUMS":
        os.remove(path)  # an export killed before its last file (or a folder copied without it)
    else:
        with open(path, "a") as handle:
            handle.write("\n")
    with pytest.raises(CheckpointError) as error:
        Model.from_run(str(dest))
    message = str(error.value)
    expected = "has no readable SHA256SUMS" if change == "SHA256SUMS" else f"SHA256SUMS: {change} (changed)"
    assert "\n" not in message and expected in message, message
