"""GIF frame picking: one rule for the sampler's recorded states and the GIF writers; every picture and npz
is written atomically, and a full disk is one line naming the file."""

import errno
import os

import numpy as np
import pytest
import torch
from PIL import Image

from scripts.cli.errors import RunDirError, describe
from scripts.sampling.imaging import evenly_spaced_frames, save_gif, save_npz, save_png, save_scatter, save_scatter_gif
from scripts.storage import files


@pytest.mark.parametrize("count,max_frames", [(201, 100), (301, 100), (100, 25), (26, 25), (7, 3)])
def test_frames_are_evenly_spaced_and_keep_both_ends(count, max_frames):
    frames = evenly_spaced_frames(count, max_frames)
    assert len(frames) == max_frames and frames[0] == 0 and frames[-1] == count - 1
    gaps = np.diff(frames)
    ideal = (count - 1) / (max_frames - 1)
    assert gaps.min() >= np.floor(ideal) and gaps.max() <= np.ceil(ideal)  # as even as integers allow


def test_short_sequences_keep_every_frame():
    assert evenly_spaced_frames(5, 100) == [0, 1, 2, 3, 4]
    assert evenly_spaced_frames(1, 100) == [0]


def test_gif_writers_keep_at_most_max_frames_ending_on_the_last(tmp_path):
    # Frame i is a uniform grey of level i / 9, so the GIF's frames say which inputs they came from.
    frames = [torch.full((1, 1, 4, 4), i / 9) for i in range(10)]
    path = save_gif(str(tmp_path / "process.gif"), frames, max_frames=4)
    with Image.open(path) as gif:
        levels = []
        for index in range(gif.n_frames):
            gif.seek(index)
            levels.append(int(np.asarray(gif.convert("L"))[3, 3]))
    assert levels == [round(255 * i / 9) for i in evenly_spaced_frames(10, 4)] == [0, 85, 170, 255]
    points = [torch.randn(8, 2) for _ in range(30)]
    with Image.open(save_scatter_gif(str(tmp_path / "points.gif"), points, max_frames=5)) as gif:
        assert gif.n_frames == 5


WRITERS = {
    "samples.png": lambda path: save_png(path, torch.rand(4, 1, 6, 6)),
    "process.gif": lambda path: save_gif(path, [torch.rand(2, 3, 6, 6) for _ in range(3)]),
    "samples.npz": lambda path: save_npz(path, samples=np.zeros((2, 3))),
    "points.png": lambda path: save_scatter(path, torch.randn(20, 2)),
}


@pytest.mark.parametrize("name", WRITERS)
def test_a_full_disk_keeps_the_previous_file_and_names_the_new_one(tmp_path, monkeypatch, name):
    path = str(tmp_path / name)
    WRITERS[name](path)
    before = open(path, "rb").read()

    def full_disk(descriptor):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", full_disk)
    with pytest.raises(RunDirError) as error:
        WRITERS[name](path)
    assert describe(error.value) == f"cannot write {path}: No space left on device; the previous file is intact"
    assert open(path, "rb").read() == before and os.listdir(tmp_path) == [name]  # no temporary left
