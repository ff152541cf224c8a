"""Cold Diffusion's Gaussian-mask inpainting: the image fades out from a centre, step by step."""

from __future__ import annotations

import math

import torch

from model_code.operators.base import OPERATORS, DiagonalOperator, ImageSize

MASK_ROUTINES = ("incremental", "constant")
MASK_CENTRES = ("centre", "seeded")


def mask_stds(K: int, routine: str, mask_std: float, mask_initial: float) -> torch.Tensor:
    """s_i for the steps i = 0..K-1, float64 [K]: incremental mask_std (i + mask_initial), constant mask_std."""
    i = torch.arange(K, dtype=torch.float64)
    return mask_std * (i + mask_initial) if routine == "incremental" else torch.full_like(i, mask_std)


def cumulative_masks(stds: torch.Tensor, centre: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """prod_{i<k} m_i for k = 0..K, float32 [K+1, H, W]; m_i(p) = 1 - exp(-|p - c|^2 / (2 s_i^2)).

    A std of 0 (mask_initial = 0) masks the pixel at the centre alone (none if c lies between pixels).
    """
    rows = torch.arange(height, dtype=torch.float64)[:, None]
    cols = torch.arange(width, dtype=torch.float64)[None, :]
    distance_squared = (rows - centre[0].double()) ** 2 + (cols - centre[1].double()) ** 2  # [H, W]
    running = torch.ones(height, width, dtype=torch.float64)
    products = [running]
    for std in stds.tolist():
        bump = torch.exp(-distance_squared / (2 * std**2)) if std > 0 else (distance_squared == 0).double()
        running = running * (1 - bump)
        products.append(running)
    return torch.stack(products).float()


@OPERATORS.register("mask")
class MaskOperator(DiagonalOperator):
    """Cold Diffusion's Gaussian mask: A_k x = (prod_{i<k} m_i) * x pixelwise, the same for every channel.

    m_i(p) = 1 - g_i(p), g_i(p) = exp(-|p - c|^2 / (2 s_i^2)) a Gaussian of std s_i pixels scaled to
    1 at the centre c (Cold scales its kernel by its maximum, on the centre pixel). ``mask_routine``:
    ``incremental`` s_i = mask_std (i + mask_initial), ``constant`` s_i = mask_std. ``mask_centre``:
    ``centre`` c = ((H-1)/2, (W-1)/2), or ``seeded`` a pixel drawn uniformly from ``seed``.

    Cold's Random_Incremental redraws the centre for every training example, which makes its forward
    process random rather than an operator. Here Random_Incremental is ``incremental`` with
    ``mask_centre=seeded``: one centre fixed for the run by its seed, so A_k stays linear and pure.
    The centre is a persistent buffer ``centre`` [2] (a checkpoint holds it); the masks
    prod_{i<k} m_i, a buffer [K+1, H, W], are rebuilt from it whenever a state dict is loaded.

    Diagonal in the pixel basis: spectrum(k) is the mask [B, 1, H, W]. Where c is a pixel (seeded, or
    both sides odd) the mask is 0 there from level 1 on, which the gaussian process refuses; integer levels.
    """

    def __init__(
        self,
        *,
        image_size: ImageSize,
        K: int,
        mask_std: float,
        mask_initial: float,
        mask_routine: str,
        mask_centre: str,
        seed: int,
    ):
        super().__init__(image_size=image_size, K=K)
        if not (math.isfinite(mask_std) and mask_std > 0):
            raise ValueError(f"mask_std={mask_std!r}: a finite number > 0 (the Gaussian mask's std in pixels)")
        if not (math.isfinite(mask_initial) and mask_initial >= 0):
            raise ValueError(f"mask_initial={mask_initial!r}: a finite number >= 0 (s_i = mask_std (i + mask_initial))")
        if mask_routine not in MASK_ROUTINES:
            raise ValueError(f"mask_routine={mask_routine!r}: one of {', '.join(MASK_ROUTINES)}")
        if mask_centre not in MASK_CENTRES:
            raise ValueError(f"mask_centre={mask_centre!r}: one of {', '.join(MASK_CENTRES)}")
        self.register_buffer("centre", self.make_centre(mask_centre, int(seed)))
        self.stds = mask_stds(K, mask_routine, mask_std, mask_initial)
        self.register_buffer("masks", torch.empty(K + 1, self.height, self.width), persistent=False)
        self.rebuild_masks()
        self.register_load_state_dict_post_hook(_rebuild_after_loading)

    def make_centre(self, mask_centre: str, seed: int) -> torch.Tensor:
        """c = (row, column), float32 [2]: the image centre, or a pixel drawn uniformly from the seed."""
        if mask_centre == "centre":
            return torch.tensor([(self.height - 1) / 2, (self.width - 1) / 2])
        generator = torch.Generator().manual_seed(seed)
        row = torch.randint(self.height, (), generator=generator)
        column = torch.randint(self.width, (), generator=generator)
        return torch.stack([row, column]).float()

    @torch.no_grad()
    def rebuild_masks(self) -> None:
        """The masks from ``centre`` (at construction, and after a state dict brought another centre)."""
        masks = cumulative_masks(self.stds, self.centre.cpu(), self.height, self.width)
        self.masks.copy_(masks.to(self.masks.device))

    def to_basis(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def from_basis(self, coefficients: torch.Tensor) -> torch.Tensor:
        return coefficients

    def spectrum(self, k: torch.Tensor) -> torch.Tensor:
        return self.masks[self.check_levels(k)][:, None]


def _rebuild_after_loading(module: MaskOperator, incompatible_keys) -> None:
    module.rebuild_masks()
