"""The table of config rules (scripts/config/validate.py KEYS): one rule for every key of configs/default.py,
each with a check that refuses a wrong value and a role that says what the key changes."""

import os
import re

import pytest
import torch

from configs.default import get_default_configs
from scripts.config.validate import FREE, KEYS, MODEL, SAMPLES, Role, is_free, keys_of, validate_config
from scripts.runs.runconfig import flatten


def default_keys():
    return list(flatten(get_default_configs().to_dict()))


def test_every_key_of_the_defaults_has_a_rule_and_every_rule_a_key():
    """A key added to configs/default.py without a rule (or a rule left behind by a removed key) fails here."""
    assert sorted(set(default_keys()) - set(KEYS)) == [], "keys of configs/default.py without a rule in KEYS"
    assert sorted(set(KEYS) - set(default_keys())) == [], "rules in KEYS for keys configs/default.py lacks"


def test_every_rule_says_whether_its_key_changes_the_model():
    assert all(isinstance(rule.role, Role) for rule in KEYS.values())
    assert [key for key in KEYS if not is_free(key)] == keys_of(MODEL)
    assert not is_free("model.not_a_key")  # a key outside the table is taken to change the model


@pytest.mark.parametrize("key", list(KEYS))
def test_every_rule_passes_the_default_and_refuses_a_value_of_no_allowed_kind(key):
    value = flatten(get_default_configs().to_dict())[key]
    assert KEYS[key].check(value), (key, value)
    assert not KEYS[key].check(object()) and KEYS[key].allowed


def test_every_path_and_command_the_defaults_cite_exists():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    text = open(os.path.join(root, "configs", "default.py")).read()
    paths = re.findall(r"\b(?:scripts|model_code|configs)/[\w/]*\w(?:\.py)?/?", text)
    modules = [name.replace(".", "/") + ".py" for name in re.findall(r"python -m (scripts\.\w+)", text)]
    assert len(paths) >= 5 and modules
    assert [path for path in paths + modules if not os.path.exists(os.path.join(root, path))] == []


def test_the_defaults_pass_validation():
    validate_config(get_default_configs())


@pytest.mark.parametrize(
    "key, role",
    [
        ("model.K", MODEL),
        ("data.image_size", MODEL),
        ("model.delta", SAMPLES),
        ("model.clip_denoised", SAMPLES),
        ("eval.seed", SAMPLES),
        ("eval.batch_size", FREE),
        ("model.dropout", FREE),
        ("training.channels_last", FREE),
        ("optim.implementation", FREE),
    ],
)
def test_roles_of_some_keys(key, role):
    assert KEYS[key].role is role


def test_the_trainer_means_something_by_every_allowed_choice():
    """The trainer maps a checked value to its meaning; a choice the table allows must have one."""
    from model_code.precision import MODES, network_dtype
    from scripts.training.trainer import adam_kernel_flags

    assert set(MODES) == set(KEYS["training.mixed_precision"].check.choices)
    for mode in set(MODES) - {"fp16"}:  # fp16 is refused off CUDA (tests/test_precision.py)
        network_dtype(mode, torch.device("cpu"))
    kernels = {
        choice: adam_kernel_flags(choice, torch.device("cpu")) for choice in KEYS["optim.implementation"].check.choices
    }
    assert kernels == {
        "auto": {"fused": False, "foreach": True},
        "fused": {"fused": True, "foreach": False},
        "foreach": {"fused": False, "foreach": True},
        "for_loop": {"fused": False, "foreach": False},
    }
