"""The dataset tool: a prepared zip reads back equal to the folder loader, skips bad files, names its content."""

import json
import os
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from scripts.data.datasets.prepared import MANIFEST_NAME, read_manifest
from tests.helpers import build_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tool(*args):
    command = [sys.executable, "-m", "scripts.dataset_tool", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def make_source(folder, count=5, corrupt=True):
    """Random RGB images of varied shapes (PNG and JPEG, one in a subfolder) and optionally one corrupt file."""
    rng = np.random.default_rng(0)
    os.makedirs(os.path.join(folder, "sub"))
    for i in range(count):
        array = rng.integers(0, 256, (20 + 3 * i, 30 - i, 3), dtype=np.uint8)
        name = os.path.join(folder, "sub", f"im{i}.png") if i % 2 else os.path.join(folder, f"im{i}.jpg")
        Image.fromarray(array).save(name)
    if corrupt:
        with open(os.path.join(folder, "broken.png"), "wb") as handle:
            handle.write(b"not an image at all")
    return folder


def test_round_trip_equals_folder_loader_and_bad_file_is_counted(tmp_path):
    source = make_source(str(tmp_path / "src"))
    os.makedirs(os.path.join(source, "test"))  # the held-out split: left out, as the folder's training split leaves it
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(os.path.join(source, "test", "held_out.png"))
    dest = str(tmp_path / "out.zip")
    done = tool("--source", source, "--dest", dest, "--resolution", "8")
    assert done.returncode == 0, done.stderr
    assert "skipped 1 unreadable file(s): broken.png" in done.stderr
    manifest = read_manifest(dest)
    assert (manifest["count"], manifest["resolution"], manifest["channels"]) == (5, [8, 8], 3)
    prepared = build_dataset("prepared", split="train", image_size=(8, 8), num_channels=3, root=dest)
    folder = build_dataset("image_folder", split="train", image_size=(8, 8), num_channels=3, root=source)
    readable = [i for i, name in enumerate(folder.names) if name != "broken.png"]
    assert torch.equal(prepared.items, torch.stack([folder[i] for i in readable]))


def test_refuses_to_overwrite_and_checks_config(tmp_path):
    source = make_source(str(tmp_path / "src"), corrupt=False)
    dest = str(tmp_path / "out.zip")
    assert tool("--source", source, "--dest", dest, "--resolution", "8", "--channels", "1").returncode == 0
    before = open(dest, "rb").read()
    again = tool("--source", source, "--dest", dest, "--resolution", "16")
    assert again.returncode == 1 and again.stderr.strip().splitlines()[-1].startswith("error: --dest=")
    assert open(dest, "rb").read() == before
    with pytest.raises(ValueError, match="holds 8x8 images with 1 channel"):
        build_dataset("prepared", split="train", image_size=(16, 16), num_channels=1, root=dest)


def test_fingerprint_changes_with_one_pixel(tmp_path):
    source = make_source(str(tmp_path / "src"), corrupt=False)
    first, second = str(tmp_path / "a.zip"), str(tmp_path / "b.zip")
    assert tool("--source", source, "--dest", first, "--resolution", "8").returncode == 0
    image = np.asarray(Image.open(os.path.join(source, "im0.jpg"))).copy()
    image[:, :] = 255 - image[:, :]  # JPEG is lossy: change the image enough that one stored pixel surely differs
    Image.fromarray(image).save(os.path.join(source, "im0.jpg"))
    assert tool("--source", source, "--dest", second, "--resolution", "8").returncode == 0
    assert read_manifest(first)["fingerprint"] != read_manifest(second)["fingerprint"]


def test_fingerprint_sees_a_single_pixel(tmp_path):
    from scripts.data.datasets.prepared import write_prepared

    images = torch.randint(0, 256, (3, 1, 4, 4), dtype=torch.uint8)
    changed = images.clone()
    changed[2, 0, 3, 3] ^= 1
    prints = [
        write_prepared(
            str(tmp_path / f"{i}.zip"), ((x, None) for x in batch), resolution=(4, 4), channels=1, source="t"
        )
        for i, batch in enumerate((images, changed, images))
    ]
    assert prints[0]["fingerprint"] == prints[2]["fingerprint"] != prints[1]["fingerprint"]
    with zipfile.ZipFile(tmp_path / "0.zip") as archive:
        assert json.loads(archive.read(MANIFEST_NAME))["count"] == 3
        assert all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())


