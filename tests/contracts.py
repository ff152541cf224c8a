"""What the registry contracts share (tests/test_contract_*.py).

Each registry has one contract class that every registered entry passes, as the diffusers schedulers
share one test class: the contract's module declares, for each registered name, only the entry's small
config, and ``check_declared`` fails when an entry is registered without one (so a new entry cannot
escape the contract) or a declaration names nothing registered.
"""

import io
from typing import Mapping

import torch

from model_code.registry import Registry


def check_declared(registry: Registry, declared: Mapping[str, object], where: str) -> None:
    """Every entry of ``registry`` has a declaration in ``declared`` (the dict in module ``where``), and back."""
    missing = sorted(set(registry.names()) - set(declared))
    unknown = sorted(set(declared) - set(registry.names()))
    assert not missing, f"{registry.kind} entries without a contract config: {missing}; declare them in {where}"
    assert not unknown, f"{where} declares {unknown}, which are not registered {registry.kind}s"


def state_round_trip(module: torch.nn.Module, fresh: torch.nn.Module) -> torch.nn.Module:
    """``fresh`` after loading ``module``'s state dict through bytes, as a checkpoint stores it (weights only)."""
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    buffer.seek(0)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    return fresh
