"""The config boundary: turn a ConfigDict into explicitly constructed library objects.

Library constructors take keyword arguments; ``build_from_pool`` passes each registered
constructor the config values it declares, so adding an operator or a process with new
parameters needs a config key, not a new branch here.
"""

from __future__ import annotations

import inspect
import os
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import ml_collections
import torch

from model_code.mlp import MLPDenoiser
from model_code.operators import OPERATORS, Operator
from model_code.priors import PRIORS
from model_code.processes import PROCESSES, Process
from model_code.registry import Registry
from model_code.unet import UNet
from scripts.data.datasets import ImageData, build_dataset, wrap_dataset

NETWORKS = Registry("network")
NETWORKS.register("unet")(UNet)
NETWORKS.register("mlp")(MLPDenoiser)


def build_from_pool(
    registry: Registry, name: str, pool: Mapping[str, Any], explicit: Optional[Mapping[str, Any]] = None
) -> Any:
    """Build ``registry[name]`` with the entries of ``pool`` its constructor accepts.

    ``explicit`` values must be accepted (a command-line flag that does not apply is an error).
    """
    constructor = registry.get(name)
    parameters = inspect.signature(constructor).parameters
    kwargs = {key: value for key, value in pool.items() if key in parameters}
    for key, value in (explicit or {}).items():
        if key not in parameters:
            raise ValueError(f"{key!r} does not apply to {registry.kind} {name!r} (it takes: {', '.join(parameters)})")
        kwargs[key] = value
    missing = [
        key
        for key, p in parameters.items()
        if p.default is inspect.Parameter.empty and key not in kwargs and p.kind == p.KEYWORD_ONLY
    ]
    if missing:
        raise ValueError(f"{registry.kind} {name!r} needs {', '.join(missing)}, which the config does not provide")
    return registry.build(name, **kwargs)


def image_size(config: ml_collections.ConfigDict) -> Tuple[int, int]:
    size = config.data.image_size
    return (size, size) if isinstance(size, int) else tuple(int(v) for v in size)


def data_shape(config: ml_collections.ConfigDict) -> Tuple[int, ...]:
    """Shape of one data item: (C, H, W)."""
    return (config.data.num_channels, *image_size(config))


def build_operator(config: ml_collections.ConfigDict) -> Operator:
    model = config.model
    pool = dict(
        image_size=image_size(config),
        K=model.K,
        blur_sigma_min=model.blur_sigma_min,
        blur_sigma_max=model.blur_sigma_max,
        min_scale=model.min_scale,
        seed=model.operator_seed,
    )
    return build_from_pool(OPERATORS, model.forward, pool)


def build_process(config: ml_collections.ConfigDict, delta: Optional[float] = None) -> Process:
    """The configured process; ``delta`` (from --delta) overrides the sampling noise where it applies."""
    model = config.model
    pool = dict(
        operator=build_operator(config),
        sigma=model.sigma,
        delta=model.delta,
        continuous_time=model.continuous_time,
        logsnr_min=model.logsnr_min,
        logsnr_max=model.logsnr_max,
        clip_denoised=model.clip_denoised,
        logsnr_sampling=model.logsnr_sampling,
        logistic_loc=model.logistic_loc,
        logistic_scale=model.logistic_scale,
    )
    return build_from_pool(PROCESSES, model.process, pool, explicit={"delta": delta} if delta is not None else None)


def build_network(config: ml_collections.ConfigDict) -> torch.nn.Module:
    model = config.model
    pool = dict(
        in_channels=config.data.num_channels,
        out_channels=config.data.num_channels,
        model_channels=model.model_channels,
        channel_mult=tuple(model.channel_mult),
        num_res_blocks=model.num_res_blocks,
        attention_levels=tuple(model.attention_levels),
        dropout=model.dropout,
        data_dim=int(torch.Size(data_shape(config)).numel()),
        hidden=model.mlp_hidden,
        depth=model.mlp_depth,
    )
    return build_from_pool(NETWORKS, model.network, pool)


def data_kind(config: ml_collections.ConfigDict) -> str:
    """'points' for the 2D datasets, 'image' otherwise (decides how samples are drawn to PNG)."""
    from scripts.data.toy2d import TOY2D_DATASETS

    return "points" if config.data.dataset in TOY2D_DATASETS else "image"


def build_data(config: ml_collections.ConfigDict, split: str, process: Process) -> ImageData:
    data = config.data
    root = data.root or os.path.join("data", data.dataset)
    dataset = build_dataset(
        data.dataset, split=split, image_size=image_size(config), num_channels=data.num_channels, root=root
    )
    return wrap_dataset(
        dataset,
        data_range=process.data_range,
        random_flip=data.random_flip,
        uniform_dequantization=data.uniform_dequantization,
    )


def build_prior(
    config: ml_collections.ConfigDict, process: Process, load_data: Callable[[], ImageData]
) -> torch.nn.Module:
    """The configured prior; ``load_data`` is called only if the prior needs the training images."""

    def num_items_and_fetch():
        data = load_data()
        return len(data), data.fetch

    pool: Dict[str, Any] = dict(process=process, shape=data_shape(config), load_data=num_items_and_fetch)
    return build_from_pool(PRIORS, config.model.prior, pool)
