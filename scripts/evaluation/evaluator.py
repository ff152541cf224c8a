"""The one evaluator: load a trained run, compute the requested measure, record it.

Each mode is a function ``(request, config, model, device) -> result dict`` with at least
``headline`` (the final line printed). Results go to WORKDIR/evaluation_results/EXPERIMENT/:
``results.json`` ({param_name: {mode: result}}, rewritten atomically) and ``log.txt`` (appended).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict

import ml_collections
import torch

from scripts.api import Model
from scripts.cli.errors import DatasetUnavailable
from scripts.cli.flags import require_writable_folder
from scripts.config import build
from scripts.evaluation.request import EvaluationRequest, check_request
from scripts.evaluation.results import record
from scripts.runs.rundir import RunDir
from scripts.runs.trained import TrainedModel
from scripts.runtime import distributed


def _or(value, default):
    return default if value is None else value


def run_elbo(
    request: EvaluationRequest, config: ml_collections.ConfigDict, model: TrainedModel, device
) -> Dict[str, Any]:
    from scripts.evaluation.elbo import evaluate_elbo, plot_terms

    test_data = build.build_data(config, "test", model.process, uniform_dequantization=True)
    result = evaluate_elbo(
        model.process,
        model.net,
        model.prior,
        test_data,
        batch_size=_or(request.batch_size, config.eval.batch_size),
        passes=_or(request.elbo_passes, config.eval.elbo_passes),
        num_test=_or(request.num_test, config.eval.num_test),
        seed=_or(request.seed, config.eval.seed),
        device=device,
    )
    folder = RunDir(request.workdir).results_folder(request.experiment_name)
    result["plot"] = plot_terms(result, os.path.join(folder, f"elbo_terms_{request.param_name}.png"))
    result["headline"] = (
        f"ELBO: {result['nats_per_image']:.2f} nats/image, {result['bits_per_dim']:.4f} bits/dim "
        f"(8-bit discrete: {result['discrete_bits_per_dim']:.4f} bits/dim)"
    )
    return result


def unit_batches(data, batch_size: int):
    """This process's batches of the dataset's images (all for one process) as floats [B, C, H, W] in
    [0, 1], no augmentation."""
    for indices in distributed.my_blocks(len(data), batch_size):
        yield data.raw_batch(indices).float() / 255.0


def run_fid(
    request: EvaluationRequest, config: ml_collections.ConfigDict, model: TrainedModel, device
) -> Dict[str, Any]:
    """FID of --num_gen samples (image i from seed i) against the reference statistics of the dataset split."""
    from scripts.evaluation import features, fid, reference_stats
    from scripts.sampling.imaging import to_unit
    from scripts.sampling.sampler import generate_range

    feature_net = features.build_feature_net(request.feature_net, device)
    dataset = request.dataset_name_cleanfid or config.data.dataset
    batch_size = _or(request.batch_size, config.eval.batch_size)
    height, width = build.image_size(config)
    resolution = height if height == width else height * 10000 + width
    # statistics of another dataset than the run's can be loaded (or downloaded), never computed from this one
    same_dataset = dataset == config.data.dataset

    def reference_images():
        data = build.build_data(config, request.dataset_split, model.process)
        return len(data), unit_batches(data, batch_size)

    try:
        reference = reference_stats.reference_statistics(
            dataset,
            request.dataset_split,
            resolution,
            feature_net,
            request.stats_dir,
            reference_images if same_dataset else None,
        )
    except DatasetUnavailable as error:
        path = reference_stats.reference_stats_path(
            request.stats_dir, dataset, request.dataset_split, resolution, feature_net.name
        )
        raise DatasetUnavailable(f"reference statistics {path} are missing and cannot be computed: {error}") from None
    seed = _or(request.seed, config.eval.seed)

    def generate(start: int, count: int) -> torch.Tensor:
        samples = generate_range(
            model.process, model.net, model.prior, start=start, count=count, seed=seed, shape=model.shape, device=device
        )
        return to_unit(samples, model.process.data_range)

    value = fid.fid_from_generator(generate, request.num_gen, batch_size, feature_net, reference)
    result = fid.fid_record(value, reference, request.num_gen)
    result["dataset"] = request.dataset_name or config.data.dataset
    result["headline"] = (
        f"FID ({feature_net.name}, {request.num_gen} samples vs {dataset} {request.dataset_split}): {value:.4f}"
    )
    return result


def run_nll_itd(
    request: EvaluationRequest, config: ml_collections.ConfigDict, model: TrainedModel, device
) -> Dict[str, Any]:
    from scripts.evaluation.itd_eval import run_nll_itd as run

    return run(request, config, model, device)


EVALUATIONS: Dict[str, Callable[..., Dict[str, Any]]] = {"fid": run_fid, "elbo": run_elbo, "nll_itd": run_nll_itd}


def evaluate(request: EvaluationRequest) -> Dict[str, Any]:
    """Check the request, load the run, compute ``request.mode`` and record it; returns the result."""
    if request.mode not in EVALUATIONS:
        raise ValueError(f"unknown --mode {request.mode!r}; allowed: {', '.join(EVALUATIONS)}")
    check_request(request)
    RunDir(request.workdir).checkpoint_path(request.checkpoint)  # a missing checkpoint is refused before any work
    results = RunDir(request.workdir).path("evaluation_results", request.experiment_name)
    require_writable_folder("--workdir", request.workdir, results)
    device = distributed.init().device
    model = Model.from_run(
        request.workdir, request.checkpoint, device, config=request.config, delta=request.delta
    ).trained
    config = model.config
    with torch.no_grad():
        result = EVALUATIONS[request.mode](request, config, model, device)
    if distributed.is_main():  # every process computed the combined result; rank 0 records it
        path = record(request, result, model)
        print(f"results: {path}")
        print(result["headline"])
    return result
