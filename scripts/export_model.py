"""Export a trained run as a slim folder that samples, encodes and evaluates exactly as the run does.

    python -m scripts.export_model --workdir RUN --dest pretrained/NAME [--checkpoint 0] [--force] [--about TEXT]

DEST gets the run-directory layout the loaders read, so ``Model.from_run(DEST)``, ``sample.py --workdir DEST``
and ``evaluate.py --workdir DEST`` use it as they use the run:

    DEST/checkpoints-meta/checkpoint.pth   EMA weights, process and prior state, step, resolved config, format
    DEST/config.json                       the resolved config
    DEST/README.md                         what the model is, the command that exported it, file sizes, --about
    DEST/SHA256SUMS                        checksums of the three files (``cd DEST && sha256sum -c SHA256SUMS``)

The optimiser state, the raw (non-EMA) weights and the RNG states are left out, so the export cannot resume
training (train.py refuses it in one line). Every file is written atomically and SHA256SUMS last: a folder whose
SHA256SUMS checks is complete.
"""

from __future__ import annotations

import hashlib
import os
import shlex
from typing import Dict, List, Tuple

import ml_collections
from absl import flags

from scripts.runs.checkpoints import EXPORTED, SAMPLING_ENTRIES, load_checkpoint, save_checkpoint
from scripts.runs.files import write_atomic
from scripts.runs.runconfig import run_config
from scripts.runs.rundir import RunDir

flags.DEFINE_string("workdir", None, "the training run to export")
flags.DEFINE_integer("checkpoint", 0, "0: the latest state (checkpoints-meta); N: checkpoints/checkpoint_N.pth")
flags.DEFINE_string("dest", None, "the folder to write, e.g. pretrained/quickstart")
flags.DEFINE_boolean("force", False, "overwrite the exported files in an existing --dest")
flags.DEFINE_string("about", "", "text for DEST/README.md: how the run was trained (command, wall time, machine)")
FLAGS = flags.FLAGS

CHECKPOINT = os.path.join("checkpoints-meta", "checkpoint.pth")
CONFIG = "config.json"
README = "README.md"
CHECKSUMS = "SHA256SUMS"


def check_flags() -> Tuple[str, int, str]:
    """(workdir, checkpoint number, dest), each refused in one line before anything is read or written."""
    from scripts.config.validate import bad_value, int_at_least, require

    for flag in ("workdir", "dest"):
        if not getattr(FLAGS, flag):
            raise ValueError(f"--{flag} is missing; allowed: a folder path")
    require("--checkpoint", FLAGS.checkpoint, int_at_least(0), "an integer >= 0 (0: the latest state)")
    workdir, dest = FLAGS.workdir, FLAGS.dest
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise bad_value("--dest", dest, "is a file; give a folder to write the export in")
    if os.path.exists(dest) and not FLAGS.force:
        raise bad_value("--dest", dest, "exists; give a new folder, or --force to overwrite the exported files there")
    if os.path.realpath(dest) == os.path.realpath(workdir):
        raise bad_value("--dest", dest, "is the run itself; give another folder (the run keeps its full state)")
    return workdir, FLAGS.checkpoint, dest


def exported_state(workdir: str, checkpoint: int) -> Tuple[Dict, ml_collections.ConfigDict, str]:
    """(the entries sampling reads, marked exported; the run's resolved config; the checkpoint's path)."""
    run_dir = RunDir(workdir)
    path = run_dir.checkpoint_path(checkpoint)
    state = load_checkpoint(path, "cpu", sampling_only=True)
    config = run_config(state, path, run_dir, None)
    return {**{key: state[key] for key in SAMPLING_ENTRIES}, EXPORTED: True}, config, path


def sha256(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def checksum_lines(dest: str, names: List[str]) -> str:
    """``sha256sum`` format: '<hex>  <name>' per file, names relative to ``dest`` with forward slashes."""
    return "".join(f"{sha256(os.path.join(dest, name))}  {name.replace(os.sep, '/')}\n" for name in names)


def describe(dest: str, state: Dict, config: ml_collections.ConfigDict, source: str, command: str) -> str:
    """DEST/README.md: the model in one line, how to use and check it, the export command, sizes, --about."""
    parameters = sum(value.numel() for value in state["ema"].values())
    model, data = config.model, config.data
    shape = f"{data.num_channels}x{data.image_size}x{data.image_size}"
    sizes = "\n".join(f"| `{name}` | {os.path.getsize(os.path.join(dest, name)):,} |" for name in (CHECKPOINT, CONFIG))
    about = f"\n{FLAGS.about.strip()}\n" if FLAGS.about.strip() else ""
    return f"""# {os.path.basename(os.path.normpath(dest))}: an exported model

Process `{model.process}`, operator `{model.forward}`, prior `{model.prior}`, K = {model.K}, {shape} images of
`{data.dataset}`: {parameters:,} EMA parameters after {int(state["step"])} training steps.
It holds what sampling needs (EMA weights, process and prior state, step, config), not the optimiser, the raw
weights or the RNG states: it samples, encodes and evaluates exactly as the run did, and cannot resume training.
{about}
```bash
python sample.py --workdir {dest} --batch_size=36
python -c 'from scripts.api import Model; print(Model.from_run("{dest}").sample(4).shape)'
cd {dest} && sha256sum -c {CHECKSUMS}
```

Exported from `{source}` with

```bash
{command}
```

| file | bytes |
|---|---|
{sizes}
"""


def export(workdir: str, checkpoint: int, dest: str) -> List[str]:
    """Write DEST's files (checkpoint, config, README, then SHA256SUMS) atomically; returns their paths."""
    state, config, source = exported_state(workdir, checkpoint)
    command = shlex.join(["python", "-m", "scripts.export_model", f"--workdir={workdir}", f"--dest={dest}"])
    if checkpoint:
        command += f" --checkpoint={checkpoint}"
    save_checkpoint([os.path.join(dest, CHECKPOINT)], state, config)
    RunDir(dest).save_config(config)
    write_atomic(os.path.join(dest, README), describe(dest, state, config, source, command).encode())
    names = [CHECKPOINT, CONFIG, README]
    write_atomic(os.path.join(dest, CHECKSUMS), checksum_lines(dest, names).encode())
    return [os.path.join(dest, name) for name in [*names, CHECKSUMS]]


def run() -> None:
    workdir, checkpoint, dest = check_flags()
    written = export(workdir, checkpoint, dest)
    total = sum(os.path.getsize(path) for path in written)
    print(f"exported checkpoint {checkpoint} of {workdir} to {dest} ({total:,} bytes):")
    for path in written:
        print(f"  {path}")


if __name__ == "__main__":
    from scripts.cli.command import run_command

    run_command(run)
