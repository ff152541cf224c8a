"""Quick MNIST inpainting: 20 levels of Gaussian masks of std 0.25 (i + 1) pixels centred on the image, so the hole
at level K has a std of 5 pixels. The paper's MNIST masks (configs/cold/mnist_mask.py) take 50 levels of std
0.1 (i + 1) at a centre fixed per run."""

from configs.cold import quick_config


def get_config():
    config = quick_config()
    config.model.forward = "mask"
    config.model.K = 20
    config.model.mask_std = 0.25
    config.model.mask_initial = 1.0
    config.model.mask_routine = "incremental"
    config.model.mask_centre = "centre"
    return config
