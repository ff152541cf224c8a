"""CIFAR-10 32x32, the IHDM paper's setting (K = 200, sigma_B,max = 24)."""

from configs.default import get_default_configs


def get_config():
    config = get_default_configs()
    config.data.dataset = "cifar10"
    config.data.image_size = 32
    config.data.num_channels = 3
    config.data.random_flip = True
    config.model.K = 200
    config.model.blur_sigma_max = 24.0
    config.model.model_channels = 128
    config.model.channel_mult = (1, 2, 2, 2)
    config.model.num_res_blocks = 4
    config.model.attention_levels = (2, 3)  # 8x8 and 4x4
    config.model.dropout = 0.1
    config.model.ema_rate = 0.999
    config.training.batch_size = 128
    config.optim.lr = 2e-4
    return config
