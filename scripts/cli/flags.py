"""Command-line flags: absl parsing with one-line errors, and the folders a command writes in.

Before absl sees the command line, the --config file is loaded here so that a file that does not
exist, does not parse, lacks ``get_config`` or whose ``get_config`` raises is named in one line,
and so that an override of an unknown key, or one given twice, is refused with the key named.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import tempfile
from collections import Counter
from typing import List, Optional

import ml_collections

from scripts.cli.values import bad_value

HELP_FLAG = re.compile(r"^--?(help|helpshort|helpfull|helpxml|\?)(=.*)?$")


def parse_flags(argv: List[str]) -> List[str]:
    """absl flag parsing whose errors (bad --config file, unknown or repeated key, wrong type) are one line;
    the help that --help (--helpshort, --helpfull, --helpxml) prints exits with status 0, not absl's 1."""
    from absl import flags

    try:
        check_config_command_line(argv)
        return flags.FLAGS(argv)
    except SystemExit as exit:
        if exit.code == 1 and any(HELP_FLAG.match(argument) for argument in argv[1:]):
            sys.exit(0)
        raise
    except flags.Error as error:
        message = str(error)
    except (AttributeError, KeyError, OSError, TypeError, ValueError) as error:
        message = str(error).strip().splitlines()[0]
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def config_path(argv: List[str]) -> Optional[str]:
    """The value of the last --config on a command line (absl keeps the last), if any."""
    path = None
    for index, argument in enumerate(argv):
        if argument.startswith("--config="):
            path = argument.split("=", 1)[1]
        elif argument == "--config" and index + 1 < len(argv):
            path = argv[index + 1]
    return path


def check_config_command_line(argv: List[str]) -> None:
    """Load the --config file (if any) and check the --config.KEY overrides against it; ValueError otherwise."""
    path = config_path(argv)
    if path is None:
        return
    config = load_config_file(path)
    overrides = override_keys(argv)
    repeated = [key for key, count in Counter(overrides).items() if count > 1]
    if repeated:
        given = ", ".join(a for a in argv if override_key(a) == repeated[0])
        raise ValueError(
            f"--config.{repeated[0]} is given {overrides.count(repeated[0])} times ({given}); "
            "give each key once (a tuple in one piece, e.g. --config.model.channel_mult=(1,2,2))"
        )
    for key in overrides:
        check_known_key(config, key, path)


def load_config_file(path: str) -> ml_collections.ConfigDict:
    """``get_config()`` of the Python file ``path`` (``file.py:arg`` passes arg); one-line errors naming it."""
    file, _, argument = path.partition(":")
    if not os.path.isfile(file):
        raise bad_value("--config", path, "no such file; give a Python file that defines get_config()")
    spec = importlib.util.spec_from_file_location("config_file_check", file)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        raise bad_value("--config", path, f"syntax error at line {error.lineno}: {error.msg}") from None
    except Exception as error:  # the file's own code failed: report it, whatever it raised
        raise bad_value("--config", path, f"running the file raised {type(error).__name__}: {error}") from None
    if not callable(getattr(module, "get_config", None)):
        raise bad_value("--config", path, "defines no get_config(); a config file returns its ConfigDict from it")
    try:
        config = module.get_config(*([argument] if argument else []))
    except Exception as error:  # the file's own code failed: report it, whatever it raised
        raise bad_value("--config", path, f"get_config() raised {type(error).__name__}: {error}") from None
    if not isinstance(config, ml_collections.ConfigDict):
        raise bad_value("--config", path, f"get_config() returned {type(config).__name__}, not a ConfigDict")
    return config


def override_key(argument: str) -> Optional[str]:
    """'model.K' for --config.model.K=5, --config.model.K (value next) and --noconfig.model.flag; else None."""
    for prefix in ("--config.", "--noconfig."):
        if argument.startswith(prefix):
            return argument[len(prefix) :].split("=", 1)[0]
    return None


def override_keys(argv: List[str]) -> List[str]:
    return [key for key in map(override_key, argv) if key is not None]


def check_known_key(config: ml_collections.ConfigDict, key: str, path: str) -> None:
    """A ValueError naming ``key`` and the keys of its group if the config file has no such key."""
    node = config
    for depth, part in enumerate(key.split(".")):
        if not hasattr(node, "keys") or part not in node:
            group = ".".join(key.split(".")[:depth]) or "the top level"
            known = ", ".join(sorted(node.keys())) if hasattr(node, "keys") else "none (not a group)"
            raise ValueError(f"unknown config key {key!r} in {path}; keys in {group}: {known}")
        node = node[part]


def require_writable_folder(flag: str, value: str, folder: str) -> None:
    """Create ``folder`` if needed and write a scratch file in it; errors name ``--flag=value`` and the folder."""
    where = "" if folder == value else f"{folder} "
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise bad_value(flag, value, f"{where}is a file; give a folder (it is created if missing)")
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise bad_value(
            flag, value, f"{where}cannot be written ({error.strerror}); give a folder you can write to"
        ) from None
