"""Each operator against its formula and independent float64 computations (what every operator keeps is in
test_contract_operators.py)."""

import math

import numpy as np
import pytest
import scipy.fft
import scipy.ndimage
import torch

from model_code.dct import dct_matrix
from model_code.operators import build_operator
from model_code.operators.heat import heat_blur_schedule
from tests.helpers import make_operator

SIZE = (12, 10)


def make(name, K=6, image_size=SIZE, **model_overrides):
    return make_operator(name, K, image_size, **{"blur_sigma_max": 6.0, "blurring_sigma_max": 6.0, **model_overrides})


def all_levels(op, batch):
    return torch.arange(op.K + 1).repeat_interleave(batch)


def upstream_heat_blur(x, sigma):
    """The upstream IHDM blur, computed independently: float64 orthonormal DCT via scipy, decay, inverse."""
    height, width = x.shape[-2:]
    freqs = (np.pi * np.arange(height) / height)[:, None] ** 2 + (np.pi * np.arange(width) / width)[None, :] ** 2
    coefficients = scipy.fft.dctn(x, axes=(-2, -1), norm="ortho")
    return scipy.fft.idctn(coefficients * np.exp(-freqs * sigma**2 / 2), axes=(-2, -1), norm="ortho")


def test_dct_matrix_is_orthonormal_and_matches_scipy():
    c = dct_matrix(7, torch.float64)
    assert torch.allclose(c @ c.T, torch.eye(7, dtype=torch.float64), atol=1e-12)
    x = np.random.default_rng(0).normal(size=7)
    np.testing.assert_allclose(c.numpy() @ x, scipy.fft.dct(x, norm="ortho"), atol=1e-12)


def test_heat_schedule_is_log_spaced_with_zero_first():
    sigmas = heat_blur_schedule(5, 0.5, 8.0)
    assert sigmas[0] == 0 and sigmas.shape == (6,)
    np.testing.assert_allclose(sigmas[1:].numpy(), np.geomspace(0.5, 8.0, 5), rtol=1e-12)


def test_heat_matches_upstream_blur_at_every_level():
    op = make("heat", K=20, blur_sigma_max=16.0)
    x = torch.rand(op.K + 1, 3, *SIZE)
    y = op(x, torch.arange(op.K + 1))
    for k in range(op.K + 1):
        reference = upstream_heat_blur(x[k].double().numpy(), float(heat_blur_schedule(20, 0.5, 16.0)[k]))
        assert np.abs(y[k].numpy() - reference).max() < 1e-5, k
    assert y.dtype == torch.float32


def test_heat_is_reflecting_gaussian_blur_for_sigma_at_least_one():
    """Equal up to the aliasing of the sampled Gaussian, which is about 1e-3 at sigma = 1 and
    vanishes fast (exp(-pi^2 sigma^2 / 2) at the Nyquist frequency)."""
    op = make("heat", K=8, image_size=(16, 16), blur_sigma_min=1.0, blur_sigma_max=5.0)
    x = torch.rand(1, 1, 16, 16)
    for k in range(1, op.K + 1):
        sigma = float(op.blur_sigmas[k])
        blurred = scipy.ndimage.gaussian_filter(x[0, 0].double().numpy(), sigma, mode="reflect", truncate=12)
        error = np.abs(op(x, torch.tensor([k]))[0, 0].numpy() - blurred).max()
        assert error < (2e-3 if sigma < 1.5 else 2e-6), (sigma, error)


def test_heat_semigroup_in_tau():
    """Blurring by sigma_a then sigma_b equals blurring once by sqrt(sigma_a^2 + sigma_b^2)."""
    a, b = 1.5, 2.5

    def once(sigma):
        return make("heat", K=1, blur_sigma_min=sigma, blur_sigma_max=sigma)

    x, one = torch.rand(2, 2, *SIZE), torch.ones(2, dtype=torch.long)
    composed = once(b)(once(a)(x, one), one)
    torch.testing.assert_close(composed, once(math.hypot(a, b))(x, one), atol=1e-6, rtol=0)


def test_scalar_maps_follow_their_formulas():
    x = torch.randn(1, 1, *SIZE)
    for name, formula in [
        ("constant_velocity", lambda t: 1 - t),
        ("constant_deceleration", lambda t: (1 - t) ** 2),
        ("identity", lambda t: 1.0),
    ]:
        op = make(name, K=10)
        for k in (0, 3, 10):
            torch.testing.assert_close(op(x, torch.tensor([k])), formula(k / 10) * x)


def test_random_product_stays_finite_at_K_400_and_is_seeded():
    op = make("random_matrix_product", K=400, image_size=(16, 16))
    x = torch.rand(3, 1, 16, 16)
    y = op(x, torch.tensor([1, 200, 400]))
    assert torch.isfinite(y).all() and y.abs().max() < 1e3
    assert torch.equal(op.left, make("random_matrix_product", K=400, image_size=(16, 16)).left)
    assert not torch.equal(op.left, make("random_matrix_product", K=400, image_size=(16, 16), operator_seed=2).left)


