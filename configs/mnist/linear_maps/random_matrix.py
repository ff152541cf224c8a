"""MNIST with a fixed random matrix per level (seeded by model.operator_seed, stored in checkpoints), ihdm objective."""

from configs.mnist import default_mnist_configs


def get_config():
    config = default_mnist_configs.get_config()
    config.model.forward = "random_matrix"
    return config
