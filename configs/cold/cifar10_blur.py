"""Cold Diffusion's CIFAR-10 deblurring: 50 levels, an 11 x 11 Gaussian kernel whose std grows linearly, 0.35 + 0.01 i
at step i, reflecting boundaries (their 'Special_6_routine'); their README's `cifar10_train.py --time_steps 50
--blur_routine 'Special_6_routine'`."""

from configs.cold import paper_config


def get_config():
    config = paper_config("cifar10", 3)
    config.data.random_flip = True
    config.model.forward = "cold_blur"
    config.model.K = 50
    config.model.kernel_size = 11
    config.model.kernel_std = 0.35
    config.model.kernel_std_step = 0.01
    config.model.blur_routine = "linear"
    config.model.blur_padding = "reflect"
    config.model.prior = "gmm"
    config.model.gmm_components = 1
    config.model.prior_noise = 0.002
    return config
