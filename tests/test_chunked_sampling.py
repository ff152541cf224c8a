"""sample.py draws from the prior in chunks of eval.batch_size images, streamed to samples.npz: the samples do
not depend on the chunk size or the number of processes, the memory held does not grow with the number of
samples, and a request whose samples.npz cannot fit the free disk space is refused in one line, with nothing
written."""

import errno
import gc
import glob
import os
import re
import types

import numpy as np
import pytest
import torch

from scripts.api import Model
from scripts.cli.errors import RunDirError
from scripts.sample_run import run_request
from scripts.sampling import request as sampling_request
from scripts.sampling.npz_stream import NpzStream
from scripts.sampling.pictures import PICTURED_IMAGES
from scripts.sampling.request import SamplingRequest, check_disk_space, check_request
from scripts.sampling.sampler import sample
from tests.configs import tiny
from tests.helpers import ROOT, train_tiny_run
from tests.launchers import launch

COUNT, CHUNK = 2000, 64
IMAGE_BYTES = 8 * 8 * 4  # one 8x8 grey float32 image of the tiny run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_tiny_run(str(tmp_path_factory.mktemp("run")))


def request_of(workdir: str, count: int, chunk_size=None, **flags) -> SamplingRequest:
    """sample.py --batch_size=count (or --num_points with --interpolate) with eval.batch_size = ``chunk_size``
    (None: the run's own, 128); that key does not name the output folder."""
    config = None
    if chunk_size is not None:
        config = tiny.get_config()
        config.eval.batch_size = chunk_size
    count_flag = "num_points" if flags.get("interpolate") else "batch_size"
    return SamplingRequest(workdir, config=config, **{count_flag: count}, **flags)


def draw(workdir: str, count: int, chunk_size=None, **flags) -> dict:
    """Run the request in this process as sample.py does; returns the arrays of its samples.npz."""
    request = request_of(workdir, count, chunk_size, **flags)
    check_request(request)
    run_request(request)
    (folder,) = glob.glob(os.path.join(workdir, "sample_outputs", f"{request.mode}_n{count}_*"))
    with np.load(os.path.join(folder, "samples.npz")) as arrays:
        return {name: arrays[name] for name in arrays.files}


def assert_same_arrays(one: dict, other: dict, what) -> None:
    assert list(one) == list(other) == ["samples", "initial", "data_range"], what
    for name in one:
        assert one[name].dtype == other[name].dtype and np.array_equal(one[name], other[name]), (what, name)


def test_the_samples_do_not_depend_on_the_chunk_size(trained):
    """Chunks of 64, one chunk of 2000 and the default 128 give the same samples.npz bit for bit (each image
    draws from its own seeds; the tiny network's arithmetic agrees at these batch sizes), equal to the whole
    request drawn in memory at once."""
    chunked = draw(trained, COUNT, CHUNK)
    assert chunked["samples"].shape == chunked["initial"].shape == (COUNT, 1, 8, 8)
    for chunk_size in (COUNT, None):
        assert_same_arrays(draw(trained, COUNT, chunk_size), chunked, chunk_size)
    model = Model.from_run(trained, 0, torch.device("cpu"))
    whole = sample(model.process, model.net, model.prior, mode="random", count=COUNT, seed=0, shape=model.shape,
                   device="cpu")  # fmt: skip
    assert np.array_equal(whole["samples"].numpy(), chunked["samples"])
    assert np.array_equal(whole["initial"].numpy(), chunked["initial"])


@pytest.mark.parametrize("flags", [{"same_init": True}, {"share_noise": True}, {"interpolate": True}])
def test_every_mode_from_the_prior_is_chunked_alike(trained, flags):
    assert_same_arrays(draw(trained, 150, CHUNK, **flags), draw(trained, 150, 150, **flags), flags)


def test_the_variations_of_an_image_are_drawn_in_chunks_alike(trained, tmp_path):
    """sample.py --image --resample_below in chunks of 3 streams the same variations as the API draws at once
    (variation i from seeds (seed, i)), with the image loaded beside them; the picture shows the first ones."""
    from PIL import Image

    path = str(tmp_path / "digit.png")
    Image.fromarray((np.arange(64, dtype=np.uint8) * 4).reshape(8, 8), mode="L").save(path)
    chunked = draw(trained, 7, 3, image=path, resample_below=2)
    assert sorted(chunked) == ["data_range", "images", "samples"] and chunked["samples"].shape == (7, 1, 8, 8)
    model = Model.from_run(trained, 0, torch.device("cpu"))
    whole = model.resample(model.load_images([path])[0], 7, below=2, seed=model.config.eval.seed)
    np.testing.assert_allclose(chunked["samples"], whole.numpy(), atol=1e-6, rtol=0)
    np.testing.assert_array_equal(chunked["images"], model.load_images([path]).numpy())


