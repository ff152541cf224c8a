"""The shape of hflow's preset_configs/config_A_256.json for a prepared 256x256 zip (scripts/dataset_tool.py).

As config_A_128.py (flow steps, coupling, encoder channels, loss weights, noise, clipping), with resolutions
256, 128, 32, 8: its second level spans two halvings, its third two more. hflow's learned encoder-decoder
pyramid, end block and U-Net couplings are not reproduced (this pyramid is Haar's).
"""

from configs.hflow.config_A_128 import get_config as get_config_A_128


def get_config():
    config = get_config_A_128()
    config.data.image_size = 256
    config.model.hflow_resolutions = (256, 128, 32, 8)
    config.model.K = 4
    return config
