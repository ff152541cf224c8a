"""Quick MNIST super-resolution: 2 levels, 28 -> 14 -> 7 (28 / 8 = 3.5 is not a whole block, so K stops at 2; the
paper's configs/cold/mnist_pixelate.py resizes the digits to 32 and goes down to 4)."""

from configs.cold import quick_config


def get_config():
    config = quick_config()
    config.model.forward = "pixelate"
    config.model.K = 2
    config.model.pixelate_every = 1
    return config
