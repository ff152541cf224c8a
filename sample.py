"""Draw samples from a trained run.

    python sample.py --config CONFIG --workdir WORKDIR --checkpoint 0 --batch_size=9
                     [--same_init | --share_noise | --interpolate [--share_noise] --num_points=20] [--delta=D]
    python sample.py --workdir WORKDIR --interpolate --image_a A.png --image_b B.png --num_points 9
    python sample.py --workdir WORKDIR --image A.png (--resample_below LEVEL | --resample_above LEVEL) --batch_size 8
    python sample.py --workdir WORKDIR --steps 50 --eta 0          # gaussian process: 50 DDIM steps, deterministic
    python sample.py --workdir WORKDIR --interpolate --image_a A.png --image_b B.png --deterministic --steps 100

--config may be left out: the checkpoint carries the run's config. Writes a grid of the samples, a grid
of the initial states u_K, a GIF of the reverse process and the raw arrays (.npz) under
WORKDIR/sample_outputs/ and prints the paths. Runs unchanged under `torchrun --nproc_per_node=N sample.py`
or `mpiexec -n N python sample.py`: batches of eval.batch_size images are shared out over the processes (the same
samples for any number of them) and rank 0 writes the outputs.
"""

import os

from absl import flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Configuration file; default: the checkpoint's own.", lock_config=True)
flags.DEFINE_string("workdir", None, "Run directory of a training run.")
flags.DEFINE_integer("checkpoint", 0, "0: the latest checkpoint (checkpoints-meta); N: checkpoints/checkpoint_N.pth.")
flags.DEFINE_integer("batch_size", 9, "Number of samples.")
flags.DEFINE_bool("same_init", False, "All samples start from the same u_K; the step noise differs.")
flags.DEFINE_bool("share_noise", False, "All samples share the step noise; u_K differs. With --interpolate: see there.")
flags.DEFINE_bool(
    "interpolate",
    False,
    "Interpolate u_K linearly between two prior draws, the step noise spherically between two streams "
    "(with --share_noise: one stream for all).",
)
flags.DEFINE_integer("num_points", 20, "Number of points along the interpolation.")
flags.DEFINE_float("delta", None, "Sampling noise std (ihdm); default: the config's (1.25 sigma).")
flags.DEFINE_integer("seed", None, "Base seed; default: config.eval.seed.")
flags.DEFINE_float("temperature", 1.0, "Prior spread around its mean: 1 the trained prior, 0 its mean.")
flags.DEFINE_float("noise_temperature", 1.0, "Scale of the reverse-step noise: 1 as trained, 0 none.")
flags.DEFINE_string("image_a", None, "With --interpolate: interpolate between the exact latents of this image ...")
flags.DEFINE_string("image_b", None, "... and this one (both given or neither).")
flags.DEFINE_string("image", None, "Variations of this image by level of detail (with a --resample_* flag).")
flags.DEFINE_integer("resample_below", None, "Keep the image's latent above LEVEL, redraw the noise at steps <= LEVEL.")
flags.DEFINE_integer("resample_above", None, "Keep the image's latent at steps <= LEVEL, redraw u_K and the rest.")
flags.DEFINE_integer("steps", None, "Reverse steps evenly spaced over the K levels (gaussian process); default: all K.")
flags.DEFINE_float("eta", None, "gaussian process: DDIM noise scale, 0 deterministic .. 1 ancestral (the default).")
flags.DEFINE_bool(
    "deterministic",
    False,
    "With --interpolate --image_a/--image_b: deterministic latents u_K (DDIM inversion, gaussian process), "
    "interpolated spherically; prints their reconstruction error.",
)
flags.mark_flags_as_required(["workdir"])


def chosen_mode() -> str:
    """random, same_init, share_noise, interpolate, interpolate_shared_noise, interpolate_images or resample;
    conflicting flags refused."""
    image_mode = chosen_image_mode()
    if image_mode is not None:
        return image_mode
    if FLAGS.interpolate and FLAGS.share_noise and not FLAGS.same_init:
        return "interpolate_shared_noise"
    chosen = [name for name in ("same_init", "share_noise", "interpolate") if getattr(FLAGS, name)]
    if len(chosen) > 1:
        raise ValueError(f"choose at most one of --same_init, --share_noise, --interpolate (got {', '.join(chosen)})")
    return chosen[0] if chosen else "random"


