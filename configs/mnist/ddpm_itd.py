"""DDPM on MNIST trained with logistic log-SNR sampling, for evaluate.py --mode=nll_itd.

The gaussian process with the identity operator (a plain Gaussian channel), data in [-1, 1],
log SNR ~ logistic(loc, scale) truncated to loc +- 4 scale with importance weights. loc and scale
come from `python -m scripts.suggest_logsnr --config configs/mnist/ddpm_itd.py` (data spectrum).
"""

from configs.mnist import default_mnist_configs


def get_config():
    config = default_mnist_configs.get_config()
    config.model.process = "gaussian"
    config.model.forward = "identity"
    config.model.K = 1000  # sampling steps
    config.model.prior = "standard_normal"
    config.model.logsnr_sampling = "logistic"
    config.model.logistic_loc = 4.7619  # from the spectrum of the embedded digits (mnist5k)
    config.model.logistic_scale = 3.6183
    return config
