"""The config boundary: every constructor parameter is fed or declared library-only, every model.*/data.* key
is read, and the feeding rules themselves; library code names no command-line flag."""

import glob
import os
import re

import ml_collections
import pytest
import torch

from configs.default import get_default_configs
from model_code.operators.linear_maps import IdentityOperator
from model_code.registry import Registry
from scripts.config import build

ENTRIES = [(feed, name) for feed in build.FEEDS for name in feed.registry.names()]


@pytest.mark.parametrize("feed, name", ENTRIES, ids=[f"{f.registry.kind}-{n}" for f, n in ENTRIES])
def test_every_constructor_parameter_is_fed_from_the_config_or_declared_library_only(feed, name):
    sources = build.parameter_sources(feed, name, get_default_configs())
    assert list(sources) == list(feed.registry.parameters(name))
    for source in sources.values():
        assert source in (build.PROVIDED, build.LIBRARY_ONLY) or build.has_key(get_default_configs(), source)


class RecordingConfig:
    """A ConfigDict seen through attribute and item access; every leaf read is recorded as its dotted key."""

    def __init__(self, node: ml_collections.ConfigDict, reads: set, prefix: str = ""):
        self._node, self._reads, self._prefix = node, reads, prefix

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name):
        value = self._node[name]
        key = self._prefix + name
        if isinstance(value, ml_collections.ConfigDict):
            return RecordingConfig(value, self._reads, key + ".")
        self._reads.add(key)
        return value

    def __contains__(self, name):
        return name in self._node

    def keys(self):
        return self._node.keys()


def leaf_keys(node, prefix=""):
    for key, value in node.items():
        if isinstance(value, ml_collections.ConfigDict):
            yield from leaf_keys(value, f"{prefix}{key}.")
        else:
            yield prefix + key


def tiny_defaults(**model):
    config = get_default_configs()
    config.model.update(dict(K=3, model_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,)))
    config.model.update(model)
    config.data.image_size = 8
    return config


def test_every_model_and_data_key_is_read_by_something(tmp_path):
    """Builds every operator with every process, every network, prior and the data, and the trainer, through
    the real build functions; a key under model.* or data.* that none of them reads is a silently ignored key."""
    from scripts.training.trainer import Trainer

    reads = set()
    for forward in build.OPERATORS.names():
        for process in build.PROCESSES.names():
            try:
                build.build_process(RecordingConfig(tiny_defaults(forward=forward, process=process), reads))
            except ValueError:  # an unsupported pair still reads the keys of its constructors first
                pass
    process = build.build_process(tiny_defaults())
    for network in build.NETWORKS.names():
        with torch.device("meta"):
            build.build_network(RecordingConfig(tiny_defaults(network=network), reads))
    for prior in build.PRIORS.names():
        build.build_prior(RecordingConfig(tiny_defaults(prior=prior), reads), process, load_data=None)
    build.build_data(RecordingConfig(tiny_defaults(), reads), "test", process)
    Trainer(RecordingConfig(tiny_defaults(), reads), str(tmp_path), torch.device("cpu"))

    defaults = get_default_configs()
    unread = [key for key in leaf_keys(defaults) if key.split(".")[0] in ("model", "data") and key not in reads]
    assert unread == [], f"config keys that nothing reads: {unread}"


class Sharpen(IdentityOperator):
    def __init__(self, *, image_size, K, strength: float = 1.0):
        super().__init__(image_size=image_size, K=K)
        self.strength = strength


def feed_for(constructor, library_only=()):
    registry = Registry("operator")
    registry.register("sharpen")(type("Declared", (constructor,), {"library_only": library_only}))
    return build.Feed(registry, "model.forward", "model", ("image_size",), {"seed": "model.operator_seed"})


def test_a_parameter_fed_by_nothing_fails_the_build_and_names_the_parameter():
    config = get_default_configs()
    config.model.forward = "sharpen"
    with pytest.raises(ValueError, match="operator 'sharpen': parameter 'strength' is fed by nothing: no config key"):
        build.build_registered(feed_for(Sharpen), config, {"image_size": lambda: 8})
    declared = build.build_registered(feed_for(Sharpen, ("strength",)), config, {"image_size": lambda: 8})
    assert declared.strength == 1.0 and declared.build_spec["kwargs"] == {"image_size": 8, "K": 100}
    with config.unlocked():
        config.model.strength = 2.5  # a key of the parameter's name feeds it
    assert build.build_registered(feed_for(Sharpen), config, {"image_size": lambda: 8}).strength == 2.5


def test_library_only_declarations_must_name_parameters_with_defaults():
    config = get_default_configs()
    with pytest.raises(ValueError, match="declares library-only 'sharpness', which is not a parameter"):
        build.parameter_sources(feed_for(Sharpen, ("strength", "sharpness")), "sharpen", config)
    with pytest.raises(ValueError, match="declares 'K' library-only but gives it no default"):
        build.parameter_sources(feed_for(Sharpen, ("K",)), "sharpen", config)


def test_renamed_keys_and_json_lists_reach_the_constructors():
    config = tiny_defaults(forward="random_matrix", operator_seed=7, network="mlp", mlp_hidden=5, mlp_depth=2)
    assert build.build_operator(config).build_spec["kwargs"]["seed"] == 7
    mlp = build.build_network(config).build_spec["kwargs"]
    assert (mlp["hidden"], mlp["depth"], mlp["data_dim"]) == (5, 2, 64)
    from_json = ml_collections.ConfigDict(tiny_defaults().to_dict())
    from_json.model.channel_mult = [1, 2]  # what a config read back from JSON holds
    assert build.build_network(from_json).build_spec["kwargs"]["channel_mult"] == (1, 2)


def test_a_process_setting_must_apply():
    config = tiny_defaults(process="gaussian", forward="blur")
    with pytest.raises(ValueError, match="'delta' does not apply to process 'gaussian'"):
        build.with_process_settings(config, {"delta": 0.1})
    updated = build.with_process_settings(tiny_defaults(), {"delta": 0.02})
    assert build.build_process(updated).delta == 0.02 and tiny_defaults().model.delta is None


def test_library_code_names_no_command_line_flag():
    """model_code/ is used without the commands: its messages and docstrings speak of arguments, not --flags."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sources = sorted(glob.glob(os.path.join(root, "model_code", "**", "*.py"), recursive=True))
    flagged = [
        f"{os.path.relpath(path, root)}: {line.strip()}"
        for path in sources
        for line in open(path).read().splitlines()
        if re.search(r"--[a-z]", line)
    ]
    assert sources and flagged == []