def chosen_image_mode():
    """interpolate_images, resample or None (no image flag); refuses incomplete or conflicting image flags."""
    if (FLAGS.image_a is None) != (FLAGS.image_b is None):
        given = "--image_a" if FLAGS.image_b is None else "--image_b"
        raise ValueError(f"{given} given alone; allowed: both --image_a and --image_b (with --interpolate) or neither")
    resample = [name for name in ("resample_below", "resample_above") if getattr(FLAGS, name) is not None]
    if len(resample) > 1:
        raise ValueError("both --resample_below and --resample_above given; allowed: exactly one of them")
    if FLAGS.image is not None and not resample:
        raise ValueError(f"--image={FLAGS.image} given without --resample_below or --resample_above; allowed: one")
    if resample and FLAGS.image is None:
        raise ValueError(f"--{resample[0]} given without --image; allowed: with --image=PATH")
    if FLAGS.image_a is not None and FLAGS.image is not None:
        raise ValueError("--image_a/--image_b and --image given; allowed: one of the two commands")
    others = [name for name in ("same_init", "share_noise") if getattr(FLAGS, name)]
    if FLAGS.image_a is not None and not FLAGS.interpolate:
        raise ValueError("--image_a/--image_b given without --interpolate; allowed: with --interpolate")
    if FLAGS.deterministic and FLAGS.image_a is None:
        raise ValueError("--deterministic given without --interpolate --image_a/--image_b; allowed: with them")
    if FLAGS.steps is not None and FLAGS.image is not None:
        raise ValueError(f"--steps={FLAGS.steps} with --image: exact latents use every level; allowed: leave it out")
    if FLAGS.steps is not None and FLAGS.image_a is not None and not FLAGS.deterministic:
        raise ValueError(
            f"--steps={FLAGS.steps} with --image_a/--image_b: exact latents use every level; "
            "allowed: with --deterministic, or leave it out"
        )
    if FLAGS.image is not None and FLAGS.interpolate:
        others.append("interpolate")
    mode = "interpolate_images" if FLAGS.image_a is not None else "resample" if FLAGS.image is not None else None
    if mode is not None and others:
        raise ValueError(f"--{others[0]} cannot be combined with image flags; allowed: leave it out")
    return mode


def image_paths(mode: str) -> list:
    """The image files of an image mode ([] otherwise), each checked to open as an image before any model loads."""
    from PIL import Image

    paths = {"interpolate_images": [FLAGS.image_a, FLAGS.image_b], "resample": [FLAGS.image]}.get(mode, [])
    for path in paths:
        try:
            with Image.open(path) as image:
                image.load()
        except (OSError, ValueError) as error:
            raise ValueError(f"image {path!r} cannot be read ({error}); allowed: a PNG/JPEG/... image file") from None
    return paths


def resample_level() -> dict:
    """{"below": L} or {"above": L} from the --resample_* flags."""
    if FLAGS.resample_below is not None:
        return {"below": FLAGS.resample_below}
    return {"above": FLAGS.resample_above}


def check_flags(mode: str) -> int:
    """One-line errors for bad flag values, before anything is loaded; returns the number of samples."""
    from scripts.config.validate import int_at_least, real_above, real_at_least, require

    require("--checkpoint", FLAGS.checkpoint, int_at_least(0), "an integer >= 0 (0: the latest state)")
    require("--seed", FLAGS.seed, int_at_least(0), "an integer >= 0")
    require("--delta", FLAGS.delta, real_above(0), "a finite number > 0 (the sampling noise std)")
    require("--temperature", FLAGS.temperature, real_at_least(0), "a finite number >= 0 (the prior's spread)")
    require("--noise_temperature", FLAGS.noise_temperature, real_at_least(0), "a finite number >= 0")
    require("--steps", FLAGS.steps, int_at_least(1), "an integer in 1..K (K: the model's levels)")
    require("--eta", FLAGS.eta, lambda value: real_at_least(0)(value) and value <= 1, "a number in [0, 1]")
    for flag in ("resample_below", "resample_above"):
        require(f"--{flag}", getattr(FLAGS, flag), int_at_least(0), "an integer in 0..K (K: the model's levels)")
    if mode.startswith("interpolate"):
        require("--num_points", FLAGS.num_points, int_at_least(2), "an integer >= 2 (the two ends and between)")
        return FLAGS.num_points
    require("--batch_size", FLAGS.batch_size, int_at_least(1), "an integer >= 1 (the number of samples)")
    return FLAGS.batch_size


