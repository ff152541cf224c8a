"""Blurring diffusion on CIFAR-10 (Hoogeboom & Salimans 2023): the gaussian process with the DCT blur.

The same U-Net as the IHDM CIFAR-10 setting (128 channels, (1, 2, 2, 2), 4 blocks, attention at 8x8
and 4x4); sigma_B(t) = 20 sin^2(pi t / 2), d_min = 0.001, cosine log-SNR schedule in [-10, 10], data in
[-1, 1], continuous-time training, 1000 sampling steps from N(0, sigma_1^2 I).
"""

from configs.cifar10 import default_cifar10_configs


def get_config():
    config = default_cifar10_configs.get_config()
    config.model.process = "gaussian"
    config.model.forward = "blur"
    config.model.K = 1000  # sampling steps
    config.model.blurring_sigma_max = 20.0
    config.model.min_scale = 0.001
    config.model.continuous_time = True
    config.model.prior = "standard_normal"
    config.model.ema_rate = 0.9999
    return config
