"""A small blurring-diffusion model on the embedded MNIST digits: quick_ddpm.py with the DCT blur.

The gaussian process with the `blur` operator (Hoogeboom & Salimans 2023): each DCT frequency is
damped by d_t = (1 - d_min) exp(-lambda sigma_B(t)^2 / 2) + d_min with sigma_B(t) = 8 sin^2(pi t / 2),
on top of the cosine log-SNR schedule; K = 100 sampling steps from N(0, I). The paper-sized config
(configs/cifar10/default_cifar10_configs_bd.py) uses sigma_B max 20 on 32x32 images, K = 1000, eps
prediction and a 128-channel U-Net; here sigma_B max 8 suits 28x28 digits, and the network predicts v
(from quick_ddpm.py), with the paper's d_min = 0.001. An eps network's error reaches the estimate of x
divided by alpha_t d_t, up to 1000-fold in the frequencies the blur has damped to d_min: trained as here
with eps, the samples were noise (with d_min = 0.1, noisy blobs). With v it is at most multiplied by 1.
The network, optimiser and number of steps are those of quick_ddpm.py.
"""

from configs.mnist import quick_ddpm


def get_config():
    config = quick_ddpm.get_config()
    config.model.forward = "blur"
    config.model.blurring_sigma_max = 8.0
    return config
