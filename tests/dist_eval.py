"""Run by tests/test_distributed_eval.py in 1 or 2 processes: samples of every mode, ELBO, FID statistics."""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scripts.config import build  # noqa: E402
from scripts.evaluation.elbo import evaluate_elbo  # noqa: E402
from scripts.evaluation.features import build_feature_net, feature_statistics  # noqa: E402
from scripts.evaluation.fid import generated_batches  # noqa: E402
from scripts.evaluation.itd_eval import sharded_nll_estimate  # noqa: E402
from scripts.evaluation.reference_stats import unit_batches  # noqa: E402
from scripts.runs.trained import load_trained  # noqa: E402
from scripts.runtime import distributed  # noqa: E402
from scripts.sampling.imaging import to_unit  # noqa: E402
from scripts.sampling.sampler import MODES, first_images, generate_range, sample_chunks  # noqa: E402


def main(workdir: str, out: str) -> None:
    device = distributed.init(prefer_cuda=False).device
    model = load_trained(workdir, 0, device)
    results = {}
    for mode in MODES:
        chunks = sample_chunks(
            model.process,
            model.net,
            model.prior,
            mode=mode,
            count=5,
            seed=3,
            shape=model.shape,
            device=device,
            chunk_size=2,
            recorded=5,
        )
        drawn = first_images(chunks, 5)
        results[mode] = drawn["samples"]
        results[mode + "_trajectory"] = torch.stack(drawn["trajectory"])
    test = build.build_data(model.config, "test", model.process, uniform_dequantization=True)
    elbo = evaluate_elbo(
        model.process, model.net, model.prior, test, batch_size=4, passes=1, num_test=7, seed=5, device=device
    )
    results["elbo"] = torch.tensor(elbo["nats_per_image"], dtype=torch.float64)
    shrink = lambda z, logsnr: z * torch.sigmoid(-logsnr).sqrt()[:, None, None, None]  # a stand-in eps predictor
    nll = sharded_nll_estimate(lambda labels: shrink, test, 7, 4, 0.0, 2.0, seed=1, batch_size=3, device=device)
    results["nll_itd"], results["nll_itd_logsnr"] = nll["nll"], nll["logsnr"]
    net = build_feature_net("fast_random_conv", device)

    def generate(start, count):
        drawn, _ = generate_range(
            model.process, model.net, model.prior, start=start, count=count, seed=9, shape=model.shape, device=device
        )
        return to_unit(drawn, model.process.data_range)

    for name, batches, total in [
        ("generated", generated_batches(generate, 7, 3), 7),
        ("reference", unit_batches(build.build_data(model.config, "test", model.process), 16), None),
    ]:
        mu, sigma, count = feature_statistics(batches, net, num_images=total, desc=name, progress=False)
        results[name] = (torch.from_numpy(mu), torch.from_numpy(sigma), count)
    if distributed.is_main():
        torch.save(results, out)
    distributed.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
