"""Run by tests/test_distributed_eval.py in 1 or 2 processes: the probability-flow NLL of each test image."""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scripts.config import build  # noqa: E402
from scripts.evaluation.nll_ode import sharded_flow_nll  # noqa: E402
from scripts.runs.trained import load_trained  # noqa: E402
from scripts.runtime import distributed  # noqa: E402


def main(workdir: str, out: str) -> None:
    device = distributed.init(prefer_cuda=False).device
    model = load_trained(workdir, 0, device)
    test = build.build_data(model.config, "test", model.process, uniform_dequantization=True)
    solved = sharded_flow_nll(model, test, 7, rtol=1e-3, atol=1e-3, probes=1, seed=2, batch_size=3, device=device)
    if distributed.is_main():
        torch.save(solved, out)
    distributed.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
