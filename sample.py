"""Draw samples from a trained run.

    python sample.py --config CONFIG --workdir WORKDIR --checkpoint 0 --batch_size=9
                     [--same_init | --share_noise | --interpolate [--share_noise] --num_points=20] [--delta=D]
    python sample.py --workdir WORKDIR --interpolate --image_a A.png --image_b B.png --num_points 9 [--video --fps 10]
    python sample.py --workdir WORKDIR --image A.png (--resample_below LEVEL | --resample_above LEVEL) --batch_size 8
    python sample.py --workdir WORKDIR --steps 50 --eta 0          # gaussian process: 50 DDIM steps, deterministic
    python sample.py --workdir WORKDIR --sampler dpmpp_2m --steps 20 --grid logsnr   # DPM-Solver++(2M), 20 NFE
    python sample.py --workdir WORKDIR --interpolate --image_a A.png --image_b B.png --deterministic --steps 100
    python sample.py --workdir WORKDIR --per_class 8 --guidance 1     # class-conditional: a row of 8 per class
    python sample.py --workdir WORKDIR --class_label 3 --batch_size 16 # class-conditional: 16 samples of class 3
    python sample.py --workdir WORKDIR --restore A.png,B.png --from_level 20 [--degraded]   # cold: restoration

--config may be left out: the checkpoint carries the run's config. Writes the raw arrays (samples.npz), and a
grid of the first samples, a grid of their initial states u_K and a GIF of their reverse process, under
WORKDIR/sample_outputs/ and prints the paths. Draws from the prior are made in chunks of eval.batch_size images,
each appended to samples.npz as it comes, so the memory does not grow with --batch_size; a request whose
samples.npz cannot fit the free disk space is refused first, in one line. Runs unchanged under
`torchrun --nproc_per_node=N sample.py` or `mpiexec -n N python sample.py`: the chunks are shared out over the
processes (the same samples for any number of them) and rank 0 writes the outputs.

The flags become a SamplingRequest (scripts/sampling/request.py: its checks and the output folder's name), and
scripts/sample_run.py draws it through the Python API.
"""

from absl import flags
from ml_collections import config_flags

from scripts.cli import sampling_flags

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
flags.DEFINE_list(
    "level_temperatures", None, "flow_inverse (hflow): one temperature per level, the finest first, e.g. 0.9,0.8,0.7."
)
flags.DEFINE_bool("video", False, "With --interpolate: also write interpolation.mp4 (H.264, imageio-ffmpeg).")
flags.DEFINE_float("fps", 10.0, "Frames per second of the --video MP4.")
flags.DEFINE_string("image_a", None, "With --interpolate: interpolate between the exact latents of this image ...")
flags.DEFINE_string("image_b", None, "... and this one (both given or neither).")
flags.DEFINE_string("image", None, "Variations of this image by level of detail (with a --resample_* flag).")
flags.DEFINE_integer("resample_below", None, "Keep the image's latent above LEVEL, redraw the noise at steps <= LEVEL.")
flags.DEFINE_integer("resample_above", None, "Keep the image's latent at steps <= LEVEL, redraw u_K and the rest.")
flags.DEFINE_list(
    "restore", None, "Cold process: restore these images (degraded to --from_level by the run's operator)."
)
flags.DEFINE_integer("from_level", None, "With --restore: the level 1..K to degrade to and restore from (default: K).")
flags.DEFINE_bool(
    "degraded", False, "With --restore: the images are already degraded (taken as the states at --from_level)."
)
sampling_flags.define()  # --sampler, --grid, --steps, --eta, --churn, --guidance, --mixed_precision
flags.DEFINE_integer("class_label", None, "Class-conditional models: every sample of class L (and image flags' class).")
flags.DEFINE_list("class_labels", None, "Class-conditional models: sample i of class labels[i mod n], e.g. 0,1,2.")
flags.DEFINE_integer(
    "per_class",
    None,
    "Class-conditional models: a grid of N samples per class, one row each (of --class_labels, or all).",
)
flags.DEFINE_bool(
    "deterministic",
    False,
    "With --interpolate --image_a/--image_b: deterministic latents u_K (a deterministic sampler run backwards, "
    "DDIM at eta 0 unless --sampler says otherwise; gaussian process), "
    "interpolated spherically; prints their reconstruction error.",
)
flags.mark_flags_as_required(["workdir"])


def run() -> None:
    """Collect the flags into a request, check it (before torch is imported), draw it."""
    from scripts.sampling.request import SamplingRequest, check_request

    request = SamplingRequest.from_flags(FLAGS)
    check_request(request)
    from scripts.sample_run import run_request

    run_request(request)


if __name__ == "__main__":
    from scripts.cli.command import run_command

    run_command(run)