# config groups that change the samples drawn from a given checkpoint (training.*, optim.* and seed shaped
# the checkpoint; eval.seed is in the folder name; eval.batch_size and the others do not change samples)
SAMPLING_GROUPS = ("model", "data")


def output_folder(mode: str, count: int, seed: int, step: int, config, images=()) -> str:
    """WORKDIR/sample_outputs/<name>, the name made of every option that changes the result.

    The mode, number of samples, checkpoint, its step, seed and --delta appear in the name; a --config
    whose model or data keys differ from the run's saved config.json adds a short hash of those keys; input
    images add their file stems and a short hash of their bytes, resampling its level.
    """
    import hashlib
    import json

    from scripts.runs.rundir import RunDir

    name = f"{mode}_n{count}_checkpoint{FLAGS.checkpoint}_step{step}_seed{seed}"
    if mode == "resample":
        name += "_{}{}".format(*next(iter(resample_level().items())))
    if images:
        stems = "-".join(os.path.splitext(os.path.basename(path))[0] for path in images)
        digest = hashlib.sha1(b"".join(open(path, "rb").read() for path in images)).hexdigest()[:8]
        name += f"_images-{stems}-{digest}"
    if FLAGS.delta is not None:
        name += f"_delta{FLAGS.delta:g}"
    if FLAGS.steps is not None:
        name += f"_steps{FLAGS.steps}"
    if FLAGS.eta is not None:
        name += f"_eta{FLAGS.eta:g}"
    if FLAGS.deterministic:
        name += "_deterministic"
    if FLAGS.temperature != 1.0:
        name += f"_T{FLAGS.temperature:g}"
    if FLAGS.noise_temperature != 1.0:
        name += f"_noiseT{FLAGS.noise_temperature:g}"
    used = sampling_keys(config)
    if FLAGS.config is not None and used != saved_sampling_keys():
        name += f"_config{hashlib.sha1(json.dumps(used, sort_keys=True).encode()).hexdigest()[:8]}"
    return RunDir(FLAGS.workdir).path("sample_outputs", name)


def sampling_keys(config) -> dict:
    return {group: config[group].to_dict() for group in SAMPLING_GROUPS}


def saved_sampling_keys():
    """The sampling keys of WORKDIR/config.json; None if it is missing or unreadable (then any --config differs)."""
    from scripts.cli.errors import CheckpointError
    from scripts.runs.rundir import RunDir

    try:
        return sampling_keys(RunDir(FLAGS.workdir).load_config())
    except (CheckpointError, OSError, TypeError, ValueError):
        return None


def write_pictures(folder, out, mode, config, model):
    """samples.png, initial.png and process.gif: image grids, or scatter plots over the data for 2D points."""
    import torch

    from scripts.config import build
    from scripts.sampling.imaging import save_gif, save_png, save_scatter, save_scatter_gif, to_unit

    if build.data_kind(config) == "points":
        data = build.build_data(config, "train", model.process)
        reference = data.fetch(torch.arange(min(2000, len(data)))).flatten(1)
        return [
            save_scatter(os.path.join(folder, "samples.png"), out["samples"].flatten(1), reference, f"{mode} samples"),
            save_scatter(
                os.path.join(folder, "initial.png"), out["initial"].flatten(1), reference, "initial states u_K"
            ),
            save_scatter_gif(os.path.join(folder, "process.gif"), [u.flatten(1) for u in out["trajectory"]], reference),
        ]
    nrow = len(out["samples"]) if mode.startswith("interpolate") else None
    unit = lambda x: to_unit(x, model.process.data_range)
    return [
        save_png(os.path.join(folder, "samples.png"), unit(out["samples"]), nrow),
        save_png(os.path.join(folder, "initial.png"), unit(out["initial"]), nrow),
        save_gif(os.path.join(folder, "process.gif"), [unit(u) for u in out["trajectory"]], nrow),
    ]


