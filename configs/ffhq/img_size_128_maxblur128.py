"""FFHQ at 128x128 with sigma_B,max = 128."""

from configs.ffhq import default_ffhq_configs


def get_config():
    config = default_ffhq_configs.get_config()
    config.data.image_size = 128
    config.model.num_res_blocks = 2
    config.model.attention_levels = (2, 3, 4)  # 32, 16, 8
    config.model.dropout = 0.1
    config.optim.lr = 2e-4  # with bf16 autocast; fp16 at this rate overflows
    return config
