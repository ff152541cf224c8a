"""hflow's configs (configs/hflow/*.py): a quick MNIST model, CIFAR-10, and the shapes of hflow's config_A_128/256.

``hflow_config``: what every hflow model shares: the hflow process on the haar_pyramid operator with the hflow
network and the standard-normal prior (u_K carries nothing; every latent is a step's noise), 8-bit images
dequantised uniformly during training (so the reported discrete bits/dim bound the 8-bit NLL), and K set to the
number of resolutions. Mixed precision stays off: a flow's inverse loses its exactness in half precision.
"""

from configs.default import get_default_configs


def hflow_config(dataset: str, image_size: int, channels: int, resolutions):
    config = get_default_configs()
    config.data.dataset = dataset
    config.data.image_size = image_size
    config.data.num_channels = channels
    config.data.uniform_dequantization = True
    config.model.process = "hflow"
    config.model.forward = "haar_pyramid"
    config.model.network = "hflow"
    config.model.prior = "standard_normal"
    config.model.hflow_resolutions = tuple(resolutions)
    config.model.K = len(resolutions)
    config.model.dropout = 0.0
    config.training.mixed_precision = "no"
    return config
