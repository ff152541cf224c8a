"""Adding an operator takes one file in model_code/operators/ and one config (the README's recipe), proved
through the command line on a copy of the project: train, sample and evaluate (ELBO) a throw-away operator."""

import os

from tests.helpers import project_copy, run_in_copy, train_sample_and_evaluate

OPERATOR_FILE = '''"""A_k = (1 - (1 - min_scale) t) I, t = k / K: the image fades linearly to min_scale times itself."""

import torch

from model_code.operators.base import OPERATORS, PixelBasisOperator


@OPERATORS.register("fade")
class FadeOperator(PixelBasisOperator):
    def __init__(self, *, image_size, K: int, min_scale: float):
        super().__init__(image_size=image_size, K=K)
        self.min_scale = float(min_scale)

    def scale(self, t: torch.Tensor) -> torch.Tensor:
        return 1.0 - (1.0 - self.min_scale) * t
'''

CONFIG_FILE = """from configs.default import get_default_configs


def get_config():
    config = get_default_configs()
    config.data.image_size = 8
    config.model.forward = "fade"
    config.model.min_scale = 0.25
    config.model.K = 3
    config.model.update(dict(model_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,)))
    config.training.update(
        dict(batch_size=8, n_iters=2, snapshot_freq=2, snapshot_freq_for_preemption=2, sampling_freq=2, num_samples=4)
    )
    config.training.log_freq = 1
    return config
"""


def test_a_new_operator_file_and_config_train_sample_and_evaluate(tmp_path):
    project = project_copy(str(tmp_path / "project"))
    with open(os.path.join(project, "model_code", "operators", "fade.py"), "w") as handle:
        handle.write(OPERATOR_FILE)
    with open(os.path.join(project, "configs", "fade.py"), "w") as handle:
        handle.write(CONFIG_FILE)

    elbo = train_sample_and_evaluate(project, "configs/fade.py", "runs/fade")
    assert len(elbo["per_level_nats"]["transitions"]) == 2 and elbo["test_images"] == 8
    assert elbo["delta"] == 0.0125  # the ihdm process's sampling setting: 1.25 sigma

    built = run_in_copy(
        project,
        "-c",
        "import torch; from scripts.config import build; from scripts.runs.rundir import RunDir; "
        "op = build.build_operator(RunDir('runs/fade').load_config()); "
        "print(op.name, op.min_scale, op(torch.ones(1, 1, 8, 8), torch.tensor([3])).mean().item())",
    )
    assert built.split() == ["fade", "0.25", "0.25"]  # the config's model.min_scale reached the new operator
