"""Recording evaluation results: WORKDIR/evaluation_results/EXPERIMENT/results.json and log.txt.

Several evaluations of one experiment may run at once (several commands, several machines on a shared
file system): each update of results.json reads, changes and renames it while holding ``exclusive_lock``,
so no result is lost and the file is valid JSON at every moment.
"""

from __future__ import annotations

import datetime
import json
import os
from typing import Any, Dict

from scripts.cli.errors import RunDirError
from scripts.runs.rundir import RunDir
from scripts.storage.files import exclusive_lock, write_atomic


def record(request, result: Dict[str, Any], model) -> str:
    """Store ``result`` under results.json[param_name][mode] (rewritten atomically) and append its headline
    to log.txt. ``request`` is an EvaluationRequest, ``model`` the TrainedModel evaluated; returns the path."""
    folder = RunDir(request.workdir).results_folder(request.experiment_name)
    path = os.path.join(folder, "results.json")
    entry = dict(result, checkpoint=model.checkpoint_path, step=model.step, **model.process.sampling_settings())
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    with exclusive_lock(path):
        results = read_results(path)
        results.setdefault(request.param_name, {})[request.mode] = entry
        write_atomic(path, json.dumps(results, indent=2, sort_keys=True).encode())
        with open(os.path.join(folder, "log.txt"), "a") as log:
            log.write(f"{stamp} {request.param_name} {request.mode} step={model.step}: {result['headline']}\n")
    return path


def read_results(path: str) -> Dict[str, Any]:
    """The results stored in ``path`` ({} when it does not exist yet); anything but a JSON object is refused
    in one line, so that a damaged file is never overwritten with this result alone."""
    if not os.path.exists(path):
        return {}
    try:
        with open(path) as handle:
            results = json.load(handle)
    except (OSError, ValueError) as error:
        raise RunDirError(f"cannot read {path} ({type(error).__name__}: {error}); move it away to start anew") from None
    if not isinstance(results, dict):
        raise RunDirError(f"{path} holds a {type(results).__name__}, not a JSON object; move it away to start anew")
    return results
