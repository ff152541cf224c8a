"""Recording evaluation results: WORKDIR/evaluation_results/EXPERIMENT/results.json and log.txt."""

from __future__ import annotations

import datetime
import json
import os
from typing import Any, Dict

from scripts.runs.files import write_atomic
from scripts.runs.rundir import RunDir


def record(request, result: Dict[str, Any], model) -> str:
    """Store ``result`` under results.json[param_name][mode] (rewritten atomically) and append its headline
    to log.txt. ``request`` is an EvaluationRequest, ``model`` the TrainedModel evaluated; returns the path."""
    folder = RunDir(request.workdir).results_folder(request.experiment_name)
    path = os.path.join(folder, "results.json")
    results = {}
    if os.path.isfile(path):
        with open(path) as handle:
            results = json.load(handle)
    entry = dict(result, checkpoint=model.checkpoint_path, step=model.step, **model.process.sampling_settings())
    results.setdefault(request.param_name, {})[request.mode] = entry
    write_atomic(path, json.dumps(results, indent=2, sort_keys=True).encode())
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    with open(os.path.join(folder, "log.txt"), "a") as log:
        log.write(f"{stamp} {request.param_name} {request.mode} step={model.step}: {result['headline']}\n")
    return path
