"""The config boundary: turn a ConfigDict into explicitly constructed library objects.

Library constructors take keyword arguments. Each registry has a ``Feed`` that says where every
keyword parameter of its constructors comes from, derived from the constructor's signature: a value
the build function provides (derived from several keys, or an object built before), nothing when
the constructor declares the parameter library-only (its default stays), a renamed config key, or
the config key of the same name in the feed's group. A parameter fed by none of these is an error
when the object is built (and in the tests, for every registered constructor), so a new parameter
can never be silently left at its default while the config says otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import ml_collections
import torch

from model_code import precision
from model_code.networks import NETWORKS
from model_code.operators import OPERATORS, Operator
from model_code.priors import PRIORS
from model_code.processes import PROCESSES, Process
from model_code.registry import Registry
from scripts.data.datasets import DATASETS, Data, check_split, dataset_kind, split_fingerprint, wrap_dataset

PROVIDED = "provided by the build function"
LIBRARY_ONLY = "library-only (constructor default)"


@dataclass(frozen=True)
class Feed:
    """Where the keyword parameters of one registry's constructors come from.

    ``selector``: the config key naming the entry (e.g. ``model.forward``); ``group``: the config group
    whose keys feed parameters of the same name; ``provided``: parameters the build function supplies;
    ``renamed``: parameter -> config key where the names differ.
    """

    registry: Registry
    selector: str
    group: str
    provided: Tuple[str, ...] = ()
    renamed: Mapping[str, str] = field(default_factory=dict)


OPERATOR_FEED = Feed(OPERATORS, "model.forward", "model", ("image_size",), {"seed": "model.operator_seed"})
PROCESS_FEED = Feed(PROCESSES, "model.process", "model", ("operator",))
NETWORK_FEED = Feed(
    NETWORKS,
    "model.network",
    "model",
    ("in_channels", "out_channels", "data_dim"),
    {"hidden": "model.mlp_hidden", "depth": "model.mlp_depth"},
)
PRIOR_FEED = Feed(PRIORS, "model.prior", "model", ("process", "shape", "load_data"))
DATASET_FEED = Feed(DATASETS, "data.dataset", "data", ("split", "image_size", "root"))
FEEDS = (OPERATOR_FEED, PROCESS_FEED, NETWORK_FEED, PRIOR_FEED, DATASET_FEED)


def config_value(config: ml_collections.ConfigDict, key: str) -> Any:
    """The value at a dotted key such as ``model.K``."""
    node = config
    for part in key.split("."):
        node = node[part]
    return node


def immutable(value: Any) -> Any:
    """Lists (as a config read back from JSON holds them) become tuples, as the constructors declare."""
    return tuple(value) if isinstance(value, list) else value


def has_key(config: ml_collections.ConfigDict, key: str) -> bool:
    """Whether the dotted key exists (the leaf's value is not read)."""
    *groups, leaf = key.split(".")
    node = config
    for part in groups:
        if not hasattr(node, "keys") or part not in node:
            return False
        node = node[part]
    return hasattr(node, "keys") and leaf in node


def parameter_sources(feed: Feed, name: str, config: ml_collections.ConfigDict) -> Dict[str, str]:
    """For each keyword parameter of ``name``'s constructor: PROVIDED, LIBRARY_ONLY or the config key feeding it.

    Raises ValueError naming every parameter that nothing feeds, a library-only declaration that names
    no parameter, and a library-only parameter without a default.
    """
    registry = feed.registry
    parameters = registry.parameters(name)
    library_only = registry.library_only(name)
    problems = [f"declares library-only {p!r}, which is not a parameter" for p in library_only if p not in parameters]
    sources: Dict[str, str] = {}
    for parameter, signature in parameters.items():
        key = feed.renamed.get(parameter, f"{feed.group}.{parameter}")
        if parameter in feed.provided:
            sources[parameter] = PROVIDED
        elif parameter in library_only:
            sources[parameter] = LIBRARY_ONLY
            if signature.default is signature.empty:
                problems.append(f"declares {parameter!r} library-only but gives it no default")
        elif has_key(config, key):
            sources[parameter] = key
        else:
            problems.append(
                f"parameter {parameter!r} is fed by nothing: no config key {key} and not declared library-only "
                f"(add the key to configs/default.py, or list it in the constructor's library_only)"
            )
    if problems:
        raise ValueError(f"{registry.kind} {name!r}: " + "; ".join(problems))
    return sources


def build_registered(feed: Feed, config: ml_collections.ConfigDict, provided: Mapping[str, Callable[[], Any]]) -> Any:
    """Build the entry the config selects, every keyword argument fed as ``parameter_sources`` says.

    ``provided`` maps each of ``feed.provided`` to a function computing its value (called only if the
    constructor takes it).
    """
    if set(provided) != set(feed.provided):
        raise RuntimeError(f"the {feed.registry.kind} feed provides {feed.provided}, the build gave {tuple(provided)}")
    name = config_value(config, feed.selector)
    kwargs: Dict[str, Any] = {}
    for parameter, source in parameter_sources(feed, name, config).items():
        if source == PROVIDED:
            kwargs[parameter] = provided[parameter]()
        elif source != LIBRARY_ONLY:
            kwargs[parameter] = immutable(config_value(config, source))
    return feed.registry.build(name, **kwargs)


def with_process_settings(config: ml_collections.ConfigDict, settings: Mapping[str, Any]) -> ml_collections.ConfigDict:
    """A copy of ``config`` whose process parameters ``settings`` (e.g. {"delta": 0.02}, a command line's
    --delta) replace the config's values; each must be a parameter the configured process reads from its
    config key (else a one-line error naming what the process takes)."""
    name = config_value(config, PROCESS_FEED.selector)
    sources = parameter_sources(PROCESS_FEED, name, config)
    updated = ml_collections.ConfigDict(config.to_dict())
    for parameter, value in settings.items():
        if sources.get(parameter) in (None, PROVIDED, LIBRARY_ONLY):
            raise ValueError(f"{parameter!r} does not apply to process {name!r} (it takes: {', '.join(sources)})")
        *groups, leaf = sources[parameter].split(".")
        node = updated
        for group in groups:
            node = node[group]
        node[leaf] = value
    return updated


def image_size(config: ml_collections.ConfigDict) -> Tuple[int, int]:
    size = config.data.image_size
    return (size, size) if isinstance(size, int) else tuple(int(v) for v in size)


def data_shape(config: ml_collections.ConfigDict) -> Tuple[int, ...]:
    """Shape of one data item: (C, H, W)."""
    return (config.data.num_channels, *image_size(config))


def build_operator(config: ml_collections.ConfigDict) -> Operator:
    """The configured operator (``model.forward``)."""
    return build_registered(OPERATOR_FEED, config, {"image_size": lambda: image_size(config)})


def build_process(config: ml_collections.ConfigDict) -> Process:
    """The configured process (``model.process``) on the configured operator."""
    return build_registered(PROCESS_FEED, config, {"operator": lambda: build_operator(config)})


def network_dtype(config: ml_collections.ConfigDict, device: torch.device) -> Optional[torch.dtype]:
    """The network's training precision: training.mixed_precision on ``device`` for the configured process
    (``model_code.precision.network_dtype``; None: float32)."""
    float32_only = PROCESSES.get(config.model.process).float32_network
    return precision.network_dtype(config.training.mixed_precision, device, float32_only)


def build_network(config: ml_collections.ConfigDict) -> torch.nn.Module:
    """The configured denoiser (``model.network``): C channels in and out, or D = C H W entries for the MLP."""
    channels = lambda: config.data.num_channels
    data_dim = lambda: int(torch.Size(data_shape(config)).numel())
    return build_registered(
        NETWORK_FEED, config, {"in_channels": channels, "out_channels": channels, "data_dim": data_dim}
    )


def data_kind(config: ml_collections.ConfigDict) -> str:
    """'image' or 'points', as the configured dataset is registered (decides how samples are drawn)."""
    return dataset_kind(config.data.dataset)


def data_root(config: ml_collections.ConfigDict) -> str:
    """Where the configured dataset is read from: ``data.root``, by default ``data/<data.dataset>``."""
    return config.data.root or os.path.join("data", config.data.dataset)


def data_fingerprint(config: ml_collections.ConfigDict, split: str) -> Optional[str]:
    """The content fingerprint of the configured dataset's ``split`` (``split_fingerprint``; None for a dataset
    without one), found without loading its images."""
    check_split(split)
    return split_fingerprint(config.data.dataset, split=split, root=data_root(config))


def build_data(
    config: ml_collections.ConfigDict, split: str, process: Process, *, uniform_dequantization: Optional[bool] = None
) -> Data:
    """The configured dataset's ``split``, presented in the process's data range.

    ``uniform_dequantization``: add U[0, 1) noise to the 8-bit values of images (evaluation asks for it on
    the test split); None follows ``data.uniform_dequantization``.
    """
    check_split(split)
    dataset = build_registered(
        DATASET_FEED,
        config,
        {
            "split": lambda: split,
            "image_size": lambda: image_size(config),
            "root": lambda: data_root(config),
        },
    )
    dequantize = config.data.uniform_dequantization if uniform_dequantization is None else uniform_dequantization
    return wrap_dataset(
        dataset,
        kind=dataset_kind(config.data.dataset),
        data_range=process.data_range,
        random_flip=config.data.random_flip,
        uniform_dequantization=dequantize,
    )


def build_prior(
    config: ml_collections.ConfigDict, process: Process, load_data: Optional[Callable[[], Data]]
) -> torch.nn.Module:
    """The configured prior; ``load_data`` is called only if the prior needs the training images (None: no data)."""

    def num_items_and_fetch():
        data = load_data()
        return len(data), data.fetch

    provided = {
        "process": lambda: process,
        "shape": lambda: data_shape(config),
        "load_data": lambda: None if load_data is None else num_items_and_fetch,
    }
    return build_registered(PRIOR_FEED, config, provided)
