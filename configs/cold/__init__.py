"""Cold Diffusion's configs (configs/cold/*.py): the paper's MNIST and CIFAR-10 settings, and quick MNIST ones.

``paper_config``: what Cold Diffusion's MNIST and CIFAR-10 training scripts share (arpitbansal297/
Cold-Diffusion-Models: deblurring-, defading- and resolution-diffusion-pytorch, mnist_train.py and
cifar10_train.py): their U-Net's size (64 channels, multipliers 1, 2, 4, 8, two blocks per level) on 32 x 32
images, batches of 32 with two accumulation rounds (64 per step), Adam at 2e-5 without warm-up or clipping, an
EMA of 0.995, 700,000 steps, the L1 loss and Algorithm 2 (``x0_step_down``, the cold process's default sampler).
The network is this framework's U-Net, not their ConvNeXt one.

``quick_config``: the IHDM quickstart's network and budget (configs/mnist/quickstart.py: a 16-channel U-Net
(1, 2, 4) with one block per level, 600 steps of 64 embedded MNIST digits at 28 x 28, learning rate 1e-3 after 50
warm-up steps, EMA 0.995) with Cold Diffusion's objective and sampler. Each quick config picks a degradation far
milder or shorter than the paper's, so that it trains in minutes on 2 CPU cores.
"""

from configs.default import get_default_configs
from configs.mnist.quickstart import get_config as get_quickstart_config


def paper_config(dataset: str, channels: int):
    config = get_default_configs()
    config.data.dataset = dataset
    config.data.image_size = 32
    config.data.num_channels = channels
    config.model.process = "cold"
    config.model.loss_norm = "l1"
    config.model.prior = "kde"
    config.model.model_channels = 64
    config.model.channel_mult = (1, 2, 4, 8)
    config.model.num_res_blocks = 2
    config.model.attention_levels = (2,)
    config.model.dropout = 0.0
    config.model.ema_rate = 0.995
    config.training.batch_size = 64
    config.training.batch_per_device = 32
    config.training.n_iters = 700_000
    config.optim.lr = 2e-5
    config.optim.warmup = 0
    config.optim.grad_clip = 0.0
    return config


def quick_config():
    config = get_quickstart_config()
    config.model.process = "cold"
    config.model.loss_norm = "l1"
    config.model.prior = "kde"
    config.model.prior_noise = 0.002
    config.model.scale_shift_norm = True  # the U-Net block that sees the level (the quickstart keeps the old one)
    return config
