"""The one evaluator: load a trained run, compute the requested measure, record it.

Each mode is a function ``(request, config, model, device) -> result dict`` with at least
``headline`` (the final line printed). Results go to WORKDIR/evaluation_results/EXPERIMENT/:
``results.json`` ({param_name: {mode: result}}, rewritten atomically) and ``log.txt`` (appended).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict

import ml_collections
import numpy as np
import torch

from model_code.conditioning import num_classes_of
from model_code.precision import NAMES
from scripts.cli.flags import require_writable_folder
from scripts.config import build
from scripts.evaluation.reference_stats import run_reference
from scripts.evaluation.request import SAMPLING_MODES, EvaluationRequest, check_request, sampling_spec
from scripts.evaluation.results import record
from scripts.runs.rundir import RunDir
from scripts.runs.trained import TrainedModel, load_trained
from scripts.runtime import distributed
from scripts.sampling.sampler import check_steps


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


def reference_for(request: EvaluationRequest, config: ml_collections.ConfigDict, model: TrainedModel, feature_net):
    """The reference statistics of the request's dataset split (see ``run_reference``)."""
    return run_reference(
        config,
        lambda: build.build_data(config, request.dataset_split, model.process),
        dataset=request.dataset_name_cleanfid or config.data.dataset,
        split=request.dataset_split,
        feature_net=feature_net,
        stats_dir=request.stats_dir,
        batch_size=_or(request.batch_size, config.eval.batch_size),
    )


def run_fid_ref(
    request: EvaluationRequest, config: ml_collections.ConfigDict, model: TrainedModel, device
) -> Dict[str, Any]:
    """Compute (or find) and cache the reference statistics of the run's dataset split, without generating."""
    from scripts.evaluation import features

    feature_net = features.build_feature_net(request.feature_net, device)
    reference = reference_for(request, config, model, feature_net)
    return {
        "feature_network": reference.network,
        "reference": reference.source,
        "reference_fingerprint": reference.fingerprint,
        "num_images": reference.num_images,
        "headline": f"FID reference statistics ({reference.network}): {reference.source}, "
        f"{reference.num_images} images, fingerprint {reference.fingerprint[:16] or 'none'}",
    }


def run_fid(
    request: EvaluationRequest, config: ml_collections.ConfigDict, model: TrainedModel, device
) -> Dict[str, Any]:
    """FID of --num_gen samples (image i from seed i) against the reference statistics of the dataset split."""
    from scripts.evaluation import features, fid
    from scripts.evaluation.kid import FeatureSample, kid
    from scripts.sampling.imaging import to_unit
    from scripts.sampling.sampler import generate_range

    feature_net = features.build_feature_net(request.feature_net, device)
    dataset = request.dataset_name_cleanfid or config.data.dataset
    reference = reference_for(request, config, model, feature_net)
    seed = _or(request.seed, config.eval.seed)
    batch_size = _or(request.batch_size, config.eval.batch_size)
    spec, spent = sampling_spec(request).for_process(model.process), set()  # the network evaluations each image took

    def seed_set(offset: int):
        """generate(start, count) for image indices offset+start.. (each index is its own seed with ``seed``)."""

        def generate(start: int, count: int) -> torch.Tensor:
            samples, nfe = generate_range(
                model.process,
                model.net,
                model.prior,
                start=offset + start,
                count=count,
                seed=seed,
                shape=model.shape,
                device=device,
                spec=spec,
            )
            spent.add(nfe)
            return to_unit(samples, model.process.data_range)

        return generate

    # seed set s uses image indices s * num_gen .. (s + 1) * num_gen - 1: disjoint sets; KID from the same features
    values, kids = [], []
    for s in range(request.num_seeds):
        sample = FeatureSample(request.num_gen)
        generate = seed_set(s * request.num_gen)
        values.append(
            fid.fid_from_generator(generate, request.num_gen, batch_size, feature_net, reference, sample=sample)
        )
        kids.append(None if reference.features is None else kid(sample.array(), reference.features))
    result = fid.fid_record(float(np.mean(values)), reference, request.num_gen)
    result.update(fid.seed_record(values, kids, seed, request.num_gen))
    result["dataset"] = request.dataset_name or config.data.dataset
    result["steps"] = model.process.K if spec.steps is None else spec.steps
    result.update({key: value for key, value in spec.record().items() if key not in ("steps", "classes")})
    result.update(spec.classes.record(num_classes_of(model.net)), nfe=max(spent))
    result["network_precision"] = NAMES[spec.network_dtype(device, model.process)]  # what the samples ran in
    sampled = f"{spec.sampler}, {result['steps']} steps on the {spec.grid} grid, {result['nfe']} NFE"
    if result["network_precision"] != "float32":
        sampled += f", network in {result['network_precision']}"
    if spec.guidance:
        sampled += f", guidance {spec.guidance:g}"
    how = f" ({sampled})" if request.sampling else ""
    what = f"{feature_net.name}, {request.num_gen} samples{how} vs {dataset} {request.dataset_split}"
    if result["kid_mean"] is not None:  # in the brackets: the last number printed is the FID
        what += f", KID {result['kid_mean']:.6f}"
    result["headline"] = (
        f"FID ({what}): {values[0]:.4f}"
        if len(values) == 1
        else f"FID ({what}, {len(values)} seed sets: {', '.join(f'{v:.4f}' for v in values)}): "
        f"std {np.std(values, ddof=1):.4f}, mean {np.mean(values):.4f}"
    )
    return result


