"""Training throughput of a config's real model, against a bare loop and the device's matmul peak.

    python -m scripts.benchmark_train --config configs/mnist/quickstart.py [--batch_size B] [--steps N]
        [--device cpu|cuda] [--options=channels_last,compile,adam,tf32,bf16,resident_data] [--synthetic_data]

Reports, on the config's U-Net, batch and optimiser:

- images/s of the framework's own step (``Trainer.train_step`` on the trainer's batches, plus the
  loss logging of ``Trainer.run``; checkpoints and sample grids excluded) and of a bare loop (forward,
  squared error, backward, Adam step on fixed device tensors, same autocast), and the overhead
  t_framework / t_bare - 1;
- the framework step's time by phase (device synchronised at every phase edge);
- model FLOPs per training image (forward + backward, counted by torch.utils.flop_counter), the
  achieved FLOP/s = FLOPs per image x images/s, and MFU = achieved / the dense matmul peak measured
  in this run (float32 on CPU; bfloat16, TF32 and float32 on CUDA, the one matching the network's precision);
- each speed option (--options) against its absence: images/s of the framework step with the option
  flipped from the config's setting.

All loops run interleaved, ``--rounds`` times ``--steps`` steps each after ``--warmup`` steps, and the
median round is reported (the machine may be shared). ``--synthetic_data`` trains on random uint8
images of the config's shape, for datasets that are not on disk (the step's cost does not depend on
the pixel values).
"""

from __future__ import annotations

import torch
from absl import app, flags
from ml_collections import config_flags

from scripts.training.throughput import OPTIONS, benchmark, report

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Training configuration file.", lock_config=False)
flags.DEFINE_integer("batch_size", None, "Batch size (default: the config's training.batch_size).")
flags.DEFINE_integer("steps", 20, "Timed steps per round.")
flags.DEFINE_integer("warmup", 3, "Untimed steps before timing (compilation, allocator, caches).")
flags.DEFINE_integer("rounds", 3, "Interleaved rounds; the median is reported.")
flags.DEFINE_enum("device", "cpu", ["cpu", "cuda"], "Device to train on.")
flags.DEFINE_list(
    "options",
    ["channels_last", "adam", "resident_data"],
    "Speed options to compare: channels_last, compile, adam, tf32, bf16, resident_data.",
)
flags.DEFINE_boolean("synthetic_data", False, "Random uint8 images of the config's shape instead of the dataset.")
flags.mark_flags_as_required(["config"])


def main(argv) -> None:
    from scripts.cli.errors import run_cli
    from scripts.config.validate import validate_config

    def run() -> None:
        config = FLAGS.config
        if FLAGS.batch_size is not None:
            config.training.batch_size = FLAGS.batch_size
        for name in ("batch_size", "steps", "rounds"):
            value = config.training.batch_size if name == "batch_size" else getattr(FLAGS, name)
            if value < 1:
                raise ValueError(f"--{name}={value}; allowed: a positive integer")
        unknown = [option for option in FLAGS.options if option not in OPTIONS]
        if unknown:
            raise ValueError(f"--options={','.join(unknown)}; allowed: {', '.join(OPTIONS)}")
        validate_config(config)
        device = torch.device(FLAGS.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device=cuda but no CUDA device is available; allowed here: cpu")
        result = benchmark(
            config,
            device,
            steps=FLAGS.steps,
            warmup=FLAGS.warmup,
            rounds=FLAGS.rounds,
            options=FLAGS.options,
            synthetic=FLAGS.synthetic_data,
        )
        print(report(result, config, device))

    run_cli(run)


if __name__ == "__main__":
    from scripts.cli.flags import parse_flags

    app.run(main, flags_parser=parse_flags)
