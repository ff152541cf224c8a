"""A small DDPM for the information-theoretic likelihood: quick_ddpm.py trained with logistic log SNR.

The gaussian process with the identity operator, data in [-1, 1], log SNR drawn during training from
the logistic(loc, scale) truncated to loc +- 4 scale with importance weights, so that
`python evaluate.py --workdir RUN --mode=nll_itd` estimates the NLL from the model's MMSE curve.
loc and scale are those of configs/mnist/ddpm_itd.py (from `python -m scripts.suggest_logsnr` on
the spectrum of mnist5k). That config is paper-sized (K = 1000, the 128-channel MNIST U-Net, hours on
a CPU); this one has quick_ddpm.py's network, optimiser, v prediction and K = 100, and twice its steps:
the likelihood weights the errors at high noise, where the shape of a digit is decided, far less than
quick_ddpm.py's loss does, and after 1500 steps most samples were strokes without a digit's shape.
"""

from configs.mnist import quick_ddpm


def get_config():
    config = quick_ddpm.get_config()
    config.model.logsnr_sampling = "logistic"
    config.model.logistic_loc = 4.7619  # from the spectrum of the embedded digits (mnist5k)
    config.model.logistic_scale = 3.6183
    config.training.n_iters = 3000
    config.training.snapshot_freq = 1500
    config.training.sampling_freq = 1500
    return config
