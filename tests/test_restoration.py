"""Restoration (cold process): SSIM against an independent computation, sample.py --restore writing the degraded
input, the restorations and the original with their metrics, evaluate.py --mode=restore's table, and the
one-line refusals of bad restoration requests."""

import json
import math
import os

import numpy as np
import pytest
import scipy.fft
import scipy.ndimage
import torch
from PIL import Image

from scripts.evaluation.image_metrics import rmse, ssim
from scripts.training.trainer import Trainer
from tests.configs import tiny
from tests.test_bad_inputs import ROOT, assert_refused, run, trained_run  # noqa: F401 (trained_run: an ihdm run)

SIZE, K, LEVEL = 28, 4, 3
SIGMA_MIN, SIGMA_MAX = 0.5, 4.0  # the heat operator's schedule in tests/configs/tiny.py


def test_ssim_agrees_with_gaussian_filtering_by_scipy():
    """The mean SSIM map over the positions whose 11 x 11 window (std 1.5, scipy's truncate 3.5 gives radius 5)
    lies inside the image, the local moments by scipy.ndimage.gaussian_filter; SSIM(x, x) = 1."""
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 20, 17, generator=generator, dtype=torch.float64)
    y = (x + 0.2 * torch.randn(x.shape, generator=generator, dtype=torch.float64)).clamp(0, 1)

    def reference(a, b):
        blur = lambda image: scipy.ndimage.gaussian_filter(image, 1.5, truncate=3.5)[5:-5, 5:-5]
        mu_a, mu_b = blur(a), blur(b)
        var_a, var_b, cov = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2, blur(a * b) - mu_a * mu_b
        c1, c2 = 0.01**2, 0.03**2
        return (((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))).mean()

    expected = [np.mean([reference(a.numpy(), b.numpy()) for a, b in zip(xs, ys)]) for xs, ys in zip(x, y)]
    np.testing.assert_allclose(ssim(x, y).numpy(), expected, rtol=1e-10)
    np.testing.assert_allclose(ssim(x, x).numpy(), 1.0, rtol=1e-12)
    with pytest.raises(ValueError, match="SSIM needs images of at least 11x11 pixels"):
        ssim(x[..., :10], y[..., :10])


def heat_blur(image: np.ndarray, level: int) -> np.ndarray:
    """A_k of the heat operator on one [H, W] image, independently: scipy's orthonormal DCT, each frequency scaled
    by exp(-lambda sigma_k^2 / 2), lambda = pi^2 (i^2 / H^2 + j^2 / W^2), sigma_k log-spaced over 1..K."""
    sigma = math.exp(math.log(SIGMA_MIN) + (level - 1) / (K - 1) * (math.log(SIGMA_MAX) - math.log(SIGMA_MIN)))
    height, width = image.shape
    frequencies = np.pi**2 * ((np.arange(height)[:, None] / height) ** 2 + (np.arange(width)[None] / width) ** 2)
    coefficients = scipy.fft.dctn(image, norm="ortho") * np.exp(-frequencies * sigma**2 / 2)
    return scipy.fft.idctn(coefficients, norm="ortho")


@pytest.fixture(scope="module")
def cold_run(tmp_path_factory):
    """A tiny cold run on the 28 x 28 embedded digits with the heat operator, trained for 2 steps."""
    folder = str(tmp_path_factory.mktemp("cold"))
    config = tiny.get_config()
    config.data.image_size = SIZE
    config.model.update(process="cold", forward="heat", K=K)
    config.training.n_iters = 2
    Trainer(config, folder, torch.device("cpu")).run()
    return folder


@pytest.fixture()
def digit():
    """A held-out digit of the embedded MNIST (docs/mnist5k_test_0.png, 28 x 28 grey) and its values in [0, 1]."""
    path = os.path.join(ROOT, "docs", "mnist5k_test_0.png")
    return path, np.asarray(Image.open(path).convert("L"), dtype=np.float64) / 255.0


def test_restore_writes_the_degraded_input_the_restorations_the_original_and_their_metrics(cold_run, digit):
    path, unit = digit
    result = run("sample.py", "--workdir", cold_run, f"--restore={path}", f"--from_level={LEVEL}", "--steps=2")
    assert result.returncode == 0, result.stderr
    folder = next(os.scandir(os.path.join(cold_run, "sample_outputs"))).path
    assert "restore_n1" in folder and f"_from{LEVEL}" in folder and "_steps2" in folder
    picture = np.asarray(Image.open(os.path.join(folder, "restoration.png")))
    columns = (picture.shape[1] - 2) // (SIZE + 2)
    assert columns == 4 and picture.shape[0] == SIZE + 4  # degraded | direct | restored | original, one row
    arrays = np.load(os.path.join(folder, "samples.npz"))
    degraded_unit = (heat_blur(2 * unit - 1, LEVEL) + 1) / 2
    np.testing.assert_allclose((arrays["degraded"][0, 0] + 1) / 2, degraded_unit, atol=2e-5)
    metrics = json.loads(open(os.path.join(folder, "metrics.json")).read())
    row = metrics["images"][0]
    assert metrics["from_level"] == LEVEL and row["image"] == path
    assert row["rmse_degraded"] == pytest.approx(np.sqrt(np.mean((degraded_unit - unit) ** 2)), abs=2e-5)
    for name in ("direct", "restored"):
        restored = torch.from_numpy((arrays[name] + 1) / 2).clamp(0, 1)
        truth = torch.from_numpy(unit)[None, None]
        assert row[f"rmse_{name}"] == pytest.approx(float(rmse(restored, truth)[0]), abs=1e-6)
        assert row[f"ssim_{name}"] == pytest.approx(float(ssim(restored, truth)[0]), abs=1e-6)
    assert f"rmse_degraded {row['rmse_degraded']:.4f}" in result.stdout


