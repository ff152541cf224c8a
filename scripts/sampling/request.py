"""What sample.py is asked to draw (its flags), the check of the request, and the name of its output folder.

Kept apart from the sampler so that conflicting flags, a bad value, an unreadable image or a bad --config are
refused, each in one line, before torch is imported, and a missing checkpoint before any model loads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import ml_collections

from scripts.cli import sampling_flags
from scripts.cli.errors import CheckpointError
from scripts.cli.flags import require_writable_folder
from scripts.cli.values import bad_value, int_at_least, real_above, real_at_least, require
from scripts.config.validate import SAMPLES, keys_of, lookup, validate_config
from scripts.sampling.image_files import read_image
from scripts.sampling.npz_stream import bytes_needed

PRIOR_FLAGS = ("same_init", "share_noise", "interpolate")  # the flags that choose a mode of the sampler
# (request field, folder-name part) of the options that appear in the output folder's name when given, in order
OPTION_SUFFIXES = (
    ("delta", "_delta{:g}"),
    ("sampler", "_{}"),
    ("grid", "_grid{}"),
    ("steps", "_steps{}"),
    ("eta", "_eta{:g}"),
    ("churn", "_churn{:g}"),
    ("guidance", "_guidance{:g}"),
    ("mixed_precision", "_precision-{}"),
    ("class_label", "_class{}"),
    ("per_class", "_per_class{}"),
)


@dataclass(frozen=True)
class SamplingRequest:
    """sample.py's flags, one field each, of the same name (``from_flags``)."""

    workdir: str
    config: Optional[ml_collections.ConfigDict] = None
    checkpoint: int = 0
    batch_size: int = 9
    same_init: bool = False
    share_noise: bool = False
    interpolate: bool = False
    num_points: int = 20
    delta: Optional[float] = None
    seed: Optional[int] = None
    temperature: float = 1.0
    noise_temperature: float = 1.0
    level_temperatures: Optional[List[str]] = None
    video: bool = False
    fps: float = 10.0
    image_a: Optional[str] = None
    image_b: Optional[str] = None
    image: Optional[str] = None
    resample_below: Optional[int] = None
    resample_above: Optional[int] = None
    sampler: Optional[str] = None
    grid: Optional[str] = None
    steps: Optional[int] = None
    eta: Optional[float] = None
    churn: Optional[float] = None
    deterministic: bool = False
    guidance: Optional[float] = None
    mixed_precision: Optional[str] = None
    class_label: Optional[int] = None
    class_labels: Optional[List[str]] = None
    per_class: Optional[int] = None
    restore: Optional[List[str]] = None
    from_level: Optional[int] = None
    degraded: bool = False

    @classmethod
    def from_flags(cls, flags: Any) -> "SamplingRequest":
        """The request of parsed flags (absl's FLAGS), each field read from the flag of its name."""
        return cls(**{field.name: getattr(flags, field.name) for field in dataclasses.fields(cls)})

    @property
    def mode(self) -> str:
        """random, same_init, share_noise, interpolate, interpolate_shared_noise, interpolate_images, resample or
        restore; conflicting or incomplete flags are a one-line ValueError."""
        return image_mode(self) or prior_mode(self)

    @property
    def count(self) -> int:
        """The number of samples: --num_points along an interpolation, --per_class for each class of a grid, else
        --batch_size. (A --per_class grid of every class is counted once the model's classes are known:
        ``for_classes``.)"""
        if self.mode.startswith("interpolate"):
            return self.num_points
        if self.mode == "restore":
            return len(self.restore)
        return self.label_choice.count() or self.batch_size

    @property
    def label_choice(self):
        """The classes of the samples (``LabelChoice``): --class_label, --class_labels, their --per_class grid."""
        from model_code.conditioning import LabelChoice

        if self.class_label is not None:
            classes = (self.class_label,)
        elif self.class_labels is not None:
            classes = tuple(parse_class_labels(self.class_labels))
        else:
            classes = None
        return LabelChoice(classes, self.per_class if classes is not None else None)

    def for_classes(self, num_classes: int) -> "SamplingRequest":
        """The request for a model of ``num_classes`` classes: --per_class without a class list is a grid of
        every class 0..C-1 (refused, in one line, for an unconditional model)."""
        if self.per_class is None or self.class_label is not None or self.class_labels is not None:
            return self
        if num_classes == 0:
            raise ValueError(
                f"--per_class={self.per_class} given, but this model is unconditional (model.num_classes=0); "
                "allowed: no class option"
            )
        return dataclasses.replace(self, class_labels=[str(label) for label in range(num_classes)])

    @property
    def images(self) -> List[str]:
        """The input image files of an image mode, [] for the others."""
        by_mode = {
            "interpolate_images": [self.image_a, self.image_b],
            "resample": [self.image],
            "restore": self.restore,
        }
        return list(by_mode.get(self.mode, []))

    @property
    def resample_level(self) -> Dict[str, int]:
        """{"below": L} or {"above": L}, from --resample_below or --resample_above (resample mode)."""
        if self.resample_below is not None:
            return {"below": self.resample_below}
        return {"above": self.resample_above}


