"""The sampling specification: which sampler, on which grid, with which settings; built once where the
command line (or an API call) is read and handed to the sampler, never to a process constructor."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from model_code.conditioning import LabelChoice, check_guidance
from model_code.precision import MODES, network_dtype
from model_code.samplers.base import SAMPLERS, check_sampler, samplers_for
from model_code.samplers.base import settings as sampler_settings
from model_code.samplers.grids import GRIDS


def _finite_at_least(value: Any, low: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= low


@dataclass(frozen=True)
class SamplingSpec:
    """``sampler`` (a SAMPLERS name; None: the process's ``default_sampler``, resolved by ``for_process``),
    ``steps`` (None: every level), ``grid`` (a GRIDS name), the sampler's own settings ``eta`` (ddim: 0
    deterministic .. 1 ancestral) and ``churn`` (heun: EDM's S_churn >= 0), the prior's ``temperature`` and the
    step noise's ``noise_temperature`` (1: as trained); for a class-conditional model the ``classes`` of the
    images (``LabelChoice``) and the classifier-free ``guidance`` weight w (0: the conditional model); the
    network's ``mixed_precision`` while it samples (``model_code.precision.MODES``; 'no': float32); for a
    sampler of a flow's latents (``flow_inverse``) one temperature per level, ``level_temperatures`` (the
    finest level first; None: ``temperature`` at every level)."""

    sampler: Optional[str] = None
    steps: Optional[int] = None
    grid: str = "uniform"
    eta: Optional[float] = None
    churn: Optional[float] = None
    temperature: float = 1.0
    noise_temperature: float = 1.0
    guidance: float = 0.0
    classes: LabelChoice = LabelChoice()
    mixed_precision: str = "no"
    level_temperatures: Optional[Tuple[float, ...]] = None

    @classmethod
    def from_options(cls, sampler: Optional[str] = None, **options: Any) -> "SamplingSpec":
        """The spec of the given options (None: the default); without a sampler, an ``eta`` means ddim (the
        meaning of an eta before samplers had names), otherwise the process's default sampler."""
        given = {key: value for key, value in options.items() if value is not None}
        if sampler is None and given.get("eta") is not None:
            sampler = "ddim"
        return cls(sampler=sampler, **given)

    def for_process(self, process) -> "SamplingSpec":
        """This spec with its sampler named: the process's ``default_sampler`` where none was chosen."""
        return self if self.sampler is not None else replace(self, sampler=process.default_sampler)

    def settings(self) -> Dict[str, Any]:
        """The keyword settings the sampler takes, from this spec (those left None keep the sampler's default);
        the sampler must be named (``for_process``)."""
        return {key: getattr(self, key) for key in sampler_settings(self.sampler) if getattr(self, key) is not None}

    def check(self) -> None:
        """One-line errors for what is wrong whatever the model: an unknown sampler or grid, a setting the
        sampler does not take, settings out of range."""
        if self.sampler is not None:
            SAMPLERS.get(self.sampler)
        GRIDS.get(self.grid)
        self.check_settings_apply(("eta", "churn") if self.sampler is None else ("eta", "churn", "level_temperatures"))
        if self.eta is not None and not (_finite_at_least(self.eta, 0) and self.eta <= 1):
            raise ValueError(f"eta={self.eta}: a number in [0, 1] (0 deterministic, 1 ancestral)")
        if self.churn is not None and not _finite_at_least(self.churn, 0):
            raise ValueError(f"churn={self.churn}: a finite number >= 0 (EDM's S_churn; 0: deterministic)")
        if self.level_temperatures is not None and not all(_finite_at_least(t, 0) for t in self.level_temperatures):
            raise ValueError(f"level_temperatures={list(self.level_temperatures)}: finite numbers >= 0, one per level")
        for key in ("temperature", "noise_temperature"):
            if not _finite_at_least(getattr(self, key), 0):
                raise ValueError(f"{key}={getattr(self, key)}: a finite number >= 0")
        check_guidance(self.guidance)
        if self.mixed_precision not in MODES:
            raise ValueError(f"mixed_precision={self.mixed_precision!r}; allowed: one of {', '.join(MODES)}")

    def network_dtype(self, device: torch.device, process=None) -> Optional[torch.dtype]:
        """The network's autocast dtype while sampling on ``device`` (None: float32); fp16 off CUDA, and any
        reduced precision for a ``process`` whose network must compute in float32, are refused."""
        return network_dtype(self.mixed_precision, device, getattr(process, "float32_network", False))

    def check_settings_apply(self, keys: Sequence[str]) -> None:
        """One line for a setting among ``keys`` given to a sampler that does not take it (None: the process's
        default, known only with the model: a ``level_temperatures`` waits for ``levels``)."""
        for key in keys:
            if getattr(self, key) is not None and (self.sampler is None or key not in sampler_settings(self.sampler)):
                takes = ", ".join(f"sampler={name}" for name in SAMPLERS.names() if key in sampler_settings(name))
                chosen = self.sampler or "the process's default"
                raise ValueError(f"{key}={getattr(self, key)} does not apply to sampler={chosen}; allowed with {takes}")

    def labels(self, rows: Sequence[int], seed: int, num_classes: int) -> Optional[torch.Tensor]:
        """The class labels int64 [len(rows)] of images ``rows`` of a request drawn with ``seed`` from a model of
        ``num_classes`` classes (None: unconditional); one line refusing classes or guidance the model has not."""
        self.check_classes(num_classes)
        return self.classes.labels(rows, seed, num_classes)

    def check_classes(self, num_classes: int) -> None:
        """One line refusing classes outside 0..num_classes-1, or classes or guidance for an unconditional model."""
        self.classes.check(num_classes)
        if num_classes == 0 and self.guidance:
            raise ValueError(
                f"guidance={self.guidance} needs a class-conditional model; this one is unconditional (allowed: 0)"
            )

    def levels(self, denoiser, process_name: str, start: Optional[int] = None) -> List[float]:
        """The sampling path for ``denoiser``: the grid's levels, then 0 (with ``start``, a restoration's level k:
        k, then the path's levels below k); refuses (one line) a sampler the process cannot run, steps outside
        1..K, a grid the model was not trained for and churn without continuous time."""
        self.check()
        check_sampler(self.for_process(denoiser.process).sampler, denoiser, process_name)
        self.for_process(denoiser.process).check_settings_apply(("level_temperatures",))
        steps = denoiser.K if self.steps is None else self.steps
        if not (isinstance(steps, int) and not isinstance(steps, bool) and 1 <= steps <= denoiser.K):
            raise ValueError(f"steps={steps!r}: an integer in 1..{denoiser.K} (K of this model)")
        if self.level_temperatures is not None and len(self.level_temperatures) != denoiser.K:
            raise ValueError(
                f"level_temperatures={list(self.level_temperatures)}: one per level, {denoiser.K} (K of this model)"
            )
        if self.churn and not getattr(denoiser, "continuous", False):
            raise ValueError(
                f"churn={self.churn} raises the noise between the levels this model was trained at; allowed: "
                "churn=0 (or a model trained with model.continuous_time=True)"
            )
        path = [*GRIDS.get(self.grid)(denoiser, steps), 0]
        return path if start is None else [start, *(level for level in path if level < start)]

    def is_deterministic(self) -> bool:
        """Whether the sampler draws no noise with these settings (so that run backwards it encodes)."""
        return SAMPLERS.metadata(self.sampler)["deterministic"](self.settings())

    def deterministic_run(self, denoiser, process_name: str) -> Tuple[Callable, Dict[str, Any], List[float]]:
        """(sampler function, its settings, the grid's levels K first) of a deterministic sampler, for the
        deterministic latents (``latents.encode_deterministic``); a sampler that draws noise is refused."""
        spec = self.for_process(denoiser.process)
        path = spec.levels(denoiser, process_name)
        if not spec.is_deterministic():
            choices = [name for name in samplers_for(denoiser) if SAMPLERS.metadata(name)["deterministic"]({})]
            raise ValueError(
                f"sampler={spec.sampler} with {spec.settings() or 'its defaults'} draws noise, so run backwards it "
                f"does not encode; allowed: a deterministic sampler of the {process_name!r} process "
                f"({', '.join(choices) or 'none'}, at their defaults: eta=0, churn=0)"
            )
        return SAMPLERS.get(spec.sampler), spec.settings(), path[:-1]

    def record(self) -> Dict[str, Any]:
        """The spec as recorded with results: every field, the unset ones as None."""
        return asdict(self)
