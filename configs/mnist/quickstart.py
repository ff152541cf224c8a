"""A small IHDM model on the embedded MNIST digits that trains on 2 CPU cores in about 2 minutes.

Smaller than the paper's MNIST model in every direction (channels, depth, levels, batch) and with
a milder maximum blur, so the prior keeps the rough layout of a digit and the network has less to
invent. Train with the paper's settings by using default_mnist_configs.py instead.
"""

from configs.default import get_default_configs


def get_config():
    config = get_default_configs()
    config.data.dataset = "mnist5k"
    config.data.image_size = 28
    config.data.num_channels = 1
    config.model.K = 20
    config.model.blur_sigma_max = 4.0
    config.model.model_channels = 16
    config.model.channel_mult = (1, 2, 4)
    config.model.num_res_blocks = 1
    config.model.attention_levels = (2,)
    config.model.dropout = 0.0
    config.model.scale_shift_norm = False  # the block pretrained/quickstart was trained with (see the README)
    config.model.ema_rate = 0.995
    config.training.batch_size = 64
    config.training.n_iters = 600
    config.training.snapshot_freq = 300
    config.training.snapshot_freq_for_preemption = 100
    config.training.sampling_freq = 300
    config.training.log_freq = 20
    config.optim.lr = 1e-3
    config.optim.warmup = 50
    return config
