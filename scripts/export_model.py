"""Export a trained run as a slim folder that samples, encodes and evaluates exactly as the run does.

    python -m scripts.export_model --workdir RUN --dest pretrained/NAME [--checkpoint 0] [--force] [--about TEXT]

DEST gets the run-directory layout the loaders read, so ``Model.from_run(DEST)``, ``sample.py --workdir DEST``
and ``evaluate.py --workdir DEST`` use it as they use the run:

    DEST/checkpoints-meta/checkpoint.pth   EMA weights, process and prior state, step, resolved config, format
    DEST/config.json                       the resolved config
    DEST/README.md                         what the model is, the command that exported it, file sizes, --about
    DEST/SHA256SUMS                        checksums of the three files (``cd DEST && sha256sum -c SHA256SUMS``)

The optimiser state, the raw (non-EMA) weights and the RNG states are left out, so the export cannot resume
training (train.py refuses it in one line). The files are written in a staging folder beside DEST
(``.NAME.tmp-PID``), SHA256SUMS last, and the folder is renamed into place whole; with --force the old DEST is
first renamed aside (``.NAME.old.tmp-PID``) and removed once the new one is in place. A killed export leaves
DEST as it was (or, killed between the two renames, the old export aside and no DEST) and its staging
folders, which the next export of DEST removes; loaders check SHA256SUMS (``scripts.runs.exported``).
"""

from __future__ import annotations

import os
import shlex
import shutil
from typing import Dict, List, Tuple

import ml_collections
from absl import flags

from scripts.runs.checkpoints import EXPORTED, SAMPLING_ENTRIES, load_checkpoint, save_checkpoint
from scripts.runs.exported import CHECKPOINT, CHECKSUMS, CONFIG, EXPORT_FILES, README, checksum_lines
from scripts.runs.runconfig import run_config
from scripts.runs.rundir import RunDir
from scripts.storage.files import exclusive_lock, remove_stale_temporaries, sync_folder, temporary_path, write_atomic

flags.DEFINE_string("workdir", None, "the training run to export")
flags.DEFINE_integer("checkpoint", 0, "0: the latest state (checkpoints-meta); N: checkpoints/checkpoint_N.pth")
flags.DEFINE_string("dest", None, "the folder to write, e.g. pretrained/quickstart")
flags.DEFINE_boolean("force", False, "replace an existing export in --dest")
flags.DEFINE_string("about", "", "text for DEST/README.md: how the run was trained (command, wall time, machine)")
FLAGS = flags.FLAGS


def check_flags() -> Tuple[str, int, str]:
    """(workdir, checkpoint number, dest), each refused in one line before anything is read or written."""
    from scripts.cli.values import bad_value, int_at_least, require

    for flag in ("workdir", "dest"):
        if not getattr(FLAGS, flag):
            raise ValueError(f"--{flag} is missing; allowed: a folder path")
    require("--checkpoint", FLAGS.checkpoint, int_at_least(0), "an integer >= 0 (0: the latest state)")
    workdir, dest = FLAGS.workdir, FLAGS.dest
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise bad_value("--dest", dest, "is a file; give a folder to write the export in")
    if os.path.exists(dest) and not FLAGS.force:
        raise bad_value("--dest", dest, "exists; give a new folder, or --force to replace the export there")
    if os.path.realpath(dest) == os.path.realpath(workdir):
        raise bad_value("--dest", dest, "is the run itself; give another folder (the run keeps its full state)")
    others = foreign_files(dest)
    if others:
        shown = ", ".join(others[:3]) + (f" (+{len(others) - 3} more)" if len(others) > 3 else "")
        raise bad_value(
            "--dest", dest, f"holds files that are not an export's ({shown}); --force replaces an export only"
        )
    return workdir, FLAGS.checkpoint, dest


