"""Periods in minutes of wall time (training.checkpoint_minutes, sampling_minutes, fid_minutes): due once their
minutes have passed, restarted when due, off at 0, and acted on by the trainer at the step they fall due."""

import os

import torch

from scripts.runs.rundir import RunDir
from scripts.training.periods import MinutePeriods
from scripts.training.trainer import Trainer
from tests.configs import tiny_hflow


def test_an_action_is_due_once_its_minutes_have_passed_and_its_period_restarts():
    now = [0.0]
    periods = MinutePeriods({"checkpoint": 2.0, "sampling": 0.5, "fid": 0.0}, clock=lambda: now[0])
    assert periods.due() == set()
    now[0] = 29.0
    assert periods.due() == set()
    now[0] = 30.0
    assert periods.due() == {"sampling"}
    now[0] = 59.0
    assert periods.due() == set()
    now[0] = 120.0
    assert periods.due() == {"checkpoint", "sampling"}
    now[0] = 10_000.0
    assert "fid" not in periods.due()


def test_the_trainer_checkpoints_and_samples_when_their_minutes_pass(tmp_path, monkeypatch):
    saved, save = [], Trainer.save
    monkeypatch.setattr(Trainer, "save", lambda self, batch: saved.append(self.state.step) or save(self, batch))
    config = tiny_hflow.get_config()
    config.training.update(dict(n_iters=3, snapshot_freq=0, snapshot_freq_for_preemption=0, sampling_freq=0))
    config.training.update(dict(checkpoint_minutes=1e-9, sampling_minutes=1e-9))  # due at every step
    Trainer(config, str(tmp_path), torch.device("cpu")).run()
    grids = sorted(os.listdir(tmp_path / "samples"))
    assert grids == ["iter_0000001.png", "iter_0000002.png", "iter_0000003.png"]
    assert os.path.isfile(RunDir(str(tmp_path)).meta_checkpoint) and saved == [1, 2, 3]
