"""Processes: a forward operator composed with a training objective and a reverse step, registered by name.

The registry discovers its entries from this package (``model_code.registry``): a new file here with a
``@PROCESSES.register("name")`` subclass of ``Process`` (the interface, in ``base.py``) is all it takes
(see the README's "Add a process"). ``ihdm.py`` holds inverse heat dissipation, ``gaussian.py`` DDPM and
blurring diffusion, ``cold.py`` Cold Diffusion.
"""

from model_code.processes.base import PROCESSES, Process
from model_code.processes.cold import ColdProcess
from model_code.processes.gaussian import GaussianProcess, cosine_logsnr, cosine_time
from model_code.processes.ihdm import IHDMProcess

__all__ = ["PROCESSES", "ColdProcess", "GaussianProcess", "IHDMProcess", "Process", "cosine_logsnr", "cosine_time"]
