"""The README's front door stays true: its one-line Quickstart and Tests commands, CI, config paths."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = open(os.path.join(ROOT, "README.md")).read()


def first_block_after(heading: str) -> str:
    section = README.split(f"\n## {heading}\n", 1)[1]
    return re.search(r"```(?:bash)?\n(.*?)```", section, re.S).group(1).strip()


def test_quickstart_is_one_command_that_trains_and_samples():
    command = first_block_after("Quickstart")
    assert "\n" not in command
    assert "pip install -r requirements.txt" in command
    assert "train.py --config configs/mnist/quickstart.py" in command and "sample.py" in command


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
    section = README.split("\n## Python API\n", 1)[1]
    example = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace = {}
    exec(compile(example, "README.md", "exec"), namespace)
    assert namespace["losses"].shape == (8,) and namespace["u"].shape == (8, 1, 28, 28)
    assert not namespace["torch"].equal(namespace["blurred"], namespace["x"])
