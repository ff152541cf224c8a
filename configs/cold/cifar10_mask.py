"""Cold Diffusion's CIFAR-10 inpainting: 50 levels of Gaussian masks of std 0.1 (i + 1) pixels (their
'Random_Incremental' routine, its centre fixed per run here; see mnist_mask.py); their README's `cifar10_train.py
--time_steps 50 --kernel_std 0.1 --fade_routine Random_Incremental`."""

from configs.cold import paper_config


def get_config():
    config = paper_config("cifar10", 3)
    config.data.random_flip = True
    config.model.forward = "mask"
    config.model.K = 50
    config.model.mask_std = 0.1
    config.model.mask_initial = 1.0
    config.model.mask_routine = "incremental"
    config.model.mask_centre = "seeded"
    return config
