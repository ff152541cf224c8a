"""sample.py's work: draw what a checked SamplingRequest asks from its run, write the outputs, print their paths.

It draws through the Python API (scripts/api.py), which uses scripts/sampling/, so it lives beside the API rather
than in that folder.

Draws from the prior are made in chunks of eval.batch_size images, streamed to samples.npz, so the memory is
bounded by the chunk, not by the number of samples. Under torchrun or mpiexec the chunks are shared out over the
processes (the same samples for any number of them) and rank 0 writes the outputs; the exact latents of input
images are computed on one process, so rank 0 alone does that work.
"""

from __future__ import annotations

import json
import os
from typing import Dict, Iterable, Iterator, List

import numpy as np
import torch

from scripts.api import Model
from scripts.config import build
from scripts.evaluation.image_metrics import check_ssim_size
from scripts.evaluation.restoration import fidelity, in_unit_range
from scripts.runtime import distributed
from scripts.sampling.image_files import check_image_shape
from scripts.sampling.imaging import save_gif, save_mp4, save_png, to_unit
from scripts.sampling.npz_stream import NpzStream
from scripts.sampling.pictures import pictured_count, save_arrays, scatter_reference, write_sample_pictures
from scripts.sampling.request import (
    SamplingRequest,
    check_disk_space,
    check_resample_level,
    output_folder,
    sample_array_shapes,
    sampling_options,
    sampling_spec,
)
from scripts.sampling.restoration import check_restoration
from scripts.sampling.sampler import Chunk, check_steps, first_images, sample_chunks
from scripts.storage.files import write_atomic


def run_request(request: SamplingRequest) -> None:
    """Load the request's run and draw: from its prior, or through the exact latents of input images."""
    device = distributed.init().device
    model = Model.from_run(request.workdir, request.checkpoint, device, config=request.config, delta=request.delta)
    check_steps(request.steps, model.process)  # K is known once the model is loaded
    request = request.for_classes(model.num_classes)
    spec = sampling_spec(request)
    spec.check_classes(model.num_classes)
    spec.network_dtype(device, model.process)  # a precision the device or the model cannot run: refused here
    if not request.images:  # the sampler, its grid and steps can be checked once the model is known
        spec.levels(model.process.denoiser(model.net), model.process.name)
    seed = model.config.eval.seed if request.seed is None else request.seed
    if request.images:
        draw_from_images(model, request, seed)
    else:
        draw_from_the_prior(model, request, seed)


def draw_from_the_prior(model: Model, request: SamplingRequest, seed: int) -> None:
    """Samples, their initial states u_K and the reverse process in the output folder: samples.npz streamed
    chunk by chunk, the pictures of the first samples (``pictured_count``); refused first, in one line, if
    samples.npz cannot fit the free disk space."""
    folder = output_folder(request, seed=seed, step=model.step)
    distributed.on_main(lambda: check_disk_space(request, folder, model.shape))
    pictured = pictured_count(request.count, points=build.data_kind(model.config) == "points")
    chunks = sample_chunks(
        model.process,
        model.net,
        model.prior,
        mode=request.mode,
        count=request.count,
        seed=seed,
        shape=model.shape,
        device=model.device,
        chunk_size=model.config.eval.batch_size,
        recorded=pictured,
        progress=distributed.is_main(),
        spec=sampling_spec(request),
    )
    if not distributed.is_main():  # rank 0 writes what every process computed
        for _ in chunks:  # each chunk is a round that every process takes part in
            pass
        return
    shapes = sample_array_shapes(request.count, model.shape)
    small = {"data_range": np.array(model.process.data_range), **sample_labels(model, request, seed)}
    with NpzStream(os.path.join(folder, "samples.npz"), shapes, **small) as arrays:
        out = first_images(appended(chunks, arrays), pictured)
        npz = arrays.close()
    background = scatter_background(model)
    written = write_sample_pictures(folder, out, request.mode, model.process.data_range, background, request.per_class)
    written += write_video(request, folder, to_unit(out["samples"], model.process.data_range))
    classes = classes_said(request, model)
    what = f"{request.count} samples ({request.mode}{classes}) in {out['nfe']} network evaluations each"
    print_written(what, model, written + [npz])


