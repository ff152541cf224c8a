"""MNIST with a norm-controlled product of k random matrices at level k, ihdm objective."""

from configs.mnist import default_mnist_configs


def get_config():
    config = default_mnist_configs.get_config()
    config.model.forward = "random_matrix_product"
    return config
