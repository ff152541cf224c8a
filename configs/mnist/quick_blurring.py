"""A small blurring-diffusion model on the embedded MNIST digits: quick_ddpm.py with the DCT blur.

The gaussian process with the `blur` operator (Hoogeboom & Salimans 2023): each DCT frequency is
damped by d_t = (1 - d_min) exp(-lambda sigma_B(t)^2 / 2) + d_min with sigma_B(t) = 8 sin^2(pi t / 2),
on top of the cosine log-SNR schedule; K = 100 sampling steps from N(0, I). The paper-sized config
(configs/cifar10/default_cifar10_configs_bd.py) uses sigma_B max 20 on 32x32 images, d_min = 0.001,
K = 1000 and a 128-channel U-Net. Here sigma_B max 8 suits 28x28 digits, and d_min = 0.1: the
denoised estimate divides the predicted noise by alpha_t d_t, so with d_min = 0.001 the errors of this
briefly trained small network grow up to 1000-fold in the blurred-away frequencies and the samples are
noise (tried here: also with 1000 sampling steps); d_min = 0.1 bounds that at 10-fold. The network,
optimiser and number of steps are those of quick_ddpm.py.
"""

from configs.mnist import quick_ddpm


def get_config():
    config = quick_ddpm.get_config()
    config.model.forward = "blur"
    config.model.blur_sigma_max = 8.0
    config.model.min_scale = 0.1
    return config
