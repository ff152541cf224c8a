"""A small blurring-diffusion model on the embedded MNIST digits: quick_ddpm.py with the DCT blur.

The gaussian process with the `blur` operator (Hoogeboom & Salimans 2023): each DCT frequency is
damped by exp(-lambda sigma_B(t)^2 / 2) with sigma_B(t) = 8 sin^2(pi t / 2) and floored at d_min =
0.001, on top of the cosine log-SNR schedule; K = 100 sampling steps from N(0, I). The paper-sized
config (configs/cifar10/default_cifar10_configs_bd.py) uses sigma_B max 20 on 32x32 images, K = 1000
and a 128-channel U-Net; here sigma_B max 8 suits 28x28 digits (a digit stroke is gone by t = 1), and
the network, optimiser and number of steps are those of quick_ddpm.py.
"""

from configs.mnist import quick_ddpm


def get_config():
    config = quick_ddpm.get_config()
    config.model.forward = "blur"
    config.model.blur_sigma_max = 8.0
    config.model.min_scale = 0.001
    return config
