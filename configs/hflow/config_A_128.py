"""The shape of hflow's preset_configs/config_A_128.json for a prepared 128x128 zip (scripts/dataset_tool.py).

Resolutions 128, 64, 32, 8 (the last level spans two halvings: its detail has C (4^2 - 1) channels), flow steps
4, 8, 8, 8, coupling channels 32, 64, 128, 128 (hflow's RNVP_CHANNELS), encoder channels 64, 256, 256, 256,
loss weights 1, 10, 10, 1, prior stds 1, added noise 0.005, the encoders' learning rate 0.1 of the flows',
gradient clipping 50, batches of 16. hflow's learned
encoder-decoder pyramid, its end block and its U-Net couplings are not reproduced (this pyramid is Haar's).
"""

from configs.hflow import hflow_config


def get_config():
    config = hflow_config("image_folder", 128, 3, (128, 64, 32, 8))
    config.model.hflow_coupling_layers = (4, 8, 8, 8)
    config.model.hflow_coupling_channels = (32, 64, 128, 128)
    config.model.hflow_encoder_channels = (64, 256, 256, 256)
    config.model.hflow_loss_weights = (1.0, 10.0, 10.0, 1.0)
    config.model.hflow_prior_stds = (1.0,)
    config.model.hflow_noise_std = 0.005
    config.model.hflow_encoder_lr_scale = 0.1  # hflow's LEARNING_RATE_ENCODERS / LEARNING_RATE = 5e-4 / 5e-3
    config.training.batch_size = 16
    config.training.n_iters = 1_000_000
    config.optim.lr = 5e-4
    config.optim.warmup = 1000
    config.optim.grad_clip = 50.0
    return config
