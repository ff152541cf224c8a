"""Adding a sampler takes one file in model_code/samplers/ (the README's recipe), proved through the command line
on a copy of the project: a throw-away Euler sampler of the probability-flow ODE is discovered, named by
--sampler, and spends the network evaluations it says."""

import os

from tests.helpers import project_copy, run_in_copy

SAMPLER_FILE = '''"""Euler's method on the probability-flow ODE in x = c / alpha with noise level s = sigma / alpha."""

from model_code.samplers.base import SAMPLERS, transitions


@SAMPLERS.register("euler", needs="marginal", deterministic=lambda settings: True)
def euler(denoiser, levels, initial, noise, callback):
    u = initial
    for i, k, k_next in transitions(levels):
        denoised = denoiser.x0(u, k)
        if k_next == 0:
            u = denoiser.from_basis(denoised)
        else:
            alpha, sigma = denoiser.marginal(k, u)
            alpha_next, sigma_next = denoiser.marginal(k_next, u)
            x, s = denoiser.to_basis(u) / alpha, sigma / alpha
            u = denoiser.from_basis(alpha_next * (x + (sigma_next / alpha_next - s) * (x - denoised) / s))
        callback(i, u)
    return u
'''

CONFIG_FILE = """from configs.default import get_default_configs


def get_config():
    config = get_default_configs()
    config.data.image_size = 8
    config.model.update(dict(process="gaussian", forward="blur", prior="standard_normal", K=5))
    config.model.update(dict(model_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,)))
    config.training.update(
        dict(batch_size=8, n_iters=2, snapshot_freq=2, snapshot_freq_for_preemption=2, sampling_freq=2, num_samples=4)
    )
    return config
"""


def test_a_new_sampler_file_is_discovered_and_runs_through_sample_py(tmp_path):
    project = project_copy(str(tmp_path / "project"))
    with open(os.path.join(project, "model_code", "samplers", "euler.py"), "w") as handle:
        handle.write(SAMPLER_FILE)
    with open(os.path.join(project, "configs", "gaussian_tiny.py"), "w") as handle:
        handle.write(CONFIG_FILE)

    run_in_copy(project, "train.py", "--config", "configs/gaussian_tiny.py", "--workdir", "runs/g")
    sampled = run_in_copy(project, "sample.py", "--workdir", "runs/g", "--batch_size=2", "--sampler=euler", "--steps=3")
    assert "2 samples (random) in 3 network evaluations each" in sampled
    assert "_euler_steps3" in sampled  # the folder names the sampler