def test_random_matrix_preserves_norm_on_average():
    op = make("random_matrix", K=50, image_size=(16, 16))
    x = torch.randn(51, 1, 16, 16)
    ratios = op(x, torch.arange(51))[1:].flatten(1).norm(dim=1) / x[1:].flatten(1).norm(dim=1)
    assert 0.7 < ratios.pow(2).mean() < 1.3


def test_blur_without_blur_is_identity_and_continuous():
    op = make("blur", blurring_sigma_max=0.0)
    x = torch.randn(3, 2, *SIZE)
    torch.testing.assert_close(op(x, torch.tensor([0.5, 2.7, 6.0])), x, atol=1e-5, rtol=0)
    blurred = make("blur")
    spectrum = blurred.spectrum(torch.tensor([6]))
    assert spectrum.min() >= 0.001 - 1e-7 and spectrum.max() <= 1 + 1e-6


def test_level_errors():
    heat = make("heat")
    with pytest.raises(ValueError, match="integer levels"):
        heat(torch.zeros(1, 1, *SIZE), torch.tensor([0.5]))
    with pytest.raises(ValueError, match=r"\[0, 6\]"):
        heat(torch.zeros(1, 1, *SIZE), torch.tensor([7]))


def test_unknown_operator_lists_known_names():
    with pytest.raises(ValueError, match="unknown operator 'sharpen'; known: blur, cold_blur, constant_deceleration"):
        build_operator("sharpen", image_size=8, K=3)


def test_build_spec_is_recorded():
    op = make("heat")
    assert op.build_spec == {
        "name": "heat",
        "kwargs": dict(image_size=SIZE, K=6, blur_sigma_min=0.5, blur_sigma_max=6.0),
    }


def test_heat_matches_the_float64_fft_blur_of_the_benchmark():
    """The benchmark's upstream-style reference (DCT through FFTs) computes the same map."""
    from scripts.benchmark_blur import upstream_blur

    op = make("heat", K=10, image_size=(8, 8))
    x, k = torch.rand(11, 3, 8, 8), torch.arange(11)
    freqs = (math.pi * torch.arange(8, dtype=torch.float64) / 8) ** 2
    torch.testing.assert_close(
        upstream_blur(x, op.blur_sigmas[k], freqs[:, None] + freqs[None, :]), op(x, k), atol=2e-6, rtol=0
    )


@pytest.mark.parametrize("height, width", [(1, 1), (2, 3), (5, 4), (7, 7), (12, 10), (16, 31)])
def test_the_dct_by_ffts_is_scipys_orthonormal_dct_and_its_inverse(float64, height, width):
    from model_code.dct import fft_dct_2d, fft_idct_2d

    x = torch.randn(2, 3, height, width, generator=torch.Generator().manual_seed(height * width))
    reference = scipy.fft.dctn(x.numpy(), axes=(-2, -1), norm="ortho")
    coefficients = fft_dct_2d(x)
    assert coefficients.dtype == torch.float64
    np.testing.assert_allclose(coefficients.numpy(), reference, atol=1e-12, rtol=0)
    np.testing.assert_allclose(fft_idct_2d(torch.from_numpy(reference)).numpy(), x.numpy(), atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", ["heat", "blur"])
def test_the_operators_by_ffts_compute_their_dense_maps(monkeypatch, name):
    """Below their thresholds the DCT operators use dense products; by FFTs (thresholds lowered to 1 pixel) they
    give the same images, coefficients (up to about 6 here) and inverse, in float32, to 1e-6 (relative for the
    coefficients)."""
    from model_code.operators.base import DCTOperator
    from model_code.operators.heat import HeatOperator

    dense = make(name, K=20, blur_sigma_max=16.0)
    monkeypatch.setattr(DCTOperator, "dct_by_fft_from", 1)
    monkeypatch.setattr(HeatOperator, "blur_by_fft_from", 1)
    by_fft = make(name, K=20, blur_sigma_max=16.0)
    assert by_fft.dct_by_fft and not dense.dct_by_fft and not hasattr(by_fft, "dct_h")
    x, k = torch.rand(21, 3, *SIZE), torch.arange(21)
    for method, argument in (("forward", (x, k)), ("to_basis", (x,)), ("from_basis", (x,))):
        out = getattr(by_fft, method)(*argument)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, getattr(dense, method)(*argument), atol=1e-6, rtol=1e-6)


def test_the_heat_operator_at_512_pixels_is_the_upstream_blur():
    """At 512 x 512 the heat operator takes the FFT path by default, and it is the float64 upstream blur to 1e-6."""
    op = make("heat", K=4, image_size=(512, 512), blur_sigma_max=64.0)
    assert op.blur_by_fft and op.dct_by_fft and not hasattr(op, "blur_h")
    x = torch.rand(2, 1, 512, 512, generator=torch.Generator().manual_seed(0))
    y = op(x, torch.tensor([1, 4]))
    for row, level in enumerate((1, 4)):
        reference = upstream_heat_blur(x[row].double().numpy(), float(op.blur_sigmas[level]))
        assert np.abs(y[row].numpy() - reference).max() < 1e-6
