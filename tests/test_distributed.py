"""The distributed context under torchrun and mpiexec (gloo, 2 processes on the CPU)."""

import json
import os

import pytest

from scripts.runtime import distributed
from tests.helpers import ROOT
from tests.launchers import launch


@pytest.mark.parametrize("launcher", ["torchrun", "mpiexec"])
def test_ranks_reduce_gather_broadcast_and_shard(launcher, tmp_path):
    result = launch(launcher, [os.path.join(ROOT, "tests", "dist_primitives.py"), str(tmp_path)])
    assert result.returncode == 0, result.stderr[-2000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for r, values in enumerate(ranks):
        assert values["rank"] == r and values["world_size"] == 2 and values["local_rank"] == r
        assert values["sum"] == 3.0  # 1 + 2
        assert values["gathered"] == [0, 0, 1]
        assert values["message"] == {"from": 0}
        assert values["stop"] is True  # raised on the last rank only
    assert ranks[0]["blocks"] == [[0, 1], [4, 5]] and ranks[1]["blocks"] == [[2, 3], [6]]
    assert ranks[0]["gathered_blocks"] == ranks[1]["gathered_blocks"] == [0, 10, 20, 30, 40, 50, 60]


def test_a_single_process_has_no_group():
    context = distributed.init(prefer_cuda=False)
    assert (context.rank, context.world_size) == (0, 1)
    assert not distributed.active() and distributed.is_main()
    assert distributed.my_blocks(5, 2) == [range(0, 2), range(2, 4), range(4, 5)]
    assert distributed.any_rank(False) is False


def test_shutdown_frees_a_ddp_wrapper_that_only_a_reference_cycle_keeps_alive(tmp_path):
    """What the trainer leaves at exit: a DDP wrapper reachable only through a cycle must be freed while the
    process group and the interpreter are alive, not during finalization."""
    import gc

    import torch
    import torch.distributed as dist

    def ddp_wrappers_alive():
        return sum(type(o) is torch.nn.parallel.DistributedDataParallel for o in gc.get_objects())

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    gc.disable()  # no automatic collection between the checks
    try:
        holder = {"ddp": torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(2, 2))}
        holder["self"] = holder
        del holder
        assert ddp_wrappers_alive() == 1
        distributed.shutdown()
        assert ddp_wrappers_alive() == 0 and not dist.is_initialized()
    finally:
        gc.enable()
        if dist.is_initialized():
            dist.destroy_process_group()
