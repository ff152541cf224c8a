"""Cold Diffusion's MNIST inpainting: 50 levels of Gaussian masks of std 0.1 (i + 1) pixels at step i (their
'Random_Incremental' routine with initial_mask 1); their README's `mnist_train.py --time_steps 50 --kernel_std 0.1
--fade_routine Random_Incremental`. Their centre is redrawn for every training example, which makes the forward
process random; here it is one centre drawn from model.operator_seed for the run (``mask_centre = "seeded"``), so
the operator stays linear and deterministic."""

from configs.cold import paper_config


def get_config():
    config = paper_config("mnist", 1)
    config.model.forward = "mask"
    config.model.K = 50
    config.model.mask_std = 0.1
    config.model.mask_initial = 1.0
    config.model.mask_routine = "incremental"
    config.model.mask_centre = "seeded"
    return config
