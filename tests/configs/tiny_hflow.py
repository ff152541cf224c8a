"""The smallest hflow run the tests train: 8x8 digits, resolutions 8, 4, 2, two flow steps of 8 channels per level."""

from configs.hflow import hflow_config


def get_config():
    config = hflow_config("mnist5k", 8, 1, (8, 4, 2))
    config.model.hflow_coupling_layers = (2,)
    config.model.hflow_coupling_channels = (8,)
    config.model.hflow_encoder_channels = (4,)
    config.model.hflow_noise_std = 0.005
    config.training.batch_size = 16
    config.training.n_iters = 6
    config.training.snapshot_freq = 6
    config.training.snapshot_freq_for_preemption = 3
    config.training.sampling_freq = 6
    config.training.log_freq = 3
    config.training.num_samples = 4
    config.optim.lr = 1e-3
    config.optim.warmup = 2
    config.eval.batch_size = 16
    return config
