"""MNIST with the identity map: u_k = u_0 + sigma eps at every level (plain denoising), ihdm objective."""

from configs.mnist import default_mnist_configs


def get_config():
    config = default_mnist_configs.get_config()
    config.model.forward = "identity"
    return config
