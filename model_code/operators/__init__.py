"""Forward degradation operators A_k, k = 0..K, with A_0 = I, registered by short name.

The registry discovers its entries from this package (``model_code.registry``): a new file here with an
``@OPERATORS.register("name")`` class is all it takes (see the README's "Add an operator"). The interface
and shared bases are in ``base.py``.

Build one by name: ``build_operator("heat", image_size=(28, 28), K=100, blur_sigma_min=0.5,
blur_sigma_max=20)``.
"""

from __future__ import annotations

from model_code.operators.base import OPERATORS, DiagonalOperator, Operator

__all__ = ["OPERATORS", "DiagonalOperator", "Operator", "build_operator"]


def build_operator(name: str, **kwargs) -> Operator:
    """Build a registered operator by name; unknown names raise a ValueError listing known ones."""
    return OPERATORS.build(name, **kwargs)
