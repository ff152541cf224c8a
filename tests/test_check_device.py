"""python -m scripts.check_device on the CPU: the CPU subset runs and passes with real numbers, the CUDA-only
checks are skipped, the report holds every check, bad flags are one line, and a check can fail."""

import json

import pytest
import torch

from scripts.training.device_checks import CUDA_ABSENT, Check, autocast_check, device_checks, make_subject, run_check
from tests.configs import tiny
from tests.helpers import run_command

CUDA_ONLY = {"autocast_fp16", "tf32_convolutions_only", "pinned_copies", "nccl_group"}
SKIPPED_HERE = CUDA_ABSENT if not torch.cuda.is_available() else "--device=cpu"


def test_the_cpu_subset_passes_and_the_report_holds_every_check(tmp_path):
    out = tmp_path / "report.json"
    result = run_command("-m", "scripts.check_device", "--device=cpu", f"--out={out}", "--steps=2")
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    verdicts = {v["name"]: v for v in report["checks"]}
    assert list(verdicts) == [check.name for check in device_checks(1, compile_on_cpu=False)]
    for name, v in verdicts.items():
        expected = "skipped" if name in CUDA_ONLY | {"compile"} else "pass"
        assert v["status"] == expected, v
        assert name not in CUDA_ONLY or v["detail"] == SKIPPED_HERE
    training = report["training"]
    assert training == verdicts["training"]["values"] and training["steps"] == 2
    assert training["images_per_second"] > 0 and training["peak_memory_bytes"] > 0 and 0 < training["mfu"] < 1
    assert report["device"]["type"] == "cpu" and report["versions"]["torch"] == torch.__version__
    lines = result.stdout.strip().splitlines()
    assert lines[-1].startswith(f"{len(verdicts)} checks: 7 passed, 0 failed, 5 skipped")
    assert [line.split()[:2] for line in lines[-1 - len(verdicts) : -1]] == [
        [v["status"], name] for name, v in verdicts.items()
    ]


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--device=tpu", "error: --device=tpu: cpu or cuda"),
        ("--steps=0", "error: --steps=0: an integer >= 1"),
        pytest.param(
            "--device=cuda",
            "error: --device=cuda: CUDA is absent",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present"),
        ),
    ],
)
def test_a_bad_flag_is_one_line(tmp_path, flag, message):
    result = run_command("-m", "scripts.check_device", flag, f"--out={tmp_path / 'report.json'}")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(message) and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "report.json").exists()


@pytest.fixture
def subject():
    return make_subject(tiny.get_config(), torch.device("cpu"))


def test_autocast_check_fails_for_an_operator_that_casts_to_half(subject, monkeypatch):
    assert autocast_check(subject, "bf16")["status"] == "pass"
    forward = subject.process.operator.forward
    monkeypatch.setattr(subject.process.operator, "forward", lambda x, k: forward(x, k).half())
    verdict = run_check(Check("autocast_bf16", lambda s: autocast_check(s, "bf16")), subject)
    assert verdict["status"] == "fail" and "torch.float16" in verdict["detail"], verdict


def test_a_check_that_raises_fails_with_its_error(subject):
    def broken(subject):
        raise RuntimeError("no kernel for this device\nsecond line")

    verdict = run_check(Check("broken", broken), subject)
    assert verdict == {"name": "broken", "status": "fail", "detail": "raised RuntimeError: no kernel for this device"}