def test_the_configured_split_names_its_fingerprint_without_decoding_an_image(tmp_path, monkeypatch):
    """A prepared zip's split answers its manifest's fingerprint (the test split: ``<stem>_test.zip``) with no
    image decoded; a dataset without a content fingerprint answers None."""
    from configs.default import get_default_configs
    from scripts.config import build
    from scripts.data.datasets import prepared

    manifests = {
        split: prepared.write_prepared(
            str(tmp_path / name),
            ((torch.full((1, 4, 4), value, dtype=torch.uint8), None) for value in (split == "test", 7)),
            resolution=(4, 4),
            channels=1,
            source=split,
        )
        for split, name in (("train", "m.zip"), ("test", "m_test.zip"))
    }
    monkeypatch.setattr(prepared, "decode_png", lambda *args: pytest.fail("an image was decoded"))
    config = get_default_configs()
    config.data.update(dataset="prepared", root=str(tmp_path / "m.zip"))
    for split, manifest in manifests.items():
        assert build.data_fingerprint(config, split) == manifest["fingerprint"]
    assert manifests["train"]["fingerprint"] != manifests["test"]["fingerprint"]
    config.data.update(dataset="mnist5k", root="")
    assert build.data_fingerprint(config, "train") is None


def test_named_source_equals_training_resize(tmp_path):
    dest = str(tmp_path / "m.zip")
    assert tool("--source", "mnist5k", "--dest", dest, "--resolution", "16", "--max_images", "20").returncode == 0
    prepared = build_dataset("prepared", split="train", image_size=(16, 16), num_channels=1, root=dest)
    digits = build_dataset("mnist5k", split="train", image_size=(16, 16), num_channels=1, root="")
    assert torch.equal(prepared.items, digits.items[:20])
    with zipfile.ZipFile(dest) as archive:  # the source's class labels are recorded
        assert json.loads(archive.read(MANIFEST_NAME))["labels"] == digits.labels[:20].tolist()


def run_cli(*args, check=True):
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert not check or result.returncode == 0, result.stderr
    return result


