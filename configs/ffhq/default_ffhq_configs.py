"""FFHQ 256x256: the AFHQ 256 setting (K = 200, sigma_B,max = 128) with lr 2e-5.

Put the images (folder or .zip) at data.root.
"""

from configs.afhq import default_afhq_configs


def get_config():
    config = default_afhq_configs.get_config()
    config.data.dataset = "ffhq"
    config.optim.lr = 2e-5
    return config