def sample_labels(model: Model, request: SamplingRequest, seed: int) -> Dict[str, np.ndarray]:
    """{"labels": int64 [count]}, the class of each sample of a class-conditional model (for samples.npz); {} for
    an unconditional one."""
    labels = sampling_spec(request).labels(range(request.count), seed, model.num_classes)
    return {} if labels is None else {"labels": labels.numpy()}


def classes_said(request: SamplingRequest, model: Model) -> str:
    """How the samples' classes were chosen, for the printed summary ('' for an unconditional model)."""
    if model.num_classes == 0:
        return ""
    spec = sampling_spec(request)
    said = f"; class labels {spec.classes.record(model.num_classes)['labels']}"
    if request.per_class:
        said += f", {request.per_class} each"
    return said + (f", guidance {spec.guidance:g}" if spec.guidance else "")


def appended(chunks: Iterable[Chunk], arrays: NpzStream) -> Iterator[Chunk]:
    """``chunks``, each appended to ``arrays`` on its way."""
    for chunk in chunks:
        arrays.append(samples=chunk.samples.numpy(), initial=chunk.initial.numpy())
        yield chunk


def scatter_background(model: Model):
    """For 2D data, the points [M, 2] its scatter plots are drawn over (from the test split: the training set is
    not built); None for images."""
    if build.data_kind(model.config) != "points":
        return None
    return scatter_reference(build.build_data(model.config, "test", model.process))


def draw_from_images(model: Model, request: SamplingRequest, seed: int) -> None:
    """Interpolation between, or variations of, the input images through their exact latents, or their
    restoration (rank 0 alone)."""
    if request.mode == "resample":
        check_resample_level(request, model.process.K)
    level = check_restore_request(request, model) if request.mode == "restore" else None
    if not distributed.is_main():
        return
    folder = output_folder(request, seed=seed, step=model.step)
    loaded = model.load_images(request.images)
    if request.mode == "restore":
        write_restoration(model, request, loaded, level, seed, folder)
        return
    if request.mode == "resample":
        write_variations(model, request, loaded, seed, folder)
        return
    samples, written = write_interpolation(model, request, loaded, seed, folder)
    written.append(save_arrays(folder, model.process.data_range, samples=samples, images=loaded))
    print_written(f"{len(samples)} samples ({request.mode} of {', '.join(request.images)})", model, written)


def write_interpolation(model: Model, request: SamplingRequest, loaded: torch.Tensor, seed: int, folder: str):
    """interpolation.png (a strip) and interpolation.gif of --num_points images between the two loaded ones
    [2, C, H, W]; returns (the images [N, C, H, W], the paths written)."""
    samples = interpolate_images(model, request, loaded, seed)
    unit = lambda x: to_unit(x, model.process.data_range)
    written = [
        save_png(os.path.join(folder, "interpolation.png"), unit(samples), len(samples)),
        save_gif(os.path.join(folder, "interpolation.gif"), [unit(x[None]) for x in samples], 1),
    ]
    return samples, written + write_video(request, folder, unit(samples))


def write_video(request: SamplingRequest, folder: str, frames: torch.Tensor) -> List[str]:
    """With --video, interpolation.mp4 of the frames [N, C, H, W] in [0, 1] at --fps (its path in a list)."""
    if not request.video:
        return []
    return [save_mp4(os.path.join(folder, "interpolation.mp4"), [frame[None] for frame in frames], request.fps)]


def interpolate_images(model: Model, request: SamplingRequest, loaded: torch.Tensor, seed: int) -> torch.Tensor:
    """[N, C, H, W] between the two loaded images [2, C, H, W]: through their exact latents, or with
    --deterministic through their deterministic latents, whose reconstruction errors are printed."""
    if not request.deterministic:
        return model.interpolate(loaded[0], loaded[1], num_points=request.count, seed=seed)
    spec = sampling_spec(request, default_sampler="ddim")
    settings = dict(grid=spec.grid, **spec.settings())
    samples, errors = model.interpolate_deterministic(
        loaded[0], loaded[1], num_points=request.count, steps=spec.steps, sampler=spec.sampler, **settings
    )
    listed = ", ".join(f"{path} {error:.2e}" for path, error in zip(request.images, errors))
    data_range = model.process.data_range
    print(f"reconstruction error of the deterministic latents (RMS over pixels, data range {data_range}): {listed}")
    return samples


