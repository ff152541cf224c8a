"""Compare EMA warm-ups on one training run of a config.

    python -m scripts.compare_ema --config configs/mnist/quickstart.py --eval_at=150,300,600 --num_test=200

Trains with the framework's own step and, beside the trainer's EMA (model_code/ema.py: a half-life
of min(h, r x images seen), beta_n = min(rate, 0.5^(1 / (r n)))), keeps two more averages of the same weights:

- upstream warm-up: beta_n = min(rate, (1 + n) / (10 + n));
- constant: beta_n = rate from the first step.

At each evaluation step every average and the raw weights get the held-out ELBO (nats per image) on
the same test images and noise. The averages never feed back into training, so all see one trajectory.
"""

from __future__ import annotations

import tempfile
from typing import Dict

import torch
from absl import app, flags
from ml_collections import config_flags

from model_code.ema import EMA
from scripts.config import build
from scripts.evaluation.elbo import evaluate_elbo
from scripts.training.trainer import Trainer

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Training configuration file.", lock_config=True)
flags.DEFINE_list("eval_at", None, "Steps at which to evaluate (default: the config's n_iters).")
flags.DEFINE_integer("num_test", 200, "Held-out images for the ELBO.")
flags.mark_flags_as_required(["config"])


class ConstantEMA(EMA):
    """beta_n = rate for every n (no warm-up)."""

    def decay(self, num_updates: int) -> float:
        return self.rate


class UpstreamWarmupEMA(EMA):
    """beta_n = min(rate, (1 + n) / (10 + n)): the upstream code's warm-up."""

    def decay(self, num_updates: int) -> float:
        return min(self.rate, (1.0 + num_updates) / (10.0 + num_updates))


def heldout_elbo(trainer: Trainer, net: torch.nn.Module, test_data, num_test: int) -> float:
    """ELBO in nats per image of ``net`` on the first ``num_test`` test images (seeded noise)."""
    config = trainer.config
    result = evaluate_elbo(
        trainer.process,
        net.eval(),
        trainer.prior,
        test_data,
        batch_size=config.eval.batch_size,
        passes=1,
        num_test=num_test,
        seed=config.eval.seed,
        device=trainer.device,
    )
    return result["nats_per_image"]


def main(argv) -> None:
    config = FLAGS.config
    eval_at = sorted(int(s) for s in (FLAGS.eval_at or [config.training.n_iters]))
    torch.set_num_threads(torch.get_num_threads())
    with tempfile.TemporaryDirectory() as workdir:
        trainer = Trainer(config, workdir)
        trainer.prior.fit(trainer.device)
        test_data = build.build_data(config, "test", trainer.process)
        state = trainer.state
        averages: Dict[str, EMA] = {
            "half-life ramp": state.ema,
            "upstream warm-up": UpstreamWarmupEMA(state.net, config.model.ema_rate),
            "constant": ConstantEMA(state.net, config.model.ema_rate),
        }
        batches = trainer.training_batches()
        print(f"held-out ELBO (nats/image, {FLAGS.num_test} test images) of each average of one training run")
        while state.step < eval_at[-1]:
            state.net.train()
            trainer.train_step(next(batches))
            for average in averages.values():
                if average is not state.ema:  # the trainer's own step updated it
                    average.update(state.net, state.step - 1)
            if state.step in eval_at:
                row = {name: heldout_elbo(trainer, a.shadow, test_data, FLAGS.num_test) for name, a in averages.items()}
                row["raw weights"] = heldout_elbo(trainer, state.net, test_data, FLAGS.num_test)
                print(f"step {state.step}: " + "   ".join(f"{name} {value:.1f}" for name, value in row.items()))


if __name__ == "__main__":
    from scripts.cli.flags import parse_flags

    app.run(main, flags_parser=parse_flags)
