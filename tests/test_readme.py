"""The README's front door stays true: its one-line Quickstart and Tests commands, CI, config paths, and its Python
API examples, run verbatim (the second against the shipped pretrained/quickstart model)."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = open(os.path.join(ROOT, "README.md")).read()


def section(heading: str) -> str:
    return README.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def blocks_after(heading: str, language: str = "bash") -> list:
    return [block.strip() for block in re.findall(rf"```{language}\n(.*?)```", section(heading), re.S)]


def first_block_after(heading: str) -> str:
    return re.search(r"```(?:bash)?\n(.*?)```", section(heading), re.S).group(1).strip()


def test_quickstart_samples_the_shipped_model_then_trains_it_in_one_command():
    blocks = blocks_after("Quickstart")
    use, train = blocks[0], next(block for block in blocks if "train.py" in block)
    assert "\n" not in use and "\n" not in train
    assert "pip install -r requirements.txt" in use and "sample.py --workdir pretrained/quickstart" in use
    assert "pip install -r requirements.txt" in train and "train.py --config configs/mnist/quickstart.py" in train
    assert "sample.py --workdir runs/quickstart" in train


def test_ci_runs_the_readme_test_command():
    command = first_block_after("Tests")
    assert "\n" not in command and command.endswith("python -m pytest")
    ci = open(os.path.join(ROOT, ".ci", "run")).read()
    assert command in ci and "set -euo pipefail" in ci


def test_every_config_path_in_the_readme_exists():
    paths = set(re.findall(r"configs/[\w/]+\.py", README))
    assert len(paths) > 10
    missing = [p for p in paths if not os.path.isfile(os.path.join(ROOT, p))]
    assert not missing, missing


def test_pictures_in_the_readme_exist():
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert pictures and all(os.path.isfile(os.path.join(ROOT, p)) for p in pictures), pictures


def test_the_python_api_example_runs():
    example = blocks_after("Python API", "python")[0]
    namespace = {}
    exec(compile(example, "README.md", "exec"), namespace)
    assert namespace["losses"].shape == (8,) and namespace["u"].shape == (8, 1, 28, 28)
    assert not namespace["torch"].equal(namespace["blurred"], namespace["x"])


def test_the_python_api_example_runs_verbatim_on_the_shipped_model(monkeypatch):
    example = blocks_after("Python API", "python")[1]
    assert 'Model.from_run("pretrained/quickstart"' in example
    monkeypatch.chdir(ROOT)
    namespace = {}
    exec(compile(example, "README.md", "exec"), namespace)
    assert namespace["samples"].shape == (4, 1, 28, 28) and namespace["path"].shape == (9, 1, 28, 28)
    assert (namespace["reconstruction"] - namespace["x"]).abs().max() < 1e-5
    assert (namespace["path"][0] - namespace["x"][0]).abs().max() < 1e-5
    assert namespace["variations"].shape == (4, 1, 28, 28) and namespace["nats"].shape == (2,)


def test_the_first_python_api_example_runs_as_a_script_saved_in_another_folder(tmp_path):
    """The set-up installs the project (requirements.txt ends with ``-e .``): a saved script imports it anywhere."""
    import subprocess
    import sys

    script = tmp_path / "example.py"
    script.write_text(blocks_after("Python API", "python")[0])
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert open(os.path.join(ROOT, "requirements.txt")).read().strip().endswith("-e .")