def parse_class_labels(values: Sequence[str]) -> List[int]:
    """--class_labels=0,1,2 (absl's list of strings) as integers; one line for a value that is not one."""
    labels = []
    for value in values:
        try:
            labels.append(int(value))
        except ValueError:
            raise ValueError(
                f"--class_labels={','.join(values)}: {value!r} is not an integer; allowed: e.g. 0,1,2"
            ) from None
    if not labels:
        raise ValueError("--class_labels= given empty; allowed: a comma-separated list of class labels, e.g. 0,1,2")
    return labels


def parse_level_temperatures(values: Optional[Sequence[str]]) -> Optional[Tuple[float, ...]]:
    """--level_temperatures=0.9,0.8,0.7 (absl's list of strings) as finite numbers >= 0; one line otherwise."""
    if values is None:
        return None
    try:
        temperatures = tuple(float(value) for value in values)
    except ValueError:
        temperatures = ()
    if not temperatures or not all(real_at_least(0)(t) for t in temperatures):
        raise bad_value("--level_temperatures", ",".join(values), "finite numbers >= 0, one per level, e.g. 0.9,0.8")
    return temperatures


def prior_mode(request: SamplingRequest) -> str:
    """The mode of a request without image flags: random, or as --same_init, --share_noise, --interpolate choose."""
    if request.interpolate and request.share_noise and not request.same_init:
        return "interpolate_shared_noise"
    chosen = [name for name in PRIOR_FLAGS if getattr(request, name)]
    if len(chosen) > 1:
        raise ValueError(f"choose at most one of --same_init, --share_noise, --interpolate (got {', '.join(chosen)})")
    return chosen[0] if chosen else "random"


def image_mode(request: SamplingRequest) -> Optional[str]:
    """interpolate_images, resample, restore or None (no image flag), once the image flags are complete and fit the
    rest."""
    check_restore_flags(request)
    if request.restore is not None:
        return "restore"
    check_image_flags_complete(request)
    check_image_flags_fit(request)
    if request.image_a is not None:
        return "interpolate_images"
    return "resample" if request.image is not None else None


def check_restore_flags(request: SamplingRequest) -> None:
    """--from_level and --degraded only with --restore, and --restore with no other image or mode flag (the
    sampling flags choose its sampler and steps)."""
    if request.restore is None:
        for flag in ("from_level", "degraded"):
            if getattr(request, flag) not in (None, False):
                raise ValueError(f"--{flag} given without --restore; allowed: with --restore=IMAGE[,IMAGE...]")
        return
    if not request.restore:
        raise ValueError("--restore= given empty; allowed: a comma-separated list of image files")
    others = [name for name in ("image", "image_a", "image_b", *PRIOR_FLAGS, "deterministic") if getattr(request, name)]
    others += [name for name in ("class_labels", "per_class") if getattr(request, name) is not None]
    if others:
        raise ValueError(f"--{others[0]} cannot be combined with --restore; allowed: leave it out")


