"""The distributed context: the one module that knows ranks, world size and the local device.

Launchers it recognises, in this order:

- torchrun (one or several machines): ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK`` and the rendezvous
  address are in the environment; the process group initialises from it (``env://``).
- mpiexec / mpirun / srun --mpi (clusters that launch with MPI): rank and world size come from
  mpi4py's ``COMM_WORLD``, the local rank from a shared-memory split of it; rank 0 picks the
  rendezvous address (its host name, or ``MASTER_ADDR`` if set) and a free port (or ``MASTER_PORT``)
  and broadcasts them.
- anything else (plain ``python train.py``): a single process, no process group.

NCCL on CUDA, gloo on CPU; each rank computes on ``cuda:LOCAL_RANK``. Control messages (stop
requests) travel through a gloo group on the CPU, so they never synchronise the GPU stream.
Everything else asks this module: ``rank()``, ``world_size()``, ``is_main()``, ``device()``,
``barrier()``, ``all_reduce_sum()``, ``broadcast_object()``, ``any_rank()``, ``my_blocks()``, ``block_rounds()``.
"""

from __future__ import annotations

import datetime
import gc
import os
import socket
from dataclasses import dataclass
from typing import Any, Callable, Iterator, List, Optional, Tuple

import torch
import torch.distributed as dist

MPI_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE")
# how gloo and NCCL word a collective that failed because another process of the group died or hung up
PEER_LOST_MARKERS = (
    "Connection reset by peer",
    "Connection closed by peer",
    "Broken pipe",
    "remote process exited",
    "NCCL communicator was aborted",
)


@dataclass
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    control_group: Any = None  # gloo group for CPU-side flags (None: the default group is gloo, or no group)


_context: Optional[Context] = None


def _launched_by_mpi() -> bool:
    return any(int(os.environ.get(name, "1")) > 1 for name in MPI_SIZE_VARIABLES)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("", 0))
        return probe.getsockname()[1]


def _mpi_rendezvous() -> tuple[int, int, int, str]:
    """(rank, world size, local rank, tcp:// address) from mpi4py, rank 0 choosing the address."""
    from mpi4py import MPI

    world = MPI.COMM_WORLD
    local_rank = world.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()
    address = None
    if world.Get_rank() == 0:
        host = os.environ.get("MASTER_ADDR") or socket.gethostbyname(socket.gethostname())
        port = int(os.environ.get("MASTER_PORT") or _free_port())
        address = f"tcp://{host}:{port}"
    return world.Get_rank(), world.Get_size(), local_rank, world.bcast(address, root=0)


def init(prefer_cuda: bool = True, timeout_minutes: float = 30) -> Context:
    """Initialise once (later calls return the same context); see the module docstring for launchers."""
    global _context
    if _context is not None:
        return _context
    use_cuda = prefer_cuda and torch.cuda.is_available()
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local_rank, init_method = int(os.environ.get("LOCAL_RANK", "0")), "env://"
    elif _launched_by_mpi():
        rank, size, local_rank, init_method = _mpi_rendezvous()
    else:
        _context = Context(device=torch.device("cuda" if use_cuda else "cpu"))
        return _context
    device = torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    timeout = datetime.timedelta(minutes=timeout_minutes)
    backend = "nccl" if use_cuda else "gloo"
    dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=size, timeout=timeout)
    control = dist.new_group(backend="gloo", timeout=timeout) if backend != "gloo" else None
    _context = Context(rank, size, local_rank, device, control)
    return _context


def shutdown() -> None:
    """Tear the process group down (no-op for a single process).

    Unreachable objects are freed first: the trainer's DistributedDataParallel wrapper sits in reference
    cycles, so without this its reducer (which holds the process group and gloo work) is freed during
    interpreter finalization, where it can abort the process ("terminate called without an active
    exception", seen once in about 45 two-process runs)."""
    global _context
    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()
    _context = None


def context() -> Context:
    return _context if _context is not None else Context()


def rank() -> int:
    return context().rank


def world_size() -> int:
    return context().world_size


def is_main() -> bool:
    return context().rank == 0


