"""Forward degradation operators A_k, k = 0..K, with A_0 = I, registered by short name.

Every module of this package is imported here, so an operator is registered by being in its
package: a new file with an ``@OPERATORS.register("name")`` class is all it takes (see the README's
"Add an operator"). The interface and shared bases are in ``base.py``.

Build one by name: ``build_operator("heat", image_size=(28, 28), K=100, blur_sigma_min=0.5,
blur_sigma_max=20)``.
"""

from __future__ import annotations

import importlib
import pkgutil

from model_code.operators.base import OPERATORS, DiagonalOperator, Operator

__all__ = ["OPERATORS", "DiagonalOperator", "Operator", "build_operator"]


def _import_operator_modules() -> None:
    """Import every module of this package (sorted by name), which registers its operators."""
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        importlib.import_module(f"{__name__}.{module.name}")


def build_operator(name: str, **kwargs) -> Operator:
    """Build a registered operator by name; unknown names raise a ValueError listing known ones."""
    return OPERATORS.build(name, **kwargs)


_import_operator_modules()
