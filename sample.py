"""Draw samples from a trained run.

    python sample.py --config CONFIG --workdir WORKDIR --checkpoint 0 --batch_size=9
                     [--same_init | --share_noise | --interpolate --num_points=20] [--delta=D]

--config may be left out: the checkpoint carries the run's config. Writes a grid of the samples, a grid
of the initial states u_K, a GIF of the reverse process and the raw arrays (.npz) under
WORKDIR/sample_outputs/ and prints the paths.
"""

import os

import torch
from absl import app, flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Configuration file; default: the checkpoint's own.", lock_config=True)
flags.DEFINE_string("workdir", None, "Run directory of a training run.")
flags.DEFINE_integer("checkpoint", 0, "0: the latest checkpoint (checkpoints-meta); N: checkpoints/checkpoint_N.pth.")
flags.DEFINE_integer("batch_size", 9, "Number of samples.")
flags.DEFINE_bool("same_init", False, "All samples start from the same u_K; the step noise differs.")
flags.DEFINE_bool("share_noise", False, "All samples share the step noise; u_K differs.")
flags.DEFINE_bool("interpolate", False, "Interpolate u_K linearly between two prior draws (shared noise).")
flags.DEFINE_integer("num_points", 20, "Number of points along the interpolation.")
flags.DEFINE_float("delta", None, "Sampling noise std (ihdm); default: the config's (1.25 sigma).")
flags.DEFINE_integer("seed", None, "Base seed; default: config.eval.seed.")
flags.mark_flags_as_required(["workdir"])


def chosen_mode() -> str:
    chosen = [name for name in ("same_init", "share_noise", "interpolate") if getattr(FLAGS, name)]
    if len(chosen) > 1:
        raise ValueError(f"choose at most one of --same_init, --share_noise, --interpolate (got {', '.join(chosen)})")
    return chosen[0] if chosen else "random"


def write_pictures(folder, out, mode, config, model):
    """samples.png, initial.png and process.gif: image grids, or scatter plots over the data for 2D points."""
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
    nrow = len(out["samples"]) if mode == "interpolate" else None
    unit = lambda x: to_unit(x, model.process.data_range)
    return [
        save_png(os.path.join(folder, "samples.png"), unit(out["samples"]), nrow),
        save_png(os.path.join(folder, "initial.png"), unit(out["initial"]), nrow),
        save_gif(os.path.join(folder, "process.gif"), [unit(u) for u in out["trajectory"]], nrow),
    ]


def run():
    import numpy as np

    from scripts.runs.trained import load_trained
    from scripts.runtime.devices import pick_device
    from scripts.sampling.sampler import sample

    mode = chosen_mode()
    count = FLAGS.num_points if mode == "interpolate" else FLAGS.batch_size
    if count < 1:
        raise ValueError(f"--batch_size / --num_points must be >= 1, got {count}")
    device = pick_device()
    model = load_trained(FLAGS.workdir, FLAGS.checkpoint, device, config=FLAGS.config, delta=FLAGS.delta)
    config = model.config
    seed = config.eval.seed if FLAGS.seed is None else FLAGS.seed
    out = sample(
        model.process,
        model.net,
        model.prior,
        mode=mode,
        count=count,
        seed=seed,
        shape=model.shape,
        device=device,
        record=True,
        progress=True,
    )

    folder = os.path.join(
        FLAGS.workdir, "sample_outputs", f"{mode}_checkpoint{FLAGS.checkpoint}_step{model.step}_seed{seed}"
    )
    written = write_pictures(folder, out, mode, config, model)
    npz = os.path.join(folder, "samples.npz")
    np.savez_compressed(
        npz,
        samples=out["samples"].cpu().numpy(),
        initial=out["initial"].cpu().numpy(),
        data_range=np.array(model.process.data_range),
    )
    written.append(npz)
    print(f"{count} samples ({mode}) from {model.checkpoint_path} (step {model.step}):")
    for path in written:
        print(f"  {path}")


def main(argv):
    from scripts.cli.errors import run_cli

    run_cli(run)


if __name__ == "__main__":
    from scripts.cli.flags import parse_flags

    app.run(main, flags_parser=parse_flags)
