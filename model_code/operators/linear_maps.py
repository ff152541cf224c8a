"""Scalar linear maps A_k = s(t) I, t = k / K: identity, constant velocity, constant deceleration."""

from __future__ import annotations

import torch

from model_code.operators.base import OPERATORS, PixelBasisOperator


@OPERATORS.register("identity")
class IdentityOperator(PixelBasisOperator):
    """A_k = I for every k: plain denoising (with the gaussian objective, DDPM)."""

    def scale(self, t: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(t)


@OPERATORS.register("constant_velocity")
class ConstantVelocityOperator(PixelBasisOperator):
    """A_k = (1 - t) I, t = k/K: the image moves to the origin at constant speed, reaching it at K."""

    def scale(self, t: torch.Tensor) -> torch.Tensor:
        return 1.0 - t


@OPERATORS.register("constant_deceleration")
class ConstantDecelerationOperator(PixelBasisOperator):
    """A_k = (1 - t)^2 I, t = k/K: starts at the image with speed 2|u_0|/K and comes to rest at the
    origin at K under constant deceleration. (The formula (t^2/K^2 - t/K) I that the linear-maps
    fork wrote down is 0 at t = 0, so it would not start from the image.)"""

    def scale(self, t: torch.Tensor) -> torch.Tensor:
        return (1.0 - t) ** 2
