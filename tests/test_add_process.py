"""Adding a process takes one file in model_code/processes/ and one config (the README's recipe), proved
through the command line on a copy of the project: train, sample and evaluate (ELBO) a throw-away process."""

import os

from tests.helpers import project_copy, run_in_copy, train_sample_and_evaluate

PROCESS_FILE = '''"""ihdm whose network predicts u_(k-1) itself rather than the residual u_(k-1) - u_k."""

import torch

from model_code.processes.base import PROCESSES
from model_code.processes.ihdm import IHDMDenoiser, IHDMProcess


class DirectDenoiser(IHDMDenoiser):
    def mean(self, u: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return self.network(u, self.process.model_time(k))


@PROCESSES.register("direct")
class DirectProcess(IHDMProcess):
    def denoiser(self, net) -> DirectDenoiser:
        return DirectDenoiser(self, net)
'''

CONFIG_FILE = """from configs.default import get_default_configs


def get_config():
    config = get_default_configs()
    config.data.image_size = 8
    config.model.process = "direct"
    config.model.sigma = 0.03
    config.model.K = 3
    config.model.update(dict(model_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,)))
    config.training.update(
        dict(batch_size=8, n_iters=2, snapshot_freq=2, snapshot_freq_for_preemption=2, sampling_freq=2, num_samples=4)
    )
    config.training.log_freq = 1
    return config
"""


def test_a_new_process_file_and_config_train_sample_and_evaluate(tmp_path):
    project = project_copy(str(tmp_path / "project"))
    with open(os.path.join(project, "model_code", "processes", "direct.py"), "w") as handle:
        handle.write(PROCESS_FILE)
    with open(os.path.join(project, "configs", "direct.py"), "w") as handle:
        handle.write(CONFIG_FILE)

    elbo = train_sample_and_evaluate(project, "configs/direct.py", "runs/direct")
    assert len(elbo["per_level_nats"]["transitions"]) == 2 and elbo["test_images"] == 8

    built = run_in_copy(
        project,
        "-c",
        "import torch; from scripts.config import build; from scripts.runs.rundir import RunDir; "
        "process = build.build_process(RunDir('runs/direct').load_config()); "
        "zero = lambda u, time: torch.zeros_like(u); u = torch.ones(1, 1, 8, 8); k = torch.tensor([2]); "
        "mean = process.denoiser(zero).mean(u, k).abs().max().item(); "
        "print(process.name, type(process).__name__, process.sigma, mean)",
    )
    # the config's model.sigma reached the new process, and its own reverse mean (not ihdm's u + f) is used
    assert built.split() == ["direct", "DirectProcess", "0.03", "0.0"]
