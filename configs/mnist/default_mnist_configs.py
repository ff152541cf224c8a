"""MNIST 28x28, the IHDM paper's setting (K = 100, sigma_B,max = 20)."""

from configs.default import get_default_configs


def get_config():
    config = get_default_configs()
    config.data.dataset = "mnist"
    config.data.image_size = 28
    config.data.num_channels = 1
    config.model.K = 100
    config.model.blur_sigma_max = 20.0
    config.model.model_channels = 128
    config.model.channel_mult = (1, 2, 2)
    config.model.num_res_blocks = 4
    config.model.attention_levels = (2,)
    config.model.dropout = 0.1
    config.model.ema_rate = 0.999
    config.training.batch_size = 128
    config.optim.lr = 2e-4
    return config
