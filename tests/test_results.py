"""results.json under concurrent writers: every record() of every process is kept, the file stays JSON."""

import json
import multiprocessing
import os
import types

import pytest

from scripts.cli.errors import RunDirError
from scripts.evaluation.results import record

WRITERS, RECORDS = 3, 60


def fake_request(workdir: str, param_name: str):
    return types.SimpleNamespace(workdir=workdir, experiment_name="e", param_name=param_name, mode="fid")


FAKE_MODEL = types.SimpleNamespace(
    checkpoint_path="c.pth", step=1, process=types.SimpleNamespace(sampling_settings=lambda: {})
)


def write_many(workdir: str, writer: int, start) -> None:
    start.wait()
    for i in range(RECORDS):
        record(fake_request(workdir, f"w{writer}-{i}"), {"headline": f"FID: {i}"}, FAKE_MODEL)


def test_concurrent_writers_keep_every_result(tmp_path):
    context = multiprocessing.get_context("fork")
    start = context.Barrier(WRITERS)
    writers = [context.Process(target=write_many, args=(str(tmp_path), w, start)) for w in range(WRITERS)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(60)
    assert [process.exitcode for process in writers] == [0] * WRITERS
    folder = os.path.join(tmp_path, "evaluation_results", "e")
    with open(os.path.join(folder, "results.json")) as handle:
        results = json.load(handle)
    assert len(results) == WRITERS * RECORDS
    with open(os.path.join(folder, "log.txt")) as handle:
        assert len(handle.readlines()) == WRITERS * RECORDS


def test_a_damaged_results_file_is_refused_not_overwritten(tmp_path):
    folder = os.path.join(tmp_path, "evaluation_results", "e")
    os.makedirs(folder)
    path = os.path.join(folder, "results.json")
    with open(path, "w") as handle:
        handle.write('{"p": {"fid"')
    with pytest.raises(RunDirError, match=r"cannot read .*results.json \(JSONDecodeError"):
        record(fake_request(str(tmp_path), "p"), {"headline": "FID: 1"}, FAKE_MODEL)
    with open(path) as handle:
        assert handle.read() == '{"p": {"fid"'
