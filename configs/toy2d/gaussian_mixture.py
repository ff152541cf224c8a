"""The gaussian_mixture 2D dataset (see default_toy2d.py)."""

from configs.toy2d import default_toy2d


def get_config():
    config = default_toy2d.get_config()
    config.data.dataset = "gaussian_mixture"
    return config
