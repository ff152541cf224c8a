"""Which config a command uses for a run, and when a command-line config contradicts the run's own.

The run's config is the one stored in its checkpoint, or, for checkpoints of the first format
(no config inside), WORKDIR/config.json. A --config given on the command line (with its
--config.x=y overrides) must agree with it on every model-changing key (the roles of
scripts/config/validate.py's ``KEYS``); if it does, the command line's config is used, so that its free keys
take effect.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple

import ml_collections

from scripts.cli.errors import CheckpointError, ConfigMismatch
from scripts.config.validate import is_free, validate_config
from scripts.runs.rundir import RunDir, config_from_dict

ABSENT = "(absent)"


def flatten(values: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
    """{'model': {'K': 5}} -> {'model.K': 5}; lists become tuples (JSON and ConfigDict agree)."""
    flat: Dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = tuple(value) if isinstance(value, list) else value
    return flat


def binding_differences(run: ml_collections.ConfigDict, given: ml_collections.ConfigDict) -> List[Tuple[str, Any, Any]]:
    """(key, run's value, given value) for every model-changing key where the two configs differ."""
    run_flat, given_flat = flatten(run.to_dict()), flatten(given.to_dict())
    keys = sorted(set(run_flat) | set(given_flat))
    return [
        (key, run_flat.get(key, ABSENT), given_flat.get(key, ABSENT))
        for key in keys
        if not is_free(key) and run_flat.get(key, ABSENT) != given_flat.get(key, ABSENT)
    ]


def check_config_matches(run: ml_collections.ConfigDict, given: ml_collections.ConfigDict, source: str) -> None:
    """Raise ConfigMismatch (one line naming every differing key and both values) if ``given`` contradicts
    ``run`` on a model-changing key; ``source`` says where the run's config came from."""
    differences = binding_differences(run, given)
    if differences:
        listed = "; ".join(
            f"{key}: run {run_value!r}, --config {given_value!r}" for key, run_value, given_value in differences
        )
        raise ConfigMismatch(
            f"the --config differs from the run's ({source}) on keys that change the model, the process or the "
            f"data shape: {listed}; use the run's values (sample.py and evaluate.py need no --config) "
            "or another --workdir"
        )


def run_config(
    state: Mapping[str, Any], path: str, run_dir: RunDir, given: Optional[ml_collections.ConfigDict]
) -> ml_collections.ConfigDict:
    """The config to rebuild the run from its checkpoint ``state`` (loaded from ``path``).

    The run's own config is the checkpoint's, else (first format) ``run_dir``'s config.json. ``given``
    (the command line's, or None) must agree with it on the model-changing keys and is then used.
    """
    if "config" in state:
        own, source = config_from_dict(state["config"]), f"stored in {path}"
    elif run_dir.has_config():
        own, source = run_dir.load_config(), run_dir.config_path
    else:
        own, source = None, ""
    if given is None:
        if own is None:
            raise CheckpointError(
                f"checkpoint {path} holds no config (an older format) and {run_dir.config_path} does not exist: "
                "pass the run's --config"
            )
        validate_config(own, f"the config {source}")
        return own
    if own is not None:
        check_config_matches(own, given, source)
    return given
