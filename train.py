"""Train any configured process: python train.py --config CONFIG --workdir WORKDIR [--config.x.y=v].

Re-running the same command resumes from WORKDIR/checkpoints-meta/checkpoint.pth.
"""

from absl import app, flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Training configuration file (Python, get_config()).", lock_config=True)
flags.DEFINE_string("workdir", None, "Run directory: checkpoints, samples, TensorBoard logs.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    from scripts.cli.errors import run_cli
    from scripts.training.trainer import Trainer

    run_cli(lambda: Trainer(FLAGS.config, FLAGS.workdir).run())


if __name__ == "__main__":
    from scripts.cli.flags import parse_flags

    app.run(main, flags_parser=parse_flags)
