"""Shared test doubles and builders."""

import torch

from model_code.operators import build_operator
from scripts.data.datasets import DATASETS, check_split


def make_operator(name: str, K: int, image_size, **overrides):
    """A registered operator with small, valid defaults for its extra parameters."""
    kwargs = dict(image_size=image_size, K=K)
    kwargs.update(
        {"heat": dict(blur_sigma_min=0.5, blur_sigma_max=4.0), "blur": dict(blur_sigma_max=4.0)}.get(name, {})
    )
    if name.startswith("random"):
        kwargs["seed"] = 1
    kwargs.update(overrides)
    return build_operator(name, **kwargs)


class IHDMOracle(torch.nn.Module):
    """Knows the clean image x0: f(u_k, k) = A_{k-1} x0 - u_k, the perfect residual for the ihdm process."""

    def __init__(self, process, x0):
        super().__init__()
        self.process, self.x0 = process, x0

    def forward(self, u, time):
        return self.process.operator(self.x0, time.round().long() - 1) - u


def build_dataset(name: str, *, split: str, image_size, num_channels: int, root: str):
    """A registered dataset built directly (no config): uint8 images [C, H, W] or points [D]."""
    check_split(split)
    return DATASETS.build(name, split=split, image_size=tuple(image_size), num_channels=num_channels, root=root)
