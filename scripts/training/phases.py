"""Time a training step by phase, for scripts.benchmark_train.

The trainer wraps each phase of its step in ``timer.phase(name)``. In training the timer is
``NO_TIMER``, whose phases do nothing (no synchronisation). A ``PhaseTimer`` synchronises the
device at the edges of every phase and keeps exclusive times: a phase nested inside another
(the network's forward pass inside the process's loss) is subtracted from its parent.
"""

from __future__ import annotations

import contextlib
import time
from typing import Dict, Iterator, List, Optional

import torch


class NoTimer:
    """Phases that cost nothing: the trainer's default."""

    _nothing = contextlib.nullcontext()

    def phase(self, name: str) -> contextlib.AbstractContextManager:
        return self._nothing


NO_TIMER = NoTimer()


class PhaseTimer:
    """Exclusive wall-clock seconds per phase name, with the device synchronised at every edge."""

    def __init__(self, device: torch.device):
        self.device = device
        self.seconds: Dict[str, float] = {}
        self._child_seconds: List[float] = []  # per open phase: time spent in phases nested inside it

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self.synchronize()
        start = time.perf_counter()
        self._child_seconds.append(0.0)
        try:
            yield
        finally:
            self.synchronize()
            elapsed = time.perf_counter() - start
            nested = self._child_seconds.pop()
            self.seconds[name] = self.seconds.get(name, 0.0) + elapsed - nested
            if self._child_seconds:
                self._child_seconds[-1] += elapsed

    def total(self) -> float:
        return sum(self.seconds.values())


class TimedNetwork:
    """Calls ``network(x, time, labels=None)`` inside ``timer.phase(name)``: the forward pass as its own phase."""

    def __init__(self, network, timer: PhaseTimer, name: str = "network forward"):
        self.network, self.timer, self.name = network, timer, name

    def __call__(self, x: torch.Tensor, time: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        with self.timer.phase(self.name):
            return self.network(x, time) if labels is None else self.network(x, time, labels)
