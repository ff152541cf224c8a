"""sample.py's request (scripts/sampling/request.py): built from every flag, refused before torch is imported,
and named after what changes the samples."""

import ast
import dataclasses
import os
import re
import subprocess
import sys

import pytest
from PIL import Image

from scripts.cli.sampling_flags import SAMPLING_FLAGS
from scripts.runs.rundir import RunDir
from scripts.sampling.request import SamplingRequest, check_flag_values, output_folder
from tests.configs import tiny

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sample_py_flags():
    """The names of the flags sample.py defines (the first argument of each DEFINE_* call, and the shared
    sampling flags where it calls ``sampling_flags.define()``)."""
    tree = ast.parse(open(os.path.join(ROOT, "sample.py")).read())
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)]
    names = {call.args[0].value for call in calls if call.func.attr.startswith("DEFINE_")}
    shared = any(
        call.func.attr == "define" and getattr(call.func.value, "id", "") == "sampling_flags" for call in calls
    )
    return names | (set(SAMPLING_FLAGS) if shared else set())


def test_every_flag_of_sample_py_is_a_field_of_the_request():
    assert sample_py_flags() == {field.name for field in dataclasses.fields(SamplingRequest)}


def test_checking_a_request_imports_no_torch():
    code = "import sys, scripts.sampling.request; assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "flags, mode, count",
    [
        ({}, "random", 9),
        ({"same_init": True, "batch_size": 4}, "same_init", 4),
        ({"interpolate": True, "num_points": 5}, "interpolate", 5),
        ({"interpolate": True, "share_noise": True}, "interpolate_shared_noise", 20),
        ({"image": "a.png", "resample_above": 2, "batch_size": 3}, "resample", 3),
        ({"interpolate": True, "image_a": "a.png", "image_b": "b.png", "num_points": 4}, "interpolate_images", 4),
    ],
)
def test_the_flags_choose_the_mode_and_the_number_of_samples(flags, mode, count):
    request = SamplingRequest(workdir="run", **flags)
    assert (request.mode, request.count) == (mode, count)


def test_a_flag_value_is_refused_only_where_it_counts():
    check_flag_values(SamplingRequest(workdir="run", batch_size=0, interpolate=True))  # --num_points counts there
    with pytest.raises(ValueError, match="^--batch_size=0: an integer >= 1"):
        check_flag_values(SamplingRequest(workdir="run", batch_size=0))


def test_the_folder_name_holds_every_option_given(tmp_path):
    Image.new("L", (8, 8)).save(tmp_path / "a.png")
    image = str(tmp_path / "a.png")
    name = lambda **flags: os.path.basename(output_folder(SamplingRequest(str(tmp_path), **flags), seed=3, step=7))
    assert name() == "random_n9_checkpoint0_step7_seed3"
    options = dict(delta=0.02, eta=0.5, temperature=0.8, noise_temperature=0.0, checkpoint=2)
    assert name(**options) == "random_n9_checkpoint2_step7_seed3_delta0.02_eta0.5_T0.8_noiseT0"
    variations = name(image=image, resample_below=2, batch_size=4)
    assert re.fullmatch(r"resample_n4_checkpoint0_step7_seed3_below2_images-a-[0-9a-f]{8}", variations)
    deterministic = name(interpolate=True, image_a=image, image_b=image, deterministic=True, steps=10, num_points=3)
    assert re.fullmatch(
        r"interpolate_images_n3_checkpoint0_step7_seed3_images-a-a-[0-9a-f]{8}_steps10_deterministic", deterministic
    )


@pytest.mark.parametrize(
    "key, value, named",
    [
        ("model.clip_denoised", False, True),
        ("model.delta", 0.03, True),
        ("eval.seed", 5, True),
        ("model.dropout", 0.3, False),  # acts in training only
        ("eval.batch_size", 3, False),  # every image has its own seed
        ("training.n_iters", 7, False),
    ],
)
def test_a_config_names_the_folder_where_its_sample_changing_keys_differ_from_the_run(tmp_path, key, value, named):
    RunDir(str(tmp_path)).save_config(tiny.get_config())
    config = tiny.get_config()
    group, leaf = key.split(".")
    config[group][leaf] = value
    name = lambda config: os.path.basename(output_folder(SamplingRequest(str(tmp_path), config=config), seed=0, step=1))
    assert ("_config" in name(config)) is named
    assert name(tiny.get_config()) == "random_n9_checkpoint0_step1_seed0"
