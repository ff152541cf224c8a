"""MNIST with constant velocity, T(t) = (1 - t/K) I, ihdm objective."""

from configs.mnist import default_mnist_configs


def get_config():
    config = default_mnist_configs.get_config()
    config.model.forward = "constant_velocity"
    return config