def check_image_flags_complete(request: SamplingRequest) -> None:
    """Refuse an image flag without its partner: --image_a with --image_b, --image with one --resample_* flag."""
    if (request.image_a is None) != (request.image_b is None):
        given = "--image_a" if request.image_b is None else "--image_b"
        raise ValueError(f"{given} given alone; allowed: both --image_a and --image_b (with --interpolate) or neither")
    resample = [name for name in ("resample_below", "resample_above") if getattr(request, name) is not None]
    if len(resample) > 1:
        raise ValueError("both --resample_below and --resample_above given; allowed: exactly one of them")
    if request.image is not None and not resample:
        raise ValueError(f"--image={request.image} given without --resample_below or --resample_above; allowed: one")
    if resample and request.image is None:
        raise ValueError(f"--{resample[0]} given without --image; allowed: with --image=PATH")
    if request.image_a is not None and request.image is not None:
        raise ValueError("--image_a/--image_b and --image given; allowed: one of the two commands")


def check_image_flags_fit(request: SamplingRequest) -> None:
    """Refuse flags that the image commands need or cannot take: --interpolate with --image_a/--image_b,
    --deterministic only with them, --steps only with --deterministic, no other mode flag."""
    if request.image_a is not None and not request.interpolate:
        raise ValueError("--image_a/--image_b given without --interpolate; allowed: with --interpolate")
    if request.deterministic and request.image_a is None:
        raise ValueError("--deterministic given without --interpolate --image_a/--image_b; allowed: with them")
    if request.guidance is not None and (request.image is not None or request.image_a is not None):
        raise ValueError(
            f"--guidance={request.guidance} with image flags: the latents are those of the conditional model; "
            "allowed: leave it out"
        )
    if request.mixed_precision is not None and request.image_a is not None:
        raise ValueError(
            f"--mixed_precision={request.mixed_precision} with --image_a/--image_b: latents are encoded and decoded "
            "in float32; allowed: leave it out"
        )
    for flag, value in sampling_options(request).items():
        if request.image is not None:
            raise ValueError(f"--{flag}={value} with --image: exact latents use every level; allowed: leave it out")
        if request.image_a is not None and not request.deterministic:
            raise ValueError(
                f"--{flag}={value} with --image_a/--image_b: exact latents use every level; "
                "allowed: with --deterministic, or leave it out"
            )
    others = [name for name in ("same_init", "share_noise") if getattr(request, name)]
    if request.image is not None and request.interpolate:
        others.append("interpolate")
    if (request.image_a is not None or request.image is not None) and others:
        raise ValueError(f"--{others[0]} cannot be combined with image flags; allowed: leave it out")
    grid_flags = [name for name in ("class_labels", "per_class") if getattr(request, name) is not None]
    if (request.image_a is not None or request.image is not None) and grid_flags:
        raise ValueError(
            f"--{grid_flags[0]} cannot be combined with image flags; allowed: --class_label=L (the images' class)"
        )


def run_dir(request: SamplingRequest):
    """The request's RunDir (scripts.runs imports torch, so it is imported once the flags are checked)."""
    from scripts.runs.rundir import RunDir

    return RunDir(request.workdir)


def check_request(request: SamplingRequest) -> None:
    """Every one-line refusal that needs no model: the mode's flags, each flag's value, the input images, the
    --config's values, the checkpoint's file; creates WORKDIR/sample_outputs to know that it can be written."""
    check_flag_values(request)
    for path in request.images:
        read_image(path, "RGB")  # refused here, in one line, if it cannot be decoded
    if request.config is not None:
        validate_config(request.config)
    run_dir(request).checkpoint_path(request.checkpoint)
    require_writable_folder("--workdir", request.workdir, os.path.join(request.workdir, "sample_outputs"))


