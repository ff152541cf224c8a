"""Python API for a trained run: load it, sample, encode real images to exact latents and decode them.

    model = Model.from_run("runs/quickstart", checkpoint=0, device="cpu")
    images = model.sample(16, seed=0, temperature=0.8)       # [16, C, H, W] in the data range
    x = model.load_images(["a.png", "b.jpg"])                # center crop + resize, into the data range
    latent = model.encode(x)                                 # (u_K [B, C, H, W], noise [B, S, C, H, W])
    model.decode(latent)                                     # == x to float32 precision
    images = model.sample(16, sampler="dpmpp_2m", steps=20)   # gaussian process: any sampler, grid and steps
    u_K, error = model.encode_deterministic(x, steps=100)    # gaussian process: DDIM inversion, RMS error [B]
    model.decode_deterministic(u_K, steps=100)               # == x up to ``error``
    model.interpolate(x[0], x[1], num_points=9)              # [9, C, H, W], ends equal the two images
    model.elbo(x)                                            # per-image ELBO in nats [B]
    model.sample(10, class_label=range(10), guidance=1.0)    # class-conditional: image i of class i, guided
    out = model.restore(x, from_level=10)                    # cold process: {'degraded', 'direct', 'restored'}

A class-conditional model (``model.num_classes`` C > 0) takes ``class_label`` in every method: an int (every
image), or one per image (a sequence; sampling cycles through it). Without it, sampling draws each image's class
uniformly from its seed, and the latents and the ELBO use the model's unconditional branch (label dropout's).

Every random draw comes from a generator seeded per image (``model_code.randomness.seeded_generators``; that
module's docstring tables every seed and stream), so results do not depend on the batch size.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch

from model_code import latents
from model_code.conditioning import LabelChoice, conditioned, num_classes_of
from model_code.priors import randn_per_generator
from model_code.randomness import ELBO_SEED_OFFSET, ENCODE_STREAM, INIT_STREAM, NOISE_STREAM, seeded_generators
from model_code.samplers.spec import SamplingSpec
from scripts.data.datasets.image_folders import center_crop_resize
from scripts.evaluation.elbo import elbo_terms
from scripts.runs.trained import TrainedModel, load_trained
from scripts.sampling import restoration, sampler
from scripts.sampling.image_files import read_image
from scripts.sampling.sampler import spherical

ClassLabel = Union[int, Sequence[int], None]  # one class for every image, one per image, or none


def label_choice(class_label: ClassLabel) -> LabelChoice:
    """The ``LabelChoice`` of an API call's ``class_label``: every image of one class, or image i of
    class_label[i mod len]; None: drawn per image."""
    if class_label is None:
        return LabelChoice()
    if isinstance(class_label, int):
        return LabelChoice((class_label,))
    return LabelChoice(tuple(int(label) for label in class_label))


class Model:
    """A trained run's process, EMA network and prior, with sampling and exact latents."""

    def __init__(self, trained: TrainedModel, device: torch.device):
        self.trained = trained
        self.device = device
        self.process, self.net, self.prior = trained.process, trained.net, trained.prior
        self.shape = tuple(trained.shape)
        self.config = trained.config
        self.step, self.checkpoint_path = trained.step, trained.checkpoint_path
        self.num_classes = num_classes_of(self.net)  # C of a class-conditional model; 0: unconditional

    @classmethod
    def from_run(
        cls,
        workdir: str,
        checkpoint: int = 0,
        device: Union[str, torch.device] = "cpu",
        *,
        config=None,
        delta=None,
    ) -> "Model":
        """Checkpoint ``checkpoint`` of run ``workdir`` (0: the latest); ``config`` as ``load_trained``; ``delta``
        replaces the ihdm model's reverse-step noise std (which its prior and ELBO share)."""
        device = torch.device(device)
        settings = {} if delta is None else {"delta": delta}
        return cls(load_trained(workdir, checkpoint, device, config=config, process_settings=settings), device)

    def sample(
        self,
        n: int,
        seed: int = 0,
        temperature: float = 1.0,
        steps: Optional[int] = None,
        class_label: ClassLabel = None,
        **sampling,
    ) -> torch.Tensor:
        """n samples [n, C, H, W]; image i from seeds (seed, i); the prior's spread scaled by ``temperature``;
        ``steps`` (None: every level) of the sampler that ``sampling`` names: ``sampler`` (ancestral, ddim, heun,
        dpmpp_2m), ``grid`` (uniform, edm, logsnr), ``eta``, ``churn``, ``noise_temperature``, and for a
        class-conditional model ``guidance`` (``SamplingSpec``); ``class_label`` as the module docstring says."""
        spec = SamplingSpec.from_options(
            temperature=temperature, steps=steps, classes=label_choice(class_label), **sampling
        )
        spec.check()
        spec.check_classes(self.num_classes)
        out = sampler.sample(
            self.process,
            self.net,
            self.prior,
            mode="random",
            count=n,
            seed=seed,
            shape=self.shape,
            device=self.device,
            spec=spec,
        )
        return out["samples"]

    def load_images(self, paths: Sequence[str]) -> torch.Tensor:
        """Images of any size: center crop to the model's aspect ratio, resize, map into the data range.
        Returns [len(paths), C, H, W]; an unreadable file is a ValueError naming it."""
        channels, height, width = self.shape
        images = []
        for path in paths:
            image = read_image(path, "L" if channels == 1 else "RGB")
            images.append(np.asarray(center_crop_resize(image, (height, width)), dtype=np.float32))
        unit = torch.from_numpy(np.stack(images)).reshape(len(paths), height, width, channels).permute(0, 3, 1, 2)
        low, high = self.process.data_range
        return (low + (high - low) * unit / 255.0).to(self.device)

    def network(self, class_label: ClassLabel, count: int):
        """The EMA network as a function of (x, time) with the labels of ``count`` images bound (``class_label``
        as the module docstring says; None: the network as it is)."""
        if class_label is None:
            return self.net
        choice = label_choice(class_label)
        choice.check(self.num_classes)
        return conditioned(self.net, choice.labels(range(count), 0, self.num_classes))

    def encode(self, images: torch.Tensor, seed: int = 0, class_label: ClassLabel = None) -> latents.Latent:
        """Exact latents (u_K [B, C, H, W], noise [B, S, C, H, W]) of images in the data range."""
        generators = seeded_generators(seed, ENCODE_STREAM, range(len(images)))
        net = self.network(class_label, len(images))
        return latents.encode(self.process, net, images.to(self.device), generators)

    def decode(self, latent: latents.Latent, class_label: ClassLabel = None) -> torch.Tensor:
        """The reverse process run with the latent's noise: [B, C, H, W]."""
        return latents.decode(self.process, self.network(class_label, len(latent[0])), latent)

    def encode_deterministic(
        self,
        images: torch.Tensor,
        steps: Optional[int] = None,
        refinements: int = 1,
        sampler: str = "ddim",
        class_label: ClassLabel = None,
        **sampling,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Deterministic latents u_K [B, C, H, W] of images in the data range (a deterministic ``sampler`` run
        backwards in ``steps`` steps, None: every level, each step refined ``refinements`` times:
        ``latents.encode_deterministic``; ``sampling``: its ``grid``, ``eta``, ``churn``) and their reconstruction
        error [B], the root mean square of decode_deterministic(u_K) - images over the pixels."""
        images = images.to(self.device)
        denoiser, run, settings, levels = self._deterministic(steps, sampler, sampling, class_label, len(images))
        prior_state = latents.encode_deterministic(denoiser, run, settings, images, levels, refinements)
        decoded = latents.decode_deterministic(denoiser, run, settings, prior_state, levels)
        error = (decoded - images).flatten(1).pow(2).mean(1).sqrt()
        return prior_state, error

    def decode_deterministic(
        self,
        prior_state: torch.Tensor,
        steps: Optional[int] = None,
        sampler: str = "ddim",
        class_label: ClassLabel = None,
        **sampling,
    ) -> torch.Tensor:
        """The deterministic ``sampler`` (default DDIM, eta = 0) from u_K [B, C, H, W] in ``steps`` steps."""
        count = len(prior_state)
        denoiser, run, settings, levels = self._deterministic(steps, sampler, sampling, class_label, count)
        return latents.decode_deterministic(denoiser, run, settings, prior_state.to(self.device), levels)

    def _deterministic(self, steps: Optional[int], sampler: str, sampling: dict, class_label: ClassLabel, count: int):
        """(denoiser, sampler function, settings, levels) of a deterministic sampling spec for ``count`` images."""
        spec = SamplingSpec.from_options(sampler, steps=steps, **sampling)
        denoiser = self.process.denoiser(self.network(class_label, count))
        return (denoiser, *spec.deterministic_run(denoiser, self.process.name))

    def resample(
        self,
        image: torch.Tensor,
        n: int,
        *,
        below: Optional[int] = None,
        above: Optional[int] = None,
        seed: int = 0,
        class_label: Optional[int] = None,
        start: int = 0,
    ) -> torch.Tensor:
        """n variations [n, C, H, W] of one image [C, H, W] by level of detail. With ``below`` = L, the image's
        latent is kept at levels above L and the noise of every step k <= L is drawn afresh (at k = 1 the
        residual becomes 0: the model's own last step); with ``above`` = L, u_K and the noise of every step
        k > L are drawn afresh and the rest kept. Variation i (i = start..start+n-1) draws from seeds (seed, i),
        so a request can be drawn in chunks, and L = 0 below (or L = K above) returns the decoded image itself."""
        if (below is None) == (above is None):
            raise ValueError("give exactly one of below=LEVEL and above=LEVEL")
        level = below if below is not None else above
        if not 0 <= level <= self.process.K:
            raise ValueError(f"level {level} is outside 0..{self.process.K} (K of this model)")
        prior_state, noise = self.encode(image[None], seed, class_label)
        prior_state, noise = prior_state.expand(n, *self.shape).clone(), noise.expand(n, *noise.shape[1:]).clone()
        rows = range(start, start + n)
        generators = seeded_generators(seed, NOISE_STREAM, rows)  # one stream per image, a draw per step
        fresh_noise = torch.stack(
            [randn_per_generator(generators, self.shape, self.device) for _ in self.process.sampling_levels()], dim=1
        )
        fresh_noise[:, -1] = 0
        levels = torch.tensor(self.process.sampling_levels(), device=self.device)
        redraw = levels <= level if below is not None else levels > level
        noise[:, redraw] = fresh_noise[:, redraw]
        if above is not None and level < self.process.K:
            prior_state = self.prior.sample(seeded_generators(seed, INIT_STREAM, rows), self.shape, self.device)
        return self.decode((prior_state, noise), class_label)

    def restore(
        self,
        images: torch.Tensor,
        from_level: int,
        *,
        seed: int = 0,
        degraded: bool = False,
        steps: Optional[int] = None,
        **sampling,
    ) -> dict:
        """Restoration of images [B, C, H, W] in the data range (cold process): taken to level ``from_level`` by the
        run's operator (or, ``degraded``, taken as that level's states), then the reverse process from there on
        the sampler's grid below it (``sampling`` as for ``sample``). Returns {'degraded', 'direct' (the one-step
        x0_hat), 'restored'} [B, C, H, W] and 'nfe'; image i uses seeds (seed, i)."""
        spec = SamplingSpec.from_options(steps=steps, **sampling)
        spec.check()
        images = images.to(self.device)
        return restoration.restore(
            self.process, self.net, images, from_level, rows=range(len(images)), seed=seed, spec=spec, degraded=degraded
        )

    def interpolate(
        self,
        image_a: torch.Tensor,
        image_b: torch.Tensor,
        num_points: int = 9,
        seed: int = 0,
        class_label: Optional[int] = None,
    ) -> torch.Tensor:
        """[num_points, C, H, W] between two images [C, H, W]: prior states linear, noise spherical; the
        ends decode to the two images (both of class ``class_label`` for a conditional model)."""
        (prior_state, noise) = self.encode(torch.stack([image_a, image_b]), seed, class_label)
        weights = torch.linspace(0, 1, num_points, device=self.device)
        mix = weights.view(-1, 1, 1, 1)
        states = (1 - mix) * prior_state[:1] + mix * prior_state[1:]
        return self.decode((states, spherical(noise[0], noise[1], weights)), class_label)

    def interpolate_deterministic(
        self,
        image_a: torch.Tensor,
        image_b: torch.Tensor,
        num_points: int = 9,
        steps: Optional[int] = None,
        sampler: str = "ddim",
        class_label: Optional[int] = None,
        **sampling,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """([num_points, C, H, W], reconstruction errors [2]) between two images [C, H, W] through their
        deterministic latents (``encode_deterministic`` with ``sampler`` and ``sampling``), interpolated
        spherically (the latents are Gaussian draws, whose norm a straight line would shrink); the ends decode
        to the images up to those errors."""
        pair = torch.stack([image_a, image_b])
        prior_state, errors = self.encode_deterministic(pair, steps, 1, sampler, class_label, **sampling)
        weights = torch.linspace(0, 1, num_points, device=self.device)
        mixed = spherical(prior_state[0], prior_state[1], weights)
        return self.decode_deterministic(mixed, steps, sampler, class_label, **sampling), errors

    def elbo(self, images: torch.Tensor, seed: int = 0, class_label: ClassLabel = None) -> torch.Tensor:
        """Per-image ELBO in nats [B] (prior KL + transitions + reconstruction) of images in the data range (for a
        conditional model, given ``class_label``: log p(x | c))."""
        generator = torch.Generator(device=self.device).manual_seed(seed + ELBO_SEED_OFFSET)
        net = self.network(class_label, len(images))
        with torch.no_grad():
            terms = elbo_terms(self.process, net, self.prior, images.to(self.device), generator)
        return terms["prior"] + terms["transitions"].sum(1) + terms["reconstruction"]
