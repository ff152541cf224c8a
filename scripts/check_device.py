"""GPU self-check: every CUDA path training takes, run through the trainer's own functions, and a short training.

    python -m scripts.check_device [--device=cpu|cuda] [--out=check_device.json] [--steps=N] [--batch_size=B]
        [--config=PATH] [--noshrink] [--compile_on_cpu]

Checks (``scripts/training/device_checks.py``): bf16 and fp16 autocast reaching the network only (operators and
loss float32), Adam's foreach and fused kernels against the for_loop one, TF32 for convolutions only,
device-resident batches, pinned non-blocking copies, one-process gloo and NCCL groups, channels-last,
torch.compile, and ``--steps`` training steps of ``--config`` (the CIFAR-10 config at its paper batch; on a CPU
shrunk to a few seconds, unless ``--noshrink``) with images/s, the MFU against the matmul peak measured here and
the peak memory. On a machine without CUDA the CPU subset runs and the CUDA-only checks are skipped ("CUDA is
absent"). One line per check, a summary line, and a JSON report written atomically to ``--out``; exit status 0
when no check failed, 1 otherwise.
"""

from __future__ import annotations

import json
import os
import platform
from collections import Counter

import torch
from absl import flags
from ml_collections import config_flags

DEFAULT_CONFIG = "configs/cifar10/default_cifar10_configs.py"  # python -m scripts.NAME runs in the repository root

FLAGS = flags.FLAGS
flags.DEFINE_string("device", None, "cpu or cuda (default: cuda where CUDA is present, else cpu).")
flags.DEFINE_string("out", "check_device.json", "Where the JSON report is written.")
flags.DEFINE_integer("steps", 50, "Timed training steps (after a few untimed ones).")
flags.DEFINE_integer("batch_size", None, "Training batch (default: the config's training.batch_size).")
config_flags.DEFINE_config_file("config", DEFAULT_CONFIG, "Training configuration file.", lock_config=False)
flags.DEFINE_boolean("shrink", None, "Train a shrunk copy of the config (the default on a CPU; --noshrink: as is).")
flags.DEFINE_boolean("compile_on_cpu", False, "Also run the torch.compile check on a CPU (minutes).")


def chosen_device() -> torch.device:
    """--device, checked: cpu, or cuda where CUDA is present."""
    from scripts.cli.values import bad_value, one_of, require

    name = FLAGS.device or ("cuda" if torch.cuda.is_available() else "cpu")
    require("--device", name, one_of("cpu", "cuda"), "cpu or cuda")
    if name == "cuda" and not torch.cuda.is_available():
        raise bad_value("--device", name, f"CUDA is absent (torch {torch.__version__} sees no GPU); allowed here: cpu")
    return torch.device(name)


def shrunk(device: torch.device) -> bool:
    """Whether the config is shrunk: --shrink, by default on a CPU."""
    return FLAGS.shrink if FLAGS.shrink is not None else device.type == "cpu"


def checked_config(device: torch.device):
    """The config to check: --config, shrunk as ``shrunk`` says, --batch_size applied, validated."""
    from scripts.cli.values import bad_value
    from scripts.config import build
    from scripts.config.validate import validate_config
    from scripts.training.device_checks import small_config

    if build.data_kind(FLAGS.config) != "image":
        raise bad_value("--config", config_flags.get_config_filename(FLAGS["config"]), "give a config of images")
    config = small_config(FLAGS.config) if shrunk(device) else FLAGS.config
    if FLAGS.batch_size is not None:
        config.training.batch_size = FLAGS.batch_size
    validate_config(config)
    return config


def check_flags() -> None:
    from scripts.cli.flags import require_writable_folder
    from scripts.cli.values import bad_value, int_at_least, require

    require("--steps", FLAGS.steps, int_at_least(1), "an integer >= 1")
    require("--batch_size", FLAGS.batch_size, int_at_least(1), "an integer >= 1")
    if os.path.isdir(FLAGS.out):
        raise bad_value("--out", FLAGS.out, "is a folder; give the path of the JSON report")
    require_writable_folder("--out", FLAGS.out, os.path.dirname(FLAGS.out) or ".")


def versions() -> dict:
    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "nccl": ".".join(map(str, torch.cuda.nccl.version())) if cuda else None,
    }


def device_info(device: torch.device) -> dict:
    from scripts.training.throughput import device_name

    info = {"type": device.type, "name": device_name(device), "cuda_available": torch.cuda.is_available()}
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        info.update(capability=f"{properties.major}.{properties.minor}", memory_bytes=properties.total_memory)
    else:
        info["processor"] = platform.processor() or platform.machine()
    return info


def summary(verdicts: list) -> str:
    counts = Counter(v["status"] for v in verdicts)
    return (
        f"{len(verdicts)} checks: {counts['pass']} passed, {counts['fail']} failed, {counts['skipped']} skipped; "
        f"report in {FLAGS.out}"
    )


def main() -> int:
    device = chosen_device()
    check_flags()
    from scripts.storage.files import write_atomic
    from scripts.training.device_checks import CUDA_ABSENT, device_checks, make_subject, run_check

    config = checked_config(device)
    if not torch.cuda.is_available():
        print(f"{CUDA_ABSENT}: the CPU subset runs, the CUDA-only checks are skipped")
    subject = make_subject(config, device)
    verdicts = []
    for check in device_checks(FLAGS.steps, FLAGS.compile_on_cpu):
        verdicts.append(run_check(check, subject))
        print(f"{verdicts[-1]['status']:7s} {check.name:22s} {verdicts[-1]['detail']}", flush=True)
    report = {
        "device": device_info(device),
        "versions": versions(),
        "config": config_flags.get_config_filename(FLAGS["config"]),
        "shrunk": shrunk(device),
        "training": next(v for v in verdicts if v["name"] == "training").get("values"),
        "checks": verdicts,
    }
    write_atomic(FLAGS.out, (json.dumps(report, indent=2) + "\n").encode())
    print(summary(verdicts))
    return 1 if any(v["status"] == "fail" for v in verdicts) else 0


if __name__ == "__main__":
    from scripts.cli.command import run_command

    run_command(main)
