"""Denoiser networks, registered by name: ``unet`` (images) and ``mlp`` (flat data such as 2D points).

The registry discovers its entries from this package (``model_code.registry``): a new file here with a
``@NETWORKS.register("name")`` subclass of ``Network`` (the interface, in ``base.py``) is all it takes.
"""

from model_code.networks.base import NETWORKS, Network
from model_code.networks.mlp import MLPDenoiser
from model_code.networks.unet import UNet

__all__ = ["NETWORKS", "MLPDenoiser", "Network", "UNet"]
