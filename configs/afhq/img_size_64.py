"""AFHQ at 64x64 (K = 200, sigma_B,max = 32)."""

from configs.afhq import default_afhq_configs


def get_config():
    config = default_afhq_configs.get_config()
    config.data.image_size = 64
    config.model.blur_sigma_max = 32.0
    config.model.channel_mult = (1, 2, 3, 4)
    config.model.num_res_blocks = 2
    config.model.attention_levels = (2, 3)  # 16, 8
    config.model.dropout = 0.1
    config.model.ema_rate = 0.999
    config.training.batch_size = 128
    return config