def test_train_on_prepared_zip_then_reference_stats_by_fingerprint(tmp_path):
    """A run trained from a prepared zip: fid_ref caches statistics keyed by the zip's fingerprint, fid finds them,
    and statistics recording another fingerprint are refused with one line."""
    from scripts.evaluation.reference_stats import ReferenceStats, load_reference_stats, save_reference_stats

    dest, workdir, stats = str(tmp_path / "m.zip"), str(tmp_path / "run"), str(tmp_path / "stats")
    assert tool("--source", "mnist5k", "--dest", dest, "--resolution", "8", "--max_images", "32").returncode == 0
    data = ["--config.data.dataset=prepared", f"--config.data.root={dest}"]
    run_cli("train.py", "--config", "tests/configs/tiny.py", "--workdir", workdir, *data, "--config.training.n_iters=2")
    fast = ["--feature_net=fast_random_conv", f"--stats_dir={stats}", "--batch_size=8"]
    reference = run_cli("evaluate.py", "--workdir", workdir, "--mode=fid_ref", *fast)
    fingerprint = read_manifest(dest)["fingerprint"]
    name = f"prepared-{fingerprint[:16]}_train_8_fast_random_conv.npz"
    assert os.listdir(stats) == [name] and fingerprint[:16] in reference.stdout.strip().splitlines()[-1]
    cached = load_reference_stats(os.path.join(stats, name), "fast_random_conv", fingerprint)
    assert cached.num_images == 32 and cached.features.shape == (32, 256)  # features kept for KID
    fid = run_cli("evaluate.py", "--workdir", workdir, "--mode=fid", "--num_gen=4", "--num_seeds=2", *fast)
    assert "computing" not in fid.stdout and fid.stdout.strip().splitlines()[-1].startswith("FID (fast_random_conv")
    result = json.load(open(os.path.join(workdir, "evaluation_results", "default", "results.json")))["default"]["fid"]
    assert result["reference_fingerprint"] == fingerprint and result["feature_network"] == "fast_random_conv"
    # two disjoint seed sets: different samples, so different FIDs; mean and sample std of exactly those two
    assert result["seed_sets"] == [[0, 3], [4, 7]] and result["num_gen"] == 4
    first, second = result["fid_per_seed_set"]
    assert first != second and result["fid_mean"] == pytest.approx((first + second) / 2)
    assert result["fid_std"] == pytest.approx(abs(first - second) / 2**0.5)
    assert len(result["kid_per_seed_set"]) == 2 and result["kid_mean"] == pytest.approx(
        sum(result["kid_per_seed_set"]) / 2
    )
    # the last number printed is the headline's value, the mean FID (KID and the std come before it)
    last_number = re.findall(r"[-+]?\d+\.\d+", fid.stdout.strip().splitlines()[-1])[-1]
    assert float(last_number) == round(result["fid_mean"], 4) and f"KID {result['kid_mean']:.6f}" in fid.stdout
    other = ReferenceStats(cached.mu, cached.sigma, cached.network, 32, "elsewhere", "0" * 64)
    save_reference_stats(os.path.join(stats, name), other)
    refused = run_cli("evaluate.py", "--workdir", workdir, "--mode=fid", "--num_gen=4", *fast, check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "belong to data with fingerprint 0000000000000000" in refused.stderr.strip().splitlines()[-1]


def test_fid_during_training_is_logged_to_tensorboard(tmp_path):
    """A tiny run with training.fid_freq=2 logs fid/fast_random_conv at steps 2 and 4, and the reference statistics
    of its prepared zip are cached under the zip's fingerprint."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    dest, workdir, stats = str(tmp_path / "m.zip"), str(tmp_path / "run"), str(tmp_path / "stats")
    assert tool("--source", "mnist5k", "--dest", dest, "--resolution", "8", "--max_images", "32").returncode == 0
    fid = [
        "--config.training.fid_freq=2",
        "--config.training.fid_num_gen=4",
        "--config.training.fid_feature_net=fast_random_conv",
        f"--config.training.fid_stats_dir={stats}",
    ]
    data = ["--config.data.dataset=prepared", f"--config.data.root={dest}"]
    run_cli(
        "train.py",
        "--config",
        "tests/configs/tiny.py",
        "--workdir",
        workdir,
        *data,
        *fid,
        "--config.training.n_iters=4",
    )
    events = EventAccumulator(os.path.join(workdir, "tensorboard"))
    events.Reload()
    logged = events.Scalars("fid/fast_random_conv")
    assert [e.step for e in logged] == [2, 4] and all(e.value > 0 for e in logged)
    assert os.listdir(stats) == [f"prepared-{read_manifest(dest)['fingerprint'][:16]}_train_8_fast_random_conv.npz"]


def test_the_temporary_a_killed_tool_left_is_removed(tmp_path):
    """A kill -9 leaves ``.NAME.zip.tmp-PID``; the next tool writing NAME.zip removes it (and only it)."""
    source = make_source(str(tmp_path / "src"), count=2, corrupt=False)
    stale, other = tmp_path / ".out.zip.tmp-999999999", tmp_path / ".other.zip.tmp-999999999"
    stale.write_bytes(b"half a zip")
    other.write_bytes(b"another zip's")
    done = tool("--source", source, "--dest", str(tmp_path / "out.zip"), "--resolution", "8")
    assert done.returncode == 0, done.stderr
    assert f"removed temporary files that interrupted writes left: {stale}" in done.stdout
    assert not stale.exists() and other.exists() and read_manifest(str(tmp_path / "out.zip"))["count"] == 2
