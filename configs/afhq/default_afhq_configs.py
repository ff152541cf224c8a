"""AFHQ 256x256 (K = 200, sigma_B,max = 128). Put the images (folder or .zip) at data.root."""

from configs.default import get_default_configs


def get_config():
    config = get_default_configs()
    config.data.dataset = "afhq"
    config.data.image_size = 256
    config.data.num_channels = 3
    config.data.random_flip = True
    config.model.K = 200
    config.model.blur_sigma_max = 128.0
    config.model.model_channels = 128
    config.model.channel_mult = (1, 2, 3, 4, 5)
    config.model.num_res_blocks = 3
    config.model.attention_levels = (2, 3, 4)  # 64, 32, 16
    config.model.dropout = 0.3
    config.model.ema_rate = 0.9999
    config.training.batch_size = 32
    config.training.num_workers = 4
    config.optim.lr = 1e-4
    return config