def live_tensor_bytes() -> int:
    """The bytes of every tensor storage that the Python objects alive hold (each storage once)."""
    gc.collect()
    storages = {}
    for value in gc.get_objects():
        if issubclass(type(value), torch.Tensor):
            storage = value.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())


def test_the_memory_held_is_bounded_by_the_chunk_not_the_count(trained, monkeypatch):
    """Whenever a chunk is appended to samples.npz, the tensors alive for 2000 samples hold no more than for 64
    (one chunk) but for the recorded states of the pictured first images and chunks in flight (153.6 kB
    measured); holding every sample and initial state of the 2000 would add 1 MB."""
    seen = []
    append = NpzStream.append

    def watched(self, **rows):
        if self.rows["samples"] % (8 * CHUNK) == 0:  # every 8th chunk (a collection takes a while)
            seen.append(live_tensor_bytes())
        append(self, **rows)

    monkeypatch.setattr(NpzStream, "append", watched)
    peaks = {}
    for count in (CHUNK, COUNT):
        seen.clear()
        draw(trained, count, CHUNK)
        assert len(seen) == -(-count // (8 * CHUNK))  # measured at chunks 0, 8, 16, 24: appended one by one
        peaks[count] = max(seen)
    frames = tiny.get_config().model.K + 1  # states of the reverse process recorded for the pictured images
    bound = 3 * CHUNK * 2 * IMAGE_BYTES + PICTURED_IMAGES * frames * IMAGE_BYTES  # 3 chunks in flight: 252 kB
    assert 2 * bound < COUNT * 2 * IMAGE_BYTES  # holding every sample and initial state would exceed it
    assert peaks[COUNT] - peaks[CHUNK] <= bound, (peaks, bound)


def test_a_request_that_cannot_fit_the_disk_is_refused_in_one_line_with_nothing_written(trained, monkeypatch):
    free = 10**9
    monkeypatch.setattr(sampling_request.shutil, "disk_usage", lambda path: types.SimpleNamespace(free=free))
    outputs = os.path.join(trained, "sample_outputs")
    before = sorted(os.listdir(outputs)) if os.path.isdir(outputs) else []
    request = request_of(trained, 3_000_000)
    check_request(request)
    with pytest.raises(ValueError) as error:
        run_request(request)
    message = str(error.value)
    assert re.fullmatch(
        rf"--batch_size=3000000: the samples need about 3\.07 GB on {re.escape(outputs)}, which has 1\.00 GB "
        r"free; allowed: at most (\d+) samples there, or more free space",
        message,
    ), message
    assert sorted(os.listdir(outputs)) == before  # no folder, no temporary
    fits = int(re.search(r"at most (\d+)", message)[1])
    check_disk_space(request_of(trained, fits), outputs, (1, 8, 8))
    with pytest.raises(ValueError, match=f"^--batch_size={fits + 1}: "):
        check_disk_space(request_of(trained, fits + 1), outputs, (1, 8, 8))


def test_a_failed_write_leaves_neither_the_npz_nor_its_temporaries(tmp_path, monkeypatch):
    path = str(tmp_path / "samples.npz")
    with NpzStream(path, {"samples": (3, 2)}, data_range=np.array([0.0, 1.0])) as arrays:
        arrays.append(samples=np.ones((2, 2)))
        with pytest.raises(ValueError, match="do not fit"):
            arrays.append(samples=np.ones((2, 2)))
        with pytest.raises(ValueError, match="2 rows written of 3"):
            arrays.close()
    assert os.listdir(tmp_path) == []

    def full_disk(self, handle):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(NpzStream, "zip_into", full_disk)
    with pytest.raises(RunDirError, match=f"^cannot write {re.escape(path)}: No space left on device; nothing was"):
        with NpzStream(path, {"samples": (1, 2)}) as arrays:
            arrays.append(samples=np.ones((1, 2)))
            arrays.close()
    assert os.listdir(tmp_path) == []


def test_two_processes_write_the_same_samples_npz_as_one(trained):
    """torchrun, 2 processes (gloo): 5 chunks of 64 shared out, rank 0 writes; the npz equals one process's."""
    one = draw(trained, 300, CHUNK)
    (folder,) = glob.glob(os.path.join(trained, "sample_outputs", "random_n300_*"))
    os.remove(os.path.join(folder, "samples.npz"))
    flags = [f"--workdir={trained}", "--batch_size=300", "--config=tests/configs/tiny.py"]
    result = launch("torchrun", [os.path.join(ROOT, "sample.py"), *flags, f"--config.eval.batch_size={CHUNK}"], 300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("300 samples (random)") == 1  # rank 0 alone reports
    with np.load(os.path.join(folder, "samples.npz")) as arrays:
        assert_same_arrays({name: arrays[name] for name in arrays.files}, one, "torchrun")
