"""Cold Diffusion's MNIST super-resolution: 3 levels, the resolution halved at each, 32 -> 16 -> 8 -> 4 (their
'Incremental_factor_2' routine); their README's `mnist_train.py --time_steps 3 --resolution_routine
'Incremental_factor_2'`. They downsample bicubically; this operator average-pools (their '_area_' routines)."""

from configs.cold import paper_config


def get_config():
    config = paper_config("mnist", 1)
    config.model.forward = "pixelate"
    config.model.K = 3
    config.model.pixelate_every = 1
    return config
