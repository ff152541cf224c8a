import os
import signal
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# A suite started in the background of a shell without job control inherits SIGINT ignored (and hands it on to
# every command it launches); the Ctrl-C tests need Python's own handler, which an interactive run or CI has.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def float64():
    """torch's default dtype float64 for the test (closed forms and re-derivations compared at tight tolerances)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)