def test_restore_of_degraded_images_writes_no_metrics(cold_run, digit):
    path, _ = digit
    result = run("sample.py", "--workdir", cold_run, f"--restore={path}", "--degraded", "--seed=3")
    assert result.returncode == 0, result.stderr
    folder = [entry.path for entry in os.scandir(os.path.join(cold_run, "sample_outputs")) if "_degraded" in entry.name]
    assert len(folder) == 1 and not os.path.exists(os.path.join(folder[0], "metrics.json"))
    arrays = np.load(os.path.join(folder[0], "samples.npz"))
    np.testing.assert_allclose(arrays["degraded"], arrays["images"])  # taken as it is


def test_evaluate_restore_reports_the_degraded_direct_sampled_table(cold_run, tmp_path):
    result = run(
        "evaluate.py",
        "--workdir",
        cold_run,
        "--mode=restore",
        f"--from_level={LEVEL}",
        "--num_test=6",
        "--batch_size=4",
        "--feature_net=fast_random_conv",
        f"--stats_dir={tmp_path}",
        "--experiment_name=restore",
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Degraded" in result.stdout and "Sampled" in result.stdout
    saved = json.loads(open(os.path.join(cold_run, "evaluation_results", "restore", "results.json")).read())
    table = saved["default"]["restore"]
    assert table["from_level"] == LEVEL and table["num_test"] == 6 and table["nfe"] == LEVEL
    from scripts.config import build
    from scripts.runs.trained import load_trained

    model = load_trained(cold_run, 0, torch.device("cpu"))
    test = build.build_data(model.config, "test", model.process)
    originals = test.prepare(test.raw_batch(range(6)), augment=False).numpy()
    units = (originals + 1) / 2
    degraded = np.stack([(heat_blur(image[0], LEVEL) + 1) / 2 for image in originals])
    expected = np.mean(np.sqrt(np.mean((degraded - units[:, 0]) ** 2, axis=(1, 2))))
    assert table["rmse_degraded"] == pytest.approx(expected, abs=2e-5)
    expected_ssim = ssim(torch.from_numpy(degraded)[:, None].clamp(0, 1), torch.from_numpy(units)).mean()
    assert table["ssim_degraded"] == pytest.approx(float(expected_ssim), abs=1e-5)
    for row in ("degraded", "direct", "restored"):
        assert math.isfinite(table[f"fid_{row}"]) and 0 <= table[f"ssim_{row}"] <= 1


BAD_RESTORE = [
    (["--restore={png}", "--from_level=0"], "--from_level=0: an integer in 1..K"),
    (["--restore={png}", "--from_level=5"], "--from_level=5: an integer in 1..4"),
    (["--from_level=2"], "--from_level given without --restore"),
    (["--degraded"], "--degraded given without --restore"),
    (["--restore={png}", "--same_init"], "--same_init cannot be combined with --restore"),
    (["--restore={rgb}"], "image '{rgb}' has 3 channel(s); this model takes 1-channel images; allowed: grey"),
    (["--restore={small}", "--degraded"], "image '{small}' is 8x8 pixels; a degraded image is used as it is"),
    (["--restore={png}", "--sampler=ancestral"], "sampler='ancestral': the 'cold' process cannot run it"),
]


@pytest.mark.parametrize("flags, message", BAD_RESTORE, ids=[" ".join(f) for f, _ in BAD_RESTORE])
def test_bad_restore_requests_are_refused_in_one_line(cold_run, tmp_path, flags, message):
    names = {name: str(tmp_path / f"{name}.png") for name in ("png", "rgb", "small")}
    Image.new("L", (SIZE, SIZE)).save(names["png"])
    Image.new("RGB", (SIZE, SIZE)).save(names["rgb"])
    Image.new("L", (8, 8)).save(names["small"])
    before = set(os.listdir(os.path.join(cold_run, "sample_outputs")))
    result = run("sample.py", "--workdir", cold_run, *[flag.format(**names) for flag in flags])
    assert_refused(result, message.format(**names))
    assert set(os.listdir(os.path.join(cold_run, "sample_outputs"))) == before


def test_restoring_with_a_process_that_cannot_restore_is_refused(trained_run, tmp_path):  # noqa: F811
    path = str(tmp_path / "a.png")
    Image.new("L", (8, 8)).save(path)
    assert_refused(run("sample.py", "--workdir", trained_run, f"--restore={path}"), "the 'ihdm' process cannot restore")
    evaluated = run("evaluate.py", "--workdir", trained_run, "--mode=restore", "--feature_net=fast_random_conv")
    assert_refused(evaluated, "the 'ihdm' process cannot restore")
    assert_refused(run("evaluate.py", "--workdir", trained_run, "--from_level=2"), "--from_level=2 with --mode=fid")


def test_a_restoration_table_of_one_image_is_refused(cold_run, tmp_path):
    result = run(
        "evaluate.py",
        "--workdir",
        cold_run,
        "--mode=restore",
        "--num_test=1",
        "--feature_net=fast_random_conv",
        f"--stats_dir={tmp_path}",
        "--experiment_name=one",
    )
    assert_refused(result, "--num_test=1: the FIDs need at least 2 test images")
    assert not os.path.exists(os.path.join(cold_run, "evaluation_results", "one", "results.json"))
