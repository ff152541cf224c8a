"""The contract every registered operator keeps: A_0 = I, linear, pure, per-example levels, level checks,
a name, its state saved and restored, gradients through it, and the basis facts of diagonal operators.

A new operator declares its small config (model.* keys over configs/default.py) in ``DECLARED``."""

import pytest
import torch

from model_code.operators import OPERATORS
from tests.contracts import check_declared, state_round_trip
from tests.helpers import make_operator

K = 5
SIZE = (6, 5)  # rectangular, so height and width cannot be swapped unnoticed
# pixelate halves the resolution, so its sides must divide by 2^ceil(K/pixelate_every); haar_pyramid's K levels halve it
SIZES = {"pixelate": (8, 4), "haar_pyramid": (32, 16)}
CHANNELS = 2

DECLARED = {
    "blur": dict(blurring_sigma_max=4.0),
    "cold_blur": dict(kernel_size=3, kernel_std=0.5, blur_routine="incremental", blur_padding="reflect"),
    "constant_deceleration": {},
    "constant_velocity": {},
    "desaturate": dict(desaturate_routine="linear"),
    "haar_pyramid": dict(hflow_resolutions=(32, 16, 8, 4, 2)),
    "heat": dict(blur_sigma_max=4.0),
    "identity": {},
    "mask": dict(mask_std=0.5, mask_centre="seeded", operator_seed=1),
    "pixelate": dict(pixelate_every=3),
    "random_matrix": dict(operator_seed=1),
    "random_matrix_product": dict(operator_seed=1),
}


def test_every_registered_operator_declares_its_contract_config():
    check_declared(OPERATORS, DECLARED, __name__)


def build(name, **overrides):
    return make_operator(name, K, SIZES.get(name, SIZE), **{**DECLARED[name], **overrides})


def images(op, batch, seed):
    return torch.randn(batch, CHANNELS, op.height, op.width, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(params=sorted(DECLARED))
def name(request):
    return request.param


class TestOperatorContract:
    def test_name_and_build_spec(self, name):
        op = build(name)
        assert op.name == name and op.build_spec["name"] == name
        assert op.build_spec["kwargs"]["K"] == K and tuple(op.build_spec["kwargs"]["image_size"]) == SIZES.get(
            name, SIZE
        )

    def test_level_zero_is_the_identity(self, name):
        op = build(name)
        x = images(op, 3, 0)
        torch.testing.assert_close(op(x, torch.zeros(3, dtype=torch.long)), x, atol=2e-6, rtol=0)

    def test_linear_pure_and_float32(self, name):
        op = build(name)
        x, y = images(op, K + 1, 1), images(op, K + 1, 2)
        levels, x_copy = torch.arange(K + 1), x.clone()
        out = op(x, levels)
        assert out.shape == x.shape and out.dtype == torch.float32 and torch.isfinite(out).all()
        torch.testing.assert_close(op(2 * x - 3 * y, levels), 2 * out - 3 * op(y, levels), atol=3e-5, rtol=1e-5)
        assert torch.equal(x, x_copy), "an operator must not modify its input"
        out.add_(1.0)
        assert torch.equal(x, x_copy), "an operator's output must not share memory with its input"

    def test_each_example_takes_its_own_level(self, name):
        op = build(name)
        x = images(op, K + 1, 3)
        levels = torch.arange(K, -1, -1)
        together = op(x, levels)
        for i in range(K + 1):
            torch.testing.assert_close(together[i : i + 1], op(x[i : i + 1], levels[i : i + 1]), atol=1e-6, rtol=0)

    def test_levels_outside_0_to_K_are_refused(self, name):
        op = build(name)
        x = images(op, 1, 4)
        for bad in (-1, K + 1):
            with pytest.raises(ValueError, match=rf"\[0, {K}\]"):
                op(x, torch.tensor([bad]))
        if op.continuous:
            torch.testing.assert_close(op(x, torch.tensor([0.0])), x, atol=2e-6, rtol=0)
            assert torch.isfinite(op(x, torch.tensor([K / 2 + 0.25]))).all()
        else:
            with pytest.raises(ValueError, match="integer levels"):
                op(x, torch.tensor([1.5]))

    def test_same_config_same_map_and_state_survives_a_checkpoint(self, name):
        op = build(name)
        x, levels = images(op, K + 1, 5), torch.arange(K + 1)
        torch.testing.assert_close(build(name)(x, levels), op(x, levels), atol=0, rtol=0)
        other_seed = build(name, operator_seed=2)
        if op.state_dict():  # state that a checkpoint must carry: another seed gives another map until loaded
            assert not torch.allclose(other_seed(x, levels), op(x, levels))
        torch.testing.assert_close(state_round_trip(op, other_seed)(x, levels), op(x, levels), atol=0, rtol=0)

    def test_gradients_are_the_adjoint(self, name):
        """<grad_x <w, A x>, v> = <w, A v>: the backward pass applies A^T."""
        op = build(name)
        x, w, v = images(op, K + 1, 6).requires_grad_(), images(op, K + 1, 7), images(op, K + 1, 8)
        levels = torch.arange(K + 1)
        (op(x, levels) * w).sum().backward()
        torch.testing.assert_close((x.grad * v).sum(), (w * op(v, levels)).sum(), atol=1e-3, rtol=1e-4)

    def test_a_diagonal_operator_is_diagonal_in_an_orthonormal_basis(self, name):
        op = build(name)
        if not op.diagonal:
            pytest.skip(f"{name} is not diagonal in a basis")
        x, levels = images(op, K + 1, 9), torch.arange(K + 1)
        coefficients = op.to_basis(x)
        torch.testing.assert_close(coefficients.norm(), x.norm(), atol=1e-4, rtol=1e-5)
        torch.testing.assert_close(op.from_basis(coefficients), x, atol=1e-5, rtol=0)
        spectrum = op.spectrum(levels)
        torch.testing.assert_close(
            spectrum[0].expand(CHANNELS, op.height, op.width), torch.ones(CHANNELS, op.height, op.width)
        )
        torch.testing.assert_close(op(x, levels), op.from_basis(spectrum * coefficients), atol=1e-5, rtol=0)
