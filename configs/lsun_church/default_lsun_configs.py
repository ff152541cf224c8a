"""LSUN churches 128x128 (K = 400, sigma_B,max = 64). Put the images (folder or .zip) at data.root."""

from configs.default import get_default_configs


def get_config():
    config = get_default_configs()
    config.data.dataset = "lsun_church"
    config.data.image_size = 128
    config.data.num_channels = 3
    config.data.random_flip = True
    config.model.K = 400
    config.model.blur_sigma_max = 64.0
    config.model.model_channels = 128
    config.model.channel_mult = (1, 2, 3, 4, 5)
    config.model.num_res_blocks = 4
    config.model.attention_levels = (2, 3, 4)  # 32, 16, 8
    config.model.dropout = 0.1
    config.model.ema_rate = 0.999
    config.training.batch_size = 32
    config.training.num_workers = 4
    config.optim.lr = 2e-5
    return config
