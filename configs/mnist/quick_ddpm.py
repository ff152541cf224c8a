"""A small DDPM on the embedded MNIST digits that trains on 2 CPU cores in under 10 minutes.

The gaussian process with the identity operator (a plain Gaussian channel, data in [-1, 1]), the
cosine log-SNR schedule in [-10, 10], continuous-time training and K = 100 ancestral sampling steps
from N(0, I). The paper-sized DDPM (configs/cifar10/default_cifar10_configs_bd_noblur.py) uses
K = 1000 steps and a 128-channel U-Net with 4 blocks per level and dropout; this one has 16 channels,
one block per level, no dropout, a large learning rate with warm-up and a short EMA. The network
predicts v = alpha eps - sigma x rather than eps: at high noise an eps network's error reaches the
estimate of x multiplied by sigma / alpha, and after 1500 steps that left about half the samples on grey,
speckled backgrounds (measured here; the README has both pictures).
"""

from configs.default import get_default_configs


def get_config():
    config = get_default_configs()
    config.data.dataset = "mnist5k"
    config.data.image_size = 28
    config.data.num_channels = 1
    config.model.process = "gaussian"
    config.model.forward = "identity"
    config.model.prior = "standard_normal"
    config.model.continuous_time = True
    config.model.prediction = "v"
    config.model.K = 100  # sampling steps
    config.model.model_channels = 16
    config.model.channel_mult = (1, 2, 2)
    config.model.num_res_blocks = 1
    config.model.attention_levels = (2,)
    config.model.dropout = 0.0
    config.model.ema_rate = 0.999  # the half-life ramp keeps it shorter during these few steps
    config.training.batch_size = 64
    config.training.n_iters = 1500
    config.training.snapshot_freq = 750
    config.training.snapshot_freq_for_preemption = 250
    config.training.sampling_freq = 750
    config.training.log_freq = 50
    config.optim.lr = 2e-3
    config.optim.warmup = 100
    return config