def check_flag_values(request: SamplingRequest) -> None:
    """``--flag=<value>: <allowed>`` for the first bad value, in the order of the flags' definitions (after the
    mode: --num_points counts only along an interpolation, --batch_size otherwise)."""
    mode = request.mode
    require("--checkpoint", request.checkpoint, int_at_least(0), "an integer >= 0 (0: the latest state)")
    require("--seed", request.seed, int_at_least(0), "an integer >= 0")
    require("--delta", request.delta, real_above(0), "a finite number > 0 (the sampling noise std)")
    require("--temperature", request.temperature, real_at_least(0), "a finite number >= 0 (the prior's spread)")
    require("--noise_temperature", request.noise_temperature, real_at_least(0), "a finite number >= 0")
    parse_level_temperatures(request.level_temperatures)
    if request.video and not mode.startswith("interpolate"):
        raise ValueError("--video given without --interpolate; allowed: with --interpolate (the MP4 of its frames)")
    require("--fps", request.fps, real_above(0), "a finite number > 0 (frames per second of the --video MP4)")
    sampling_flags.check(sampling_options(request))
    check_class_flags(request)
    for flag in ("resample_below", "resample_above"):
        levels = "an integer in 0..K (K: the model's levels)"
        require(f"--{flag}", getattr(request, flag), int_at_least(0), levels)
    require("--from_level", request.from_level, int_at_least(1), "an integer in 1..K (K: the model's levels)")
    if mode.startswith("interpolate"):
        require("--num_points", request.num_points, int_at_least(2), "an integer >= 2 (the two ends and between)")
    else:
        require("--batch_size", request.batch_size, int_at_least(1), "an integer >= 1 (the number of samples)")


def check_class_flags(request: SamplingRequest) -> None:
    """--class_label and --class_labels exclude each other; labels are integers >= 0 (the model's range is checked
    once it is loaded); --per_class is an integer >= 1 and not along an interpolation."""
    if request.class_label is not None and request.class_labels is not None:
        raise ValueError("both --class_label and --class_labels given; allowed: one of them")
    classes = "an integer >= 0 (a class of the model)"
    require("--class_label", request.class_label, int_at_least(0), classes)
    for label in parse_class_labels(request.class_labels) if request.class_labels is not None else ():
        require("--class_labels", label, int_at_least(0), "integers >= 0 (classes of the model), e.g. 0,1,2")
    require("--per_class", request.per_class, int_at_least(1), "an integer >= 1 (samples of each class)")
    if request.per_class is not None and request.mode.startswith("interpolate"):
        raise ValueError(f"--per_class={request.per_class} along an interpolation; allowed: --class_label=L")


def sampling_options(request: SamplingRequest) -> Dict[str, Any]:
    """The sampling flags given (--sampler, --grid, --steps, --eta, --churn, --guidance, --mixed_precision), by
    name."""
    return sampling_flags.options(request)


def sampling_spec(request: SamplingRequest, default_sampler: Optional[str] = None):
    """The request's sampling specification (``SamplingSpec``), with its temperatures; ``default_sampler`` is
    used when --sampler is not given (the deterministic latents default to DDIM)."""
    from model_code.samplers.spec import SamplingSpec

    options = sampling_options(request)
    if default_sampler is not None:
        options.setdefault("sampler", default_sampler)
    return SamplingSpec.from_options(
        temperature=request.temperature,
        noise_temperature=request.noise_temperature,
        level_temperatures=parse_level_temperatures(request.level_temperatures),
        classes=request.label_choice,
        **options,
    )


def resample_side_and_level(request: SamplingRequest) -> Tuple[str, int]:
    """("below", L) or ("above", L), from --resample_below or --resample_above."""
    return next(iter(request.resample_level.items()))


def check_resample_level(request: SamplingRequest, K: int) -> None:
    """--resample_below/--resample_above must lie in 0..K, K the model's number of levels (known once loaded)."""
    side, level = resample_side_and_level(request)
    require(f"--resample_{side}", level, lambda value: int_at_least(0)(value) and value <= K, f"an integer in 0..{K}")


def sample_array_shapes(count: int, shape: Sequence[int], mode: str = "random") -> Dict[str, Tuple[int, ...]]:
    """The shapes of the arrays that ``count`` samples of ``mode`` stream to samples.npz: the samples and their
    initial states u_K for a draw from the prior, the samples alone for the variations of an image."""
    names = ("samples",) if mode == "resample" else ("samples", "initial")
    return {name: (count, *shape) for name in names}


