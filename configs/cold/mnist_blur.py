"""Cold Diffusion's MNIST deblurring: 20 levels, an 11 x 11 Gaussian kernel of std 7 applied once per level
(their 'Constant' routine, circular padding); their README's `mnist_train.py --time_steps 20 --blur_size 11
--blur_std 7.0 --blur_routine Constant`. Generation from Cold's Gaussian mixture over the channel means of the
blurred training digits (one component) with their symmetry-breaking noise."""

from configs.cold import paper_config


def get_config():
    config = paper_config("mnist", 1)
    config.model.forward = "cold_blur"
    config.model.K = 20
    config.model.kernel_size = 11
    config.model.kernel_std = 7.0
    config.model.blur_routine = "constant"
    config.model.blur_padding = "circular"
    config.model.prior = "gmm"
    config.model.gmm_components = 1
    config.model.prior_noise = 0.002
    return config
