"""Time each sampler per network evaluation (NFE) on a trained run, against the ancestral sampler in the same run.

    python -m scripts.benchmark_sampling --workdir runs/quick_ddpm --steps=20 --batch_size=100 --rounds=3
        [--mixed_precision=no,bf16]

Every sampler the run's process can use draws the same batch from the same prior states with ``--steps`` steps
(Heun spends two evaluations a step but the last), with the network in each precision of ``--mixed_precision``;
the rounds interleave them, and the best round of each is reported as milliseconds per NFE, images/s and a ratio
to the float32 ancestral sampler's, so that what a sampler (or a precision) adds to the network's cost shows as
a ratio above 1.
"""

from __future__ import annotations

import time
from typing import Dict, Tuple

import torch
from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Run directory of a trained run.")
flags.DEFINE_integer("steps", 20, "Steps per sampler.")
flags.DEFINE_integer("batch_size", 100, "Images per sampling call.")
flags.DEFINE_integer("rounds", 3, "Timed rounds over all samplers (the best round of each is reported).")
flags.DEFINE_list("mixed_precision", ["no"], "The network's precisions to time: no (float32), bf16, auto, fp16 (CUDA).")
flags.mark_flags_as_required(["workdir"])


def time_sampler(model, spec, initial: torch.Tensor) -> Tuple[float, int]:
    """(seconds, NFE) of one ``reverse_process`` run of ``spec`` from ``initial``."""
    from scripts.sampling.sampler import reverse_process

    generators = [torch.Generator().manual_seed(i) for i in range(initial.shape[0])]
    started = time.perf_counter()
    _, _, nfe = reverse_process(model.process, model.net, initial, generators, spec)
    return time.perf_counter() - started, nfe


def main() -> None:
    from model_code.precision import MODES, NAMES, network_dtype
    from model_code.randomness import seeded_generators
    from model_code.samplers import samplers_for
    from model_code.samplers.spec import SamplingSpec
    from scripts.cli.values import int_at_least, require
    from scripts.runs.trained import load_trained

    for flag in ("steps", "batch_size", "rounds"):
        require(f"--{flag}", getattr(FLAGS, flag), int_at_least(1), "an integer >= 1")
    for precision in FLAGS.mixed_precision:
        require("--mixed_precision", precision, lambda value: value in MODES, "entries of " + ", ".join(MODES))
    model = load_trained(FLAGS.workdir, 0, torch.device("cpu"))
    specs = {
        f"{sampler} {NAMES[network_dtype(precision, 'cpu')]}": SamplingSpec.from_options(
            sampler=sampler, steps=FLAGS.steps, mixed_precision=precision
        )
        for precision in dict.fromkeys(["no", *FLAGS.mixed_precision])
        for sampler in samplers_for(model.process.denoiser(model.net))
    }
    names = list(specs)
    initial = model.prior.sample(seeded_generators(0, 0, range(FLAGS.batch_size)), model.shape, "cpu")
    best: Dict[str, Tuple[float, int]] = {}
    with torch.no_grad():
        for name in names:  # warm-up
            time_sampler(model, specs[name], initial)
        for _ in range(FLAGS.rounds):
            for name in names:
                seconds, nfe = time_sampler(model, specs[name], initial)
                if name not in best or seconds < best[name][0]:
                    best[name] = (seconds, nfe)
    per_nfe = {name: seconds / nfe for name, (seconds, nfe) in best.items()}
    reference = per_nfe["ancestral float32"]
    print(f"{FLAGS.batch_size} images, {FLAGS.steps} steps, best of {FLAGS.rounds} interleaved rounds:")
    for name in names:
        print(
            f"  {name:18s} {best[name][1]:4d} NFE  {best[name][0]:8.3f} s  {FLAGS.batch_size / best[name][0]:8.1f} "
            f"images/s  {1000 * per_nfe[name]:8.2f} ms/NFE  {per_nfe[name] / reference:.3f}x float32 ancestral"
        )


if __name__ == "__main__":
    from scripts.cli.command import run_command

    run_command(main)
