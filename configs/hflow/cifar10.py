"""hflow on CIFAR-10 (32x32x3): resolutions 32, 16, 8, 4, eight flow steps of 128 hidden channels per level.

hflow's own presets start at 128x128 (config_A_128.py); this one keeps their ratios at 32x32: the finest level
lighter (4 steps, 64 channels), loss weights 1, hflow's added noise 0.005 and gradient clipping at 50.
"""

from configs.hflow import hflow_config


def get_config():
    config = hflow_config("cifar10", 32, 3, (32, 16, 8, 4))
    config.data.random_flip = True
    config.model.hflow_coupling_layers = (4, 8, 8, 8)
    config.model.hflow_coupling_channels = (64, 128, 128, 128)
    config.model.hflow_encoder_channels = (64, 128, 128, 128)
    config.model.hflow_noise_std = 0.005
    config.model.ema_rate = 0.999
    config.training.batch_size = 64
    config.training.n_iters = 200_000
    config.optim.lr = 5e-4
    config.optim.warmup = 1000
    config.optim.grad_clip = 50.0
    return config
