"""Periods in minutes of wall time beside the periods in steps (hflow's --checkpoint_every_hours, ...).

``MinutePeriods.due()`` is asked once per step and says which timed actions are due: those whose period has
passed since the action last fell due (or since training started). Rank 0's clock decides and every rank gets
its answer (``distributed.broadcast_object``), so every process acts at the same step; with no period set it
returns at once, without a collective.
"""

from __future__ import annotations

import time
from typing import Callable, Dict, Set

from scripts.runtime import distributed


class MinutePeriods:
    """``minutes``: action name -> its period in minutes (0: never); ``clock()`` in seconds (monotonic)."""

    def __init__(self, minutes: Dict[str, float], clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.seconds = {name: 60.0 * value for name, value in minutes.items() if value > 0}
        start = clock()
        self.last = {name: start for name in self.seconds}

    def due(self) -> Set[str]:
        """The actions due now, the same set on every rank; their periods start again from now."""
        if not self.seconds:
            return set()
        now = self.clock()
        mine = {name for name, period in self.seconds.items() if now - self.last[name] >= period}
        agreed = set(distributed.broadcast_object(sorted(mine)))
        for name in agreed:
            self.last[name] = now
        return agreed
