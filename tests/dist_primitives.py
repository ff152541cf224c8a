"""Run under torchrun or mpiexec by tests/test_distributed.py: exercises scripts.runtime.distributed."""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scripts.runtime import distributed  # noqa: E402


def main(out_folder: str) -> None:
    context = distributed.init(prefer_cuda=False)
    total = distributed.all_reduce_sum(torch.tensor([float(context.rank + 1)]))
    gathered = distributed.all_gather_cat(torch.arange(context.rank + 1))
    message = distributed.broadcast_object({"from": context.rank} if context.rank == 0 else None)
    stop = distributed.any_rank(context.rank == context.world_size - 1)
    result = {
        "rank": context.rank,
        "world_size": context.world_size,
        "local_rank": context.local_rank,
        "sum": total.item(),
        "gathered": gathered.tolist(),
        "message": message,
        "stop": stop,
        "blocks": [list(block) for block in distributed.my_blocks(7, 2)],
        "gathered_blocks": distributed.gather_blocks(
            [(block.start, torch.tensor(list(block)) * 10) for block in distributed.my_blocks(7, 2)],
            torch.zeros(0, dtype=torch.int64),
        ).tolist(),
    }
    with open(os.path.join(out_folder, f"rank{context.rank}.json"), "w") as handle:
        json.dump(result, handle)
    distributed.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
