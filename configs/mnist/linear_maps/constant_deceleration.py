"""MNIST with constant deceleration, T(t) = (1 - t/K)^2 I (at rest at the origin at K), ihdm objective."""

from configs.mnist import default_mnist_configs


def get_config():
    config = default_mnist_configs.get_config()
    config.model.forward = "constant_deceleration"
    return config
