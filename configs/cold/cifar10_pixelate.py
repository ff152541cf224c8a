"""Cold Diffusion's CIFAR-10 super-resolution: 3 levels, 32 -> 16 -> 8 -> 4 (their 'Incremental_factor_2' routine,
average pooling here; see mnist_pixelate.py); their README's `cifar10_train.py --time_steps 3 --resolution_routine
'Incremental_factor_2'`."""

from configs.cold import paper_config


def get_config():
    config = paper_config("cifar10", 3)
    config.data.random_flip = True
    config.model.forward = "pixelate"
    config.model.K = 3
    config.model.pixelate_every = 1
    return config