def run():
    from scripts.cli.flags import require_writable_folder
    from scripts.config.validate import validate_config
    from scripts.runs.rundir import RunDir

    mode = chosen_mode()
    count = check_flags(mode)
    images = image_paths(mode)
    if FLAGS.config is not None:
        validate_config(FLAGS.config)
    RunDir(FLAGS.workdir).checkpoint_path(FLAGS.checkpoint)  # a missing checkpoint is refused before any work
    require_writable_folder("--workdir", FLAGS.workdir, os.path.join(FLAGS.workdir, "sample_outputs"))

    import numpy as np

    from scripts.api import Model
    from scripts.runtime import distributed
    from scripts.sampling.imaging import save_npz
    from scripts.sampling.sampler import check_steps, sample_on_ranks

    device = distributed.init().device
    model = Model.from_run(
        FLAGS.workdir, FLAGS.checkpoint, device, config=FLAGS.config, delta=FLAGS.delta, eta=FLAGS.eta
    )
    check_steps(FLAGS.steps, model.process)  # K is known once the model is loaded
    config = model.config
    seed = config.eval.seed if FLAGS.seed is None else FLAGS.seed
    if images:
        return run_on_images(model, mode, count, seed, images)
    folder = output_folder(mode, count, seed, model.step, config)
    out = sample_on_ranks(
        model.process,
        model.net,
        model.prior,
        mode=mode,
        count=count,
        seed=seed,
        shape=model.shape,
        device=device,
        batch_size=config.eval.batch_size,
        record=True,
        progress=distributed.is_main(),
        temperature=FLAGS.temperature,
        noise_temperature=FLAGS.noise_temperature,
        steps=FLAGS.steps,
    )
    if not distributed.is_main():  # rank 0 writes what every process computed
        return
    written = write_pictures(folder, out, mode, config, model)
    npz = os.path.join(folder, "samples.npz")
    save_npz(
        npz,
        samples=out["samples"].cpu().numpy(),
        initial=out["initial"].cpu().numpy(),
        data_range=np.array(model.process.data_range),
    )
    written.append(npz)
    print(f"{count} samples ({mode}) from {model.checkpoint_path} (step {model.step}):")
    for path in written:
        print(f"  {path}")


def run_on_images(model, mode: str, count: int, seed: int, paths: list) -> None:
    """Interpolation between, or variations of, real images through their exact latents (the API); the
    latents are computed on one process, so rank 0 alone does the work."""
    import numpy as np
    import torch

    from scripts.runtime import distributed
    from scripts.sampling.imaging import save_gif, save_npz, save_png, to_unit

    if mode == "resample":
        check_resample_level(model.process.K)
    if not distributed.is_main():
        return
    folder = output_folder(mode, count, seed, model.step, model.config, paths)
    loaded = model.load_images(paths)
    unit = lambda x: to_unit(x, model.process.data_range)
    if mode == "interpolate_images":
        samples = interpolate_images(model, loaded, count, seed, paths)
        written = [
            save_png(os.path.join(folder, "interpolation.png"), unit(samples), len(samples)),
            save_gif(os.path.join(folder, "interpolation.gif"), [unit(x[None]) for x in samples], 1),
        ]
    else:
        samples = model.resample(loaded[0], count, seed=seed, **resample_level())
        original = model.decode(model.encode(loaded[:1], seed))
        written = [save_png(os.path.join(folder, "samples.png"), unit(torch.cat([original, samples])))]
    npz = os.path.join(folder, "samples.npz")
    save_npz(
        npz,
        samples=samples.cpu().numpy(),
        images=loaded.cpu().numpy(),
        data_range=np.array(model.process.data_range),
    )
    written.append(npz)
    print(f"{len(samples)} samples ({mode} of {', '.join(paths)}) from {model.checkpoint_path} (step {model.step}):")
    for path in written:
        print(f"  {path}")


def interpolate_images(model, loaded, count: int, seed: int, paths: list):
    """[count, C, H, W] between the two loaded images [2, C, H, W]: through their exact latents, or with
    --deterministic through their deterministic latents, whose reconstruction errors are printed."""
    if not FLAGS.deterministic:
        return model.interpolate(loaded[0], loaded[1], num_points=count, seed=seed)
    samples, errors = model.interpolate_deterministic(loaded[0], loaded[1], num_points=count, steps=FLAGS.steps)
    listed = ", ".join(f"{path} {error:.2e}" for path, error in zip(paths, errors))
    data_range = model.process.data_range
    print(f"reconstruction error of the deterministic latents (RMS over pixels, data range {data_range}): {listed}")
    return samples


def check_resample_level(K: int) -> None:
    """--resample_below/--resample_above must lie in 0..K, K the model's number of levels (known once loaded)."""
    from scripts.config.validate import int_at_least, require

    flag, level = next(iter(resample_level().items()))
    require(f"--resample_{flag}", level, lambda value: int_at_least(0)(value) and value <= K, f"an integer in 0..{K}")


if __name__ == "__main__":
    from scripts.cli.command import run_command

    run_command(run)