def foreign_files(dest: str) -> List[str]:
    """The paths under ``dest`` (relative, sorted) that are not files of an export: --force would delete them."""
    found = [os.path.relpath(os.path.join(root, name), dest) for root, _, names in os.walk(dest) for name in names]
    return sorted(name for name in found if name not in EXPORT_FILES)


def exported_state(workdir: str, checkpoint: int) -> Tuple[Dict, ml_collections.ConfigDict, str]:
    """(the entries sampling reads, marked exported; the run's resolved config; the checkpoint's path)."""
    run_dir = RunDir(workdir)
    path = run_dir.checkpoint_path(checkpoint)
    state = load_checkpoint(path, "cpu", sampling_only=True)
    config = run_config(state, path, run_dir, None)
    return {**{key: state[key] for key in SAMPLING_ENTRIES}, EXPORTED: True}, config, path


def describe(
    dest: str, folder: str, state: Dict, config: ml_collections.ConfigDict, source: str, command: str, about: str
) -> str:
    """DEST/README.md: the model in one line, how to use and check it, the export command, the sizes of the
    files written in ``folder`` (the staging folder of ``dest``), ``about``."""
    parameters = sum(value.numel() for value in state["ema"].values())
    model, data = config.model, config.data
    shape = f"{data.num_channels}x{data.image_size}x{data.image_size}"
    sizes = "\n".join(
        f"| `{name}` | {os.path.getsize(os.path.join(folder, name)):,} |" for name in (CHECKPOINT, CONFIG)
    )
    about = f"\n{about.strip()}\n" if about.strip() else ""
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


def export(workdir: str, checkpoint: int, dest: str, about: str = "") -> List[str]:
    """Write DEST's files (checkpoint, config, README, then SHA256SUMS) in a staging folder and rename it into
    place (see the module docstring), holding a lock on DEST; returns the paths of the files."""
    state, config, source = exported_state(workdir, checkpoint)
    command = shlex.join(["python", "-m", "scripts.export_model", f"--workdir={workdir}", f"--dest={dest}"])
    if checkpoint:
        command += f" --checkpoint={checkpoint}"
    dest = os.path.normpath(dest)
    parent, name = os.path.split(dest)
    with exclusive_lock(dest, wait=False):
        remove_stale_temporaries(parent or ".", [name, f"{name}.old"])
        staging = temporary_path(dest)
        try:
            write_export(staging, dest, state, config, source, command, about)
            replace_folder(staging, dest)
        finally:
            if os.path.isdir(staging):
                shutil.rmtree(staging)
    return [os.path.join(dest, name) for name in EXPORT_FILES]


def write_export(folder: str, dest: str, state: Dict, config, source: str, command: str, about: str) -> None:
    """The export's files in ``folder``, SHA256SUMS last."""
    save_checkpoint([os.path.join(folder, CHECKPOINT)], state, config)
    RunDir(folder).save_config(config)
    readme = describe(dest, folder, state, config, source, command, about)
    write_atomic(os.path.join(folder, README), readme.encode())
    write_atomic(os.path.join(folder, CHECKSUMS), checksum_lines(folder, [CHECKPOINT, CONFIG, README]).encode())


def replace_folder(staging: str, dest: str) -> None:
    """Rename ``staging`` to ``dest``; an existing ``dest`` is renamed aside first and removed afterwards."""
    aside = temporary_path(f"{dest}.old")
    if os.path.exists(dest):
        os.rename(dest, aside)
    os.rename(staging, dest)
    sync_folder(os.path.dirname(dest) or ".")
    if os.path.exists(aside):
        shutil.rmtree(aside)


def run() -> None:
    workdir, checkpoint, dest = check_flags()
    written = export(workdir, checkpoint, dest, FLAGS.about)
    total = sum(os.path.getsize(path) for path in written)
    print(f"exported checkpoint {checkpoint} of {workdir} to {dest} ({total:,} bytes):")
    for path in written:
        print(f"  {path}")


if __name__ == "__main__":
    from scripts.cli.command import run_command

    run_command(run)
