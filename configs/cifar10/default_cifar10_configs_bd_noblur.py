"""The no-blur limit of blurring diffusion on CIFAR-10: DDPM with the cosine schedule."""

from configs.cifar10 import default_cifar10_configs_bd


def get_config():
    config = default_cifar10_configs_bd.get_config()
    config.model.blurring_sigma_max = 0.0
    return config