def write_variations(model: Model, request: SamplingRequest, loaded: torch.Tensor, seed: int, folder: str) -> None:
    """--batch_size variations of the loaded image [1, C, H, W], drawn in chunks of eval.batch_size and streamed to
    samples.npz (``samples``, and the ``images`` loaded), so the memory is bounded by the chunk; samples.png shows
    the image decoded from its own latent, then the first variations. Refused first, in one line, if samples.npz
    cannot fit the free disk space."""
    check_disk_space(request, folder, model.shape)
    chunk, data_range = model.config.eval.batch_size, model.process.data_range
    shown = pictured_count(request.count, points=False)
    first = []
    small = {"images": loaded.cpu().numpy(), "data_range": np.array(data_range)}
    shapes = sample_array_shapes(request.count, model.shape, request.mode)
    with NpzStream(os.path.join(folder, "samples.npz"), shapes, **small) as arrays:
        for start in range(0, request.count, chunk):
            count = min(chunk, request.count - start)
            samples = model.resample(loaded[0], count, seed=seed, start=start, **request.resample_level)
            arrays.append(samples=samples.cpu().numpy())
            first.append(samples[: max(0, shown - start)].cpu())
        npz = arrays.close()
    original = model.decode(model.encode(loaded[:1], seed)).cpu()
    tiles = to_unit(torch.cat([original, *first]), data_range)
    written = [save_png(os.path.join(folder, "samples.png"), tiles), npz]
    print_written(f"{request.count} samples (resample of {request.images[0]})", model, written)


def check_restore_request(request: SamplingRequest, model: Model) -> int:
    """The level of a restoration (--from_level, default K), refused in one line unless the model restores, the
    level lies in 1..K and each image has the model's channels (and, with --degraded, its size)."""
    level = check_restoration(model.process, build.data_kind(model.config), request.from_level)
    for path in request.images:
        check_image_shape(path, model.shape, exact_size=request.degraded)
    if not request.degraded:  # the metrics against the originals
        check_ssim_size(model.shape[1:])
    return level


def write_restoration(
    model: Model, request: SamplingRequest, loaded: torch.Tensor, level: int, seed: int, folder: str
) -> None:
    """restoration.png, one row per image: the degraded input, the one-step estimate, the restoration and (unless
    --degraded) the original; samples.npz (those arrays); and, against the originals, metrics.json (RMSE and SSIM
    per image in [0, 1]), printed too."""
    data_range = model.process.data_range
    out = model.restore(loaded, level, seed=seed, degraded=request.degraded, **sampling_options(request))
    columns = [out["degraded"], out["direct"], out["restored"]] + ([] if request.degraded else [loaded])
    tiles = to_unit(torch.stack(columns, dim=1).flatten(0, 1), data_range).clamp(0, 1)
    written = [save_png(os.path.join(folder, "restoration.png"), tiles, nrow=len(columns))]
    arrays = {name: out[name] for name in ("degraded", "direct", "restored")}
    written.append(save_arrays(folder, data_range, images=loaded, **arrays))
    said = f"{len(loaded)} restorations from level {level} ({out['nfe']} network evaluations each)"
    if not request.degraded:
        metrics = restoration_metrics(out, loaded, data_range, request.images)
        path = os.path.join(folder, "metrics.json")
        write_atomic(path, json.dumps({"from_level": level, "images": metrics}, indent=1).encode())
        written.append(path)
        for row in metrics:
            print(f"{row['image']}: " + ", ".join(f"{key} {value:.4f}" for key, value in row.items() if key != "image"))
    print_written(said, model, written)


def restoration_metrics(out: Dict[str, torch.Tensor], originals: torch.Tensor, data_range, paths: List[str]):
    """Per image: {'image': path, 'rmse_degraded', 'ssim_degraded', 'rmse_direct', ..., 'ssim_restored'}, each
    against the original, in [0, 1] (``fidelity``)."""
    scores = fidelity(in_unit_range(out, data_range), to_unit(originals, data_range))
    return [
        {"image": path, **{key: float(values[i]) for key, values in scores.items()}} for i, path in enumerate(paths)
    ]


def print_written(what: str, model: Model, written: List[str]) -> None:
    print(f"{what} from {model.checkpoint_path} (step {model.step}):")
    for path in written:
        print(f"  {path}")