def check_disk_space(request: SamplingRequest, folder: str, shape: Sequence[int]) -> None:
    """Refuse, in one line, a draw from the prior (or variations of an image) whose samples.npz cannot be written
    in the free space of the file system that holds ``folder`` (or its nearest existing parent); ``shape`` the
    model's image shape."""
    existing = folder
    while not os.path.isdir(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    arrays = sample_array_shapes(request.count, shape, request.mode)
    need, free = bytes_needed(arrays), shutil.disk_usage(existing).free
    if need > free:
        flag = "--num_points" if request.mode.startswith("interpolate") else "--batch_size"
        raise ValueError(
            f"{flag}={request.count}: the samples need about {gigabytes(need)} GB on {existing}, which has "
            f"{gigabytes(free)} GB free; allowed: at most {samples_that_fit(free, shape, request.mode)} samples there, "
            "or more free space"
        )


def samples_that_fit(free: int, shape: Sequence[int], mode: str) -> int:
    """The largest number of samples of ``mode`` whose samples.npz needs at most ``free`` bytes (by bisection)."""
    fits = lambda count: bytes_needed(sample_array_shapes(count, shape, mode)) <= free
    low, high = 0, 1
    while fits(high):
        low, high = high, 2 * high
    while high - low > 1:  # fits(low), not fits(high)
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low


def gigabytes(size: int) -> str:
    """A size in bytes as GB for a message, without an exponent: 0.25, 7.50, 1,024."""
    value = size / 1e9
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"


def output_folder(request: SamplingRequest, *, seed: int, step: int) -> str:
    """WORKDIR/sample_outputs/<name>, the name made of every option that changes the result.

    The mode, number of samples, checkpoint, its step and the seed always appear; then, when given, resampling's
    level, the input images' file stems and a short hash of their bytes, --delta, --sampler, --grid, --steps,
    --eta, --churn, --guidance, --mixed_precision, the classes, --deterministic, temperatures other than 1, and a
    short hash of the --config's sample-changing keys where they differ from the run's saved config.json (its
    model-changing keys agree with the run's, or the model would not have loaded).
    """
    name = f"{request.mode}_n{request.count}_checkpoint{request.checkpoint}_step{step}_seed{seed}"
    return run_dir(request).path("sample_outputs", name + "".join(name_suffixes(request)))


def name_suffixes(request: SamplingRequest) -> List[str]:
    """The parts of the folder name after the seed, one for each option given, in a fixed order."""
    suffixes = []
    if request.mode == "resample":
        suffixes.append("_{}{}".format(*resample_side_and_level(request)))
    if request.from_level is not None:
        suffixes.append(f"_from{request.from_level}")
    if request.degraded:
        suffixes.append("_degraded")
    if request.images:
        stems = "-".join(os.path.splitext(os.path.basename(path))[0] for path in request.images)
        suffixes.append(f"_images-{stems}-{file_digest(request.images)}")
    for field, template in OPTION_SUFFIXES:
        if getattr(request, field) is not None:
            suffixes.append(template.format(getattr(request, field)))
    if request.class_labels is not None:
        suffixes.append("_classes" + "-".join(str(label) for label in parse_class_labels(request.class_labels)))
    if request.deterministic:
        suffixes.append("_deterministic")
    if request.temperature != 1.0:
        suffixes.append(f"_T{request.temperature:g}")
    if request.noise_temperature != 1.0:
        suffixes.append(f"_noiseT{request.noise_temperature:g}")
    if request.level_temperatures is not None:
        suffixes.append("_levelT" + "-".join(f"{t:g}" for t in parse_level_temperatures(request.level_temperatures)))
    if request.config is not None and sample_changing_values(request.config) != saved_sample_changing_values(request):
        suffixes.append(f"_config{short_hash(json.dumps(sample_changing_values(request.config), sort_keys=True))}")
    return suffixes


def short_hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def file_digest(paths: List[str]) -> str:
    """A short hash of the files' bytes, in order."""
    return hashlib.sha1(b"".join(open(path, "rb").read() for path in paths)).hexdigest()[:8]


def sample_changing_values(config: ml_collections.ConfigDict) -> Dict[str, Any]:
    """The values of the config's sample-changing keys (scripts/config/validate.py), by dotted key."""
    return {key: lookup(config, key) for key in keys_of(SAMPLES)}


def saved_sample_changing_values(request: SamplingRequest) -> Optional[Dict[str, Any]]:
    """Those of WORKDIR/config.json; None if it is missing or unreadable (then any --config differs)."""
    try:
        return sample_changing_values(run_dir(request).load_config())
    except (CheckpointError, OSError, TypeError, ValueError):
        return None
