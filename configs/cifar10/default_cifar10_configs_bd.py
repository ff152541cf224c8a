"""Blurring diffusion on CIFAR-10 (Hoogeboom & Salimans 2023): the gaussian process with the DCT blur.

sigma_B(t) = 20 sin^2(pi t / 2), d_min = 0.001, cosine log-SNR schedule in [-10, 10], data in
[-1, 1], continuous-time training, 1000 sampling steps from N(0, sigma_1^2 I).
"""
from configs.default import get_default_configs


def get_config():
    config = get_default_configs()
    config.data.dataset = "cifar10"
    config.data.image_size = 32
    config.data.num_channels = 3
    config.data.random_flip = True
    config.model.process = "gaussian"
    config.model.forward = "blur"
    config.model.K = 1000  # sampling steps
    config.model.blur_sigma_max = 20.0
    config.model.min_scale = 0.001
    config.model.continuous_time = True
    config.model.prior = "standard_normal"
    config.model.model_channels = 128
    config.model.channel_mult = (1, 2, 2, 2)
    config.model.num_res_blocks = 4
    config.model.attention_levels = (2, 3)  # 8x8 and 4x4
    config.model.dropout = 0.1
    config.model.ema_rate = 0.9999
    config.training.batch_size = 128
    config.optim.lr = 2e-4
    return config
