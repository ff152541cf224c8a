"""hflow's network (Timonen, Aittala & Lehtinen 2023): per-level conditional normalizing flows over a Haar pyramid.

Pyramid level j = 0..L-1 is the image at resolutions[j] (``model_code.haar``: x_0 = x, x_{j+1} the coarse part of
x_j). Level j < L-1 maps the detail of x_j (``haar.split`` by the factor between resolutions j and j+1) to its
latent z_j by a flow conditioned on x_{j+1}; the coarsest level maps x_{L-1} to z_{L-1} by an unconditional flow:

    z_j, log|det dz_j / d detail_j| = flow_j(detail_j | x_{j+1}),   z_{L-1}, log|det| = flow_{L-1}(x_{L-1}).

The Haar split has Jacobian 1, so log p(x) = sum_j log p(z_j) + log|det_j|. The latent of an image, flattened, is
one [B, C, H, W] tensor: the coarsest level's entries first, then level L-2's, ..., level 0's
(``haar.latent_sizes``).
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch

from model_code import haar
from model_code.flows import LevelFlow
from model_code.networks.base import NETWORKS, Network, check_num_classes


def per_level(name: str, values: Sequence[int], levels: int) -> Tuple[int, ...]:
    """One value per level (a single value: the same for every level); a ValueError in one line otherwise."""
    values = tuple(values)
    if len(values) == 1:
        values = values * levels
    if len(values) != levels or not all(isinstance(v, int) and v >= 0 for v in values):
        raise ValueError(f"{name}={values}: one integer >= 0 per resolution ({levels}), or a single one for all")
    return values


@NETWORKS.register("hflow")
class HFlowNetwork(Network):
    """The flows of every pyramid level (module docstring). ``net(x [B, C, H, W], time, labels=None)`` -> (z
    [B, C, H, W], log|det| [B, L]) with H = resolutions[0]; ``time`` is not read (one pass gives every level).
    ``level_forward`` / ``level_inverse`` map one level, ``inverse`` the whole latent, ``initialize(x)`` sets every
    ActNorm from a batch. Per level: ``latent_channels`` (0: the level's own, C (4^m - 1) for a detail of m
    halvings, C for the coarsest; else that times 4^j, j squeezes), ``coupling_layers`` flow steps,
    ``coupling_channels`` hidden channels of each coupling network, ``encoder_channels`` features of the
    condition encoder; ``hflow_encoder_lr_scale`` the encoders' learning rate over the flows' (``parameter_groups``).
    A flow is unconditional on class labels: ``num_classes`` must be 0.
    """

    flow = True  # forward returns (z, log|det|) and has an inverse: the flow contract of tests/test_contract_networks

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        hflow_resolutions: Sequence[int],
        hflow_latent_channels: Sequence[int],
        hflow_coupling_layers: Sequence[int],
        hflow_coupling_channels: Sequence[int],
        hflow_encoder_channels: Sequence[int],
        hflow_encoder_lr_scale: float = 1.0,
        num_classes: int = 0,
    ):
        super().__init__()
        if not (isinstance(hflow_encoder_lr_scale, (int, float)) and 0 < hflow_encoder_lr_scale < float("inf")):
            raise ValueError(f"hflow_encoder_lr_scale={hflow_encoder_lr_scale}: a finite number > 0")
        self.encoder_lr_scale = float(hflow_encoder_lr_scale)
        check_num_classes(num_classes)
        if num_classes:
            raise ValueError(f"num_classes={num_classes}: the hflow network is unconditional; allowed: 0")
        self.resolutions = tuple(hflow_resolutions)
        self.halvings = haar.halvings(self.resolutions)
        levels = len(self.resolutions)
        latent = per_level("hflow_latent_channels", hflow_latent_channels, levels)
        layers = per_level("hflow_coupling_layers", hflow_coupling_layers, levels)
        hidden = per_level("hflow_coupling_channels", hflow_coupling_channels, levels)
        features = per_level("hflow_encoder_channels", hflow_encoder_channels, levels)
        flows = []
        for j in range(levels):
            channels = in_channels * (4 ** self.halvings[j] - 1) if j < levels - 1 else in_channels
            cond = features[j] if j < levels - 1 else 0
            flows.append(
                LevelFlow(
                    channels=channels,
                    latent_channels=latent[j] or channels,
                    layers=layers[j],
                    hidden=hidden[j],
                    image_channels=in_channels,
                    cond_channels=cond,
                )
            )
        self.flows = torch.nn.ModuleList(flows)

    def parameter_groups(self) -> List[Tuple[List[torch.nn.Parameter], float]]:
        """[(the flows' parameters, 1), (the condition encoders' parameters, ``hflow_encoder_lr_scale``)]: the
        optimiser's groups and their learning-rate scales (hflow's LEARNING_RATE and LEARNING_RATE_ENCODERS)."""
        encoders = [p for flow in self.flows if flow.encoder is not None for p in flow.encoder.parameters()]
        known = {id(p) for p in encoders}
        return [([p for p in self.parameters() if id(p) not in known], 1.0), (encoders, self.encoder_lr_scale)]

    def pyramid(self, x: torch.Tensor) -> List[torch.Tensor]:
        """[x_0 = x, x_1, ..., x_{L-1}]: each the coarse part of the one before, [B, C, h_j, w_j]."""
        images = [x]
        for m in self.halvings:
            images.append(haar.split(images[-1], m)[0])
        return images

    def scale(self, j: int) -> float:
        """2^(halvings down to level j): x_j over the block mean of x at resolution j."""
        return float(2 ** sum(self.halvings[:j]))

    def level_forward(self, j: int, image: torch.Tensor, initialize: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
        """Level j of x_j [B, C, h_j, w_j]: (z_j flattened [B, n_j], log|det| [B])."""
        if j == len(self.flows) - 1:
            z, logdet = self.flows[j](image, None, initialize)
        else:
            coarser, detail = haar.split(image, self.halvings[j])
            z, logdet = self.flows[j](detail, coarser / self.scale(j + 1), initialize)
        return z.flatten(1), logdet

    def level_inverse(self, j: int, z: torch.Tensor, coarser: Optional[torch.Tensor]) -> torch.Tensor:
        """x_j [B, C, h_j, w_j] from z_j [B, n_j] and x_{j+1} [B, C, h_{j+1}, w_{j+1}] (None at the coarsest)."""
        flow = self.flows[j]
        if coarser is None:
            return flow.inverse(z.view(z.shape[0], *self.latent_shape(j, z.shape[1])))
        channels, height, width = coarser.shape[1:]
        m = self.halvings[j]
        shape = (channels * (4**m - 1) * 4**flow.squeezes, height // 2**flow.squeezes, width // 2**flow.squeezes)
        detail = flow.inverse(z.view(z.shape[0], *shape), coarser / self.scale(j + 1))
        return haar.merge(coarser, detail, m)

    def latent_shape(self, j: int, entries: int) -> Tuple[int, int, int]:
        """The coarsest level's latent shape [c, h, w] from its entry count (its flow's channels and squeezes)."""
        flow = self.flows[j]
        channels, height = flow.latent_channels, self.resolutions[j] // 2**flow.squeezes
        return channels, height, entries // (channels * height)

    def forward(self, x: torch.Tensor, time: torch.Tensor, labels: Optional[torch.Tensor] = None):
        """x [B, C, H, W] -> (z [B, C, H, W], log|det| [B, L]), level j's log-determinant in column j."""
        if labels is not None:
            raise ValueError("this network is unconditional (num_classes=0): it takes no class labels")
        return self.encode(x)

    def encode(self, x: torch.Tensor, initialize: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
        latents, logdets = [], []
        for j, image in enumerate(self.pyramid(x)):
            z, logdet = self.level_forward(j, image, initialize)
            latents.append(z)
            logdets.append(logdet)
        return torch.cat(latents[::-1], dim=1).view_as(x), torch.stack(logdets, dim=1)

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """The image x [B, C, H, W] of a latent z [B, C, H, W] (the module docstring's layout)."""
        channels, height, width = z.shape[1:]
        sizes = haar.pyramid_sizes(height, width, self.resolutions)
        chunks = z.flatten(1).split(haar.latent_sizes(channels, sizes)[::-1], dim=1)[::-1]
        image = None
        for j in reversed(range(len(self.flows))):
            image = self.level_inverse(j, chunks[j], image)
        return image

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        """Data-dependent initialisation: every ActNorm set from the batch x [B, C, H, W] reaching it."""
        self.encode(x, initialize=True)
