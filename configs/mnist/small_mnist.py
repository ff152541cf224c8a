"""A smaller MNIST model: K = 50, 64 channels at every level."""

from configs.mnist import default_mnist_configs


def get_config():
    config = default_mnist_configs.get_config()
    config.model.K = 50
    config.model.model_channels = 64
    config.model.channel_mult = (1, 1, 1)
    return config
