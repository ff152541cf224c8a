"""Launching a script in 2 processes (torchrun, mpiexec) or one (python), one thread each, for the
distributed tests."""

import os
import shutil
import subprocess
import sys

import pytest

from tests.helpers import ROOT

BIN = os.path.dirname(sys.executable)


def one_thread_env():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return env


def launch_command(launcher, script_args):
    """The command line that runs ``python SCRIPT_ARGS`` in 2 processes ("python": in one)."""
    if launcher == "python":
        return [sys.executable, *script_args]
    if launcher == "torchrun":
        return [os.path.join(BIN, "torchrun"), "--standalone", "--nproc_per_node=2", *script_args]
    mpiexec = shutil.which("mpiexec", path=BIN) or shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("mpiexec is not installed (requirements.txt installs the mpich wheel)")
    return [mpiexec, "-n", "2", sys.executable, *script_args]


def launch(launcher, script_args, timeout=120):
    command = launch_command(launcher, script_args)
    return subprocess.run(command, cwd=ROOT, env=one_thread_env(), capture_output=True, text=True, timeout=timeout)