def run_nll_itd(
    request: EvaluationRequest, config: ml_collections.ConfigDict, model: TrainedModel, device
) -> Dict[str, Any]:
    from scripts.evaluation.itd_eval import run_nll_itd as run

    return run(request, config, model, device)


def run_nll_ode(
    request: EvaluationRequest, config: ml_collections.ConfigDict, model: TrainedModel, device
) -> Dict[str, Any]:
    from scripts.evaluation.nll_ode import run_nll_ode as run

    return run(request, config, model, device)


def run_class_accuracy(
    request: EvaluationRequest, config: ml_collections.ConfigDict, model: TrainedModel, device
) -> Dict[str, Any]:
    """The share of --num_gen samples (image i with its label drawn from seed i) that the digit classifier
    classifies as their label."""
    from scripts.evaluation.class_accuracy import run_class_accuracy as run

    seed, batch_size = _or(request.seed, config.eval.seed), _or(request.batch_size, config.eval.batch_size)
    return run(request, config, model, sampling_spec(request).for_process(model.process), seed, batch_size, device)


def run_restore(
    request: EvaluationRequest, config: ml_collections.ConfigDict, model: TrainedModel, device
) -> Dict[str, Any]:
    """Cold Diffusion's table over the test split: RMSE, SSIM and FID of the degraded images, the one-step
    restoration and the reverse process from level --from_level (``scripts.evaluation.restoration``)."""
    from scripts.evaluation import features
    from scripts.evaluation.restoration import check_restore_request
    from scripts.evaluation.restoration import run_restore as run

    level = check_restore_request(request, model, build.data_kind(config))  # before the reference statistics
    feature_net = features.build_feature_net(request.feature_net, device)
    reference = reference_for(request, config, model, feature_net)
    seed, batch_size = _or(request.seed, config.eval.seed), _or(request.batch_size, config.eval.batch_size)
    spec = sampling_spec(request).for_process(model.process)
    return run(
        request,
        config,
        model,
        spec,
        feature_net,
        reference,
        level=level,
        seed=seed,
        batch_size=batch_size,
        device=device,
    )


EVALUATIONS: Dict[str, Callable[..., Dict[str, Any]]] = {
    "fid": run_fid,
    "fid_ref": run_fid_ref,
    "elbo": run_elbo,
    "nll_itd": run_nll_itd,
    "nll_ode": run_nll_ode,
    "class_accuracy": run_class_accuracy,
    "restore": run_restore,
}


def evaluate(request: EvaluationRequest) -> Dict[str, Any]:
    """Check the request, load the run, compute ``request.mode`` and record it; returns the result."""
    if request.mode not in EVALUATIONS:
        raise ValueError(f"unknown --mode {request.mode!r}; allowed: {', '.join(EVALUATIONS)}")
    check_request(request)
    RunDir(request.workdir).checkpoint_path(request.checkpoint)  # a missing checkpoint is refused before any work
    device = distributed.init().device
    sampling_spec(request).network_dtype(device)  # a precision the device cannot run: refused before any write
    results = RunDir(request.workdir).path("evaluation_results", request.experiment_name)
    require_writable_folder("--workdir", request.workdir, results)
    settings = {} if request.delta is None else {"delta": request.delta}
    model = load_trained(request.workdir, request.checkpoint, device, config=request.config, process_settings=settings)
    if request.mode in SAMPLING_MODES:  # the sampler, its steps and classes can be checked once the model is known
        check_steps(request.sampling.get("steps"), model.process)
        spec = sampling_spec(request)
        spec.check_classes(num_classes_of(model.net))
        spec.levels(model.process.denoiser(model.net), model.process.name)
        spec.network_dtype(device, model.process)
    config = model.config
    with torch.no_grad():
        result = EVALUATIONS[request.mode](request, config, model, device)
    if distributed.is_main():  # every process computed the combined result; rank 0 records it
        path = record(request, result, model)
        print(f"results: {path}")
        for line in result.get("table", ()):  # a mode's table of numbers, when it has one
            print(line)
        print(result["headline"])
    return result
