"""The quick DDPM (configs/mnist/quick_ddpm.py) made class-conditional on the ten digits, for classifier-free
guidance: the U-Net adds a learned vector per digit to its time features, and one training row in ten is shown
without its label (model.label_dropout = 0.1), which trains the unconditional model that guidance subtracts.

    python train.py --config configs/mnist/quick_ddpm_conditional.py --workdir runs/quick_ddpm_conditional
    python sample.py --workdir runs/quick_ddpm_conditional --per_class 8 --guidance 1
"""

from configs.mnist import quick_ddpm


def get_config():
    config = quick_ddpm.get_config()
    config.model.num_classes = 10
    config.model.label_dropout = 0.1
    return config
