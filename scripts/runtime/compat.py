"""Import torchvision where its compiled operators cannot load.

torchvision 0.28 beside the CPU build of torch 2.13 fails at import with
``RuntimeError: operator torchvision::nms does not exist``: its C++ ops were built for
CUDA. Its pure-Python parts (datasets, transforms, utils), which are all this project
uses, work once the two operator schemas that its import registers fake kernels for
exist. The workaround is applied only when the normal import fails.
"""

import importlib
import sys

_OP_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_schema_library = None  # kept alive: dropping the Library object unregisters the schemas


def import_torchvision():
    """Return the ``torchvision`` module, defining its missing op schemas if needed."""
    global _schema_library
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as error:
        if "torchvision::nms" not in str(error):
            raise
    import torch

    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    _schema_library = torch.library.Library("torchvision", "DEF")
    for schema in _OP_SCHEMAS:
        _schema_library.define(schema)
    return importlib.import_module("torchvision")
