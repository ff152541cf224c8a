"""Normalizing flows: invertible layers with exact log-determinants (``layers.py``) and the conditional flow of one
level of a pyramid (``level.py``), which hflow's network (``model_code/networks/hflow.py``) stacks."""

from model_code.flows.layers import ActNorm, AffineCoupling, InvertibleConv1x1
from model_code.flows.level import ConditionEncoder, LevelFlow, squeezes

__all__ = ["ActNorm", "AffineCoupling", "ConditionEncoder", "InvertibleConv1x1", "LevelFlow", "squeezes"]
