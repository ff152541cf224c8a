"""Command-line flags: absl parsing with one-line errors."""

from __future__ import annotations

import os
import sys
from typing import List, Optional


def parse_flags(argv: List[str]) -> List[str]:
    """absl flag parsing whose errors (bad --config file, unknown key, wrong type) are one line."""
    from absl import flags

    path = config_path(argv)
    if path is not None and not os.path.isfile(path):
        print(f"error: config file {path} does not exist", file=sys.stderr)
        sys.exit(1)
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        message = str(error)
    except (AttributeError, KeyError, OSError, TypeError, ValueError) as error:
        message = unknown_override(argv) or str(error).strip().splitlines()[0]
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def config_path(argv: List[str]) -> Optional[str]:
    """The value of --config on a command line, if any."""
    path = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
    if path is None and "--config" in argv[:-1]:
        path = argv[argv.index("--config") + 1]
    return path


def unknown_override(argv: List[str]) -> Optional[str]:
    """Name the first --config.a.b=... override whose key the config file does not have."""
    from ml_collections import config_flags

    path = config_path(argv)
    if path is None:
        return None
    config = config_flags.config_flags._LoadConfigModule("config_check", path).get_config()
    for argument in argv:
        if not argument.startswith("--config."):
            continue
        key = argument[len("--config.") :].split("=", 1)[0]
        node = config
        for depth, part in enumerate(key.split(".")):
            if not hasattr(node, "keys") or part not in node:
                group = ".".join(key.split(".")[:depth]) or "the top level"
                known = ", ".join(sorted(node.keys())) if hasattr(node, "keys") else "none (not a group)"
                return f"unknown config key {key!r} in {path}; keys in {group}: {known}"
            node = node[part]
    return None
