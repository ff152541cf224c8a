"""Train any configured process: python train.py --config CONFIG --workdir WORKDIR [--config.x.y=v].

Re-running the same command resumes from WORKDIR/checkpoints-meta/checkpoint.pth. Exit status 75
means "stopped by SIGTERM, state saved: run the same command again" (scripts/cli/command.py).
"""

from absl import flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Training configuration file (Python, get_config()).", lock_config=True)
flags.DEFINE_string("workdir", None, "Run directory: checkpoints, samples, TensorBoard logs.")
flags.mark_flags_as_required(["config", "workdir"])


def train() -> int:
    """Check the config and the workdir, then train; returns the exit status (scripts/cli/command.py)."""
    from scripts.cli.command import stop_status
    from scripts.cli.flags import require_writable_folder
    from scripts.config import build
    from scripts.config.validate import validate_config
    from scripts.runtime import distributed

    validate_config(FLAGS.config)
    build.network_dtype(FLAGS.config, distributed.init().device)  # fp16 off CUDA, bf16 for a flow: refused here
    require_writable_folder("--workdir", FLAGS.workdir, FLAGS.workdir)
    from scripts.training.trainer import Trainer

    trainer = Trainer(FLAGS.config, FLAGS.workdir)
    trainer.run()
    return stop_status(trainer.stopped_by)


if __name__ == "__main__":
    from scripts.cli.command import run_command

    run_command(train)