def device() -> torch.device:
    return context().device


def active() -> bool:
    return context().world_size > 1


def peer_lost(error: BaseException) -> Optional[str]:
    """One line saying which process was lost, if ``error`` is a collective that failed because another process of
    the run died or hung up (gloo's or NCCL's words for it); None for any other error."""
    if _context is None or not active() or not isinstance(error, RuntimeError):
        return None
    reason = next((marker for marker in PEER_LOST_MARKERS if marker in str(error)), None)
    if reason is None:
        return None
    others = [other for other in range(world_size()) if other != rank()]
    lost = f"rank {others[0]}" if len(others) == 1 else f"one of ranks {', '.join(map(str, others))}"
    return (
        f"rank {rank()} of {world_size()}: {lost} stopped or lost its connection ({reason}), so this one stops too; "
        "the files already written are intact: run the same command again (training resumes from its checkpoint)"
    )


def barrier() -> None:
    if active():
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over ranks in place and return it (unchanged for a single process)."""
    if active():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_cat(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate each rank's ``tensor`` [n_r, ...] along dim 0 in rank order (sizes may differ)."""
    if not active():
        return tensor
    parts = [None] * world_size()
    dist.all_gather_object(parts, tensor.cpu())
    return torch.cat(parts).to(tensor.device)


def broadcast_object(value: Any, source: int = 0) -> Any:
    """Rank ``source``'s ``value`` on every rank."""
    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=source, group=context().control_group)
    return box[0]


def max_over_ranks(value: int) -> int:
    """The largest of every rank's integer ``value``, on every rank (CPU-side; no GPU synchronisation)."""
    if not active():
        return value
    box = torch.tensor([int(value)], dtype=torch.int64)
    dist.all_reduce(box, op=dist.ReduceOp.MAX, group=context().control_group)
    return int(box.item())


def any_rank(flag: bool) -> bool:
    """True on every rank if ``flag`` is true on any rank."""
    return bool(max_over_ranks(int(flag)))


def on_main(function: Callable[[], Any]) -> Any:
    """Run ``function`` on rank 0 alone and return its result on every rank; an exception it raises is
    raised on every rank, so no rank waits for a partner that has stopped."""
    outcome: Tuple[bool, Any] = (True, None)
    if is_main():
        try:
            outcome = (True, function())
        except Exception as error:  # re-raised below, on every rank
            outcome = (False, error)
    ok, value = broadcast_object(outcome)
    if not ok:
        raise value
    return value


def gather_objects(value: Any) -> List[Any]:
    """Every rank's ``value``, in rank order, on every rank."""
    if not active():
        return [value]
    values = [None] * world_size()
    dist.all_gather_object(values, value, group=context().control_group)
    return values


def my_blocks(count: int, block_size: int) -> List[range]:
    """This process's blocks of items 0..count-1: block i = [i * block_size, (i + 1) * block_size), handed
    out round-robin (rank r takes blocks r, r + W, ...). Work is shared by whole batches, so every batch
    is computed exactly as a single process computes it and results are bit-identical for any W."""
    return [block for block in block_rounds(count, block_size) if block is not None]


def block_rounds(count: int, block_size: int) -> Iterator[Optional[range]]:
    """This process's block of each round of ``my_blocks`` (round j: block j * W + rank), or None in a last
    round without one for it; every process gets the same number of rounds. Lazy: a round costs no memory
    before it comes, whatever the count."""
    for first in range(0, count, block_size * world_size()):
        start = first + rank() * block_size
        yield range(start, min(start + block_size, count)) if start < count else None


def gather_blocks(parts: List[Tuple[int, torch.Tensor]], like: torch.Tensor) -> torch.Tensor:
    """Every process's (start, rows) parts, concatenated in item order, on every process; ``like`` gives
    the shape, dtype and device of an empty result."""
    everything = [
        part for rank_parts in gather_objects([(start, rows.cpu()) for start, rows in parts]) for part in rank_parts
    ]
    if not everything:
        return like[:0]
    return torch.cat([rows for _, rows in sorted(everything, key=lambda part: part[0])]).to(like.device)
