"""The README's sampling pictures from a trained run: prior temperature and level-of-detail edits.

    python -m scripts.make_figures --workdir pretrained/quickstart --out docs

OUT/temperature.png: one row per temperature of --temperatures (default 1.0, 0.8, 0.6, top to bottom), each
the --num_samples samples of the same seeds (image i from seeds (--seed, i)), so a column is one draw made
calmer as T falls.

OUT/level_of_detail.png: test-split item --test_index of the run's dataset (held out from training). One row
per edit: first ``below`` L for each L of --below, then ``above`` L for each L of --above (``Model.resample``).
Every row starts with the digit as its exact latent decodes it (equal to the digit to float32 precision),
followed by --num_samples variations: ``below`` L keeps the latent above level L and draws the noise of steps
k <= L afresh (new fine detail, same layout); ``above`` L keeps steps k <= L and draws u_K and the steps above
L afresh (new coarse layout, the digit's fine detail).

OUT/<dataset>_test_<i>.png for each i of --save_test: held-out images as stored (8-bit, the model's resolution),
inputs for ``sample.py --image`` and ``--image_a/--image_b``.
"""

from __future__ import annotations

import os
from typing import List, Sequence

import torch
from absl import flags

flags.DEFINE_string("workdir", None, "the run (or exported model) to draw from")
flags.DEFINE_integer("checkpoint", 0, "0: the latest state; N: checkpoints/checkpoint_N.pth")
flags.DEFINE_string("out", "docs", "folder for temperature.png and level_of_detail.png")
flags.DEFINE_list("temperatures", ["1.0", "0.8", "0.6"], "prior temperatures, one row each")
flags.DEFINE_integer("num_samples", 10, "samples per row")
flags.DEFINE_integer("seed", 0, "base seed of every row")
flags.DEFINE_integer("test_index", 0, "which held-out image (test split) to edit")
flags.DEFINE_list("save_test", ["0", "1"], "test-split items to save as OUT/<dataset>_test_<i>.png (inputs to try)")
flags.DEFINE_list("below", ["2", "5", "10", "15"], "levels L of the resample_below rows")
flags.DEFINE_list("above", ["15", "10"], "levels L of the resample_above rows")
FLAGS = flags.FLAGS


def numbers(flag: str, kind: type, allowed: str, check) -> List:
    """The comma-separated values of ``--flag`` as ``kind``; one error line naming the first bad one."""
    from scripts.cli.values import bad_value

    values = []
    for text in getattr(FLAGS, flag):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not check(value):
            raise bad_value(f"--{flag}", text, allowed)
        values.append(value)
    return values


def temperature_rows(model, temperatures: Sequence[float], count: int, seed: int) -> torch.Tensor:
    """[len(temperatures) * count, C, H, W]: row r is ``model.sample(count, seed, temperatures[r])``."""
    return torch.cat([model.sample(count, seed=seed, temperature=t) for t in temperatures])


def level_of_detail_rows(model, image: torch.Tensor, below: Sequence[int], above: Sequence[int], count: int, seed: int):
    """[(len(below) + len(above)) * (1 + count), C, H, W]: per edit, the decoded image [C, H, W] then ``count``
    resampled variations of it."""
    decoded = model.decode(model.encode(image[None], seed))
    edits = [{"below": level} for level in below] + [{"above": level} for level in above]
    return torch.cat([torch.cat([decoded, model.resample(image, count, seed=seed, **edit)]) for edit in edits])


def save_test_images(test, indices: Sequence[int], out: str, dataset: str) -> List[str]:
    """OUT/<dataset>_test_<i>.png: the stored uint8 items [C, H, W] of ``test`` at ``indices``, unchanged."""
    from PIL import Image

    paths = []
    if not indices:  # --save_test= asks for none
        return paths
    for index, item in zip(indices, test.raw_batch(indices)):
        pixels = item[0] if item.shape[0] == 1 else item.permute(1, 2, 0)
        paths.append(os.path.join(out, f"{dataset}_test_{index}.png"))
        Image.fromarray(pixels.numpy()).save(paths[-1])
    return paths


def run() -> None:
    from scripts.api import Model
    from scripts.cli.flags import require_writable_folder
    from scripts.cli.values import int_at_least, require
    from scripts.config import build
    from scripts.sampling.imaging import save_png, to_unit

    temperatures = numbers("temperatures", float, "numbers >= 0", lambda t: t >= 0)
    count = FLAGS.num_samples
    require("--num_samples", count, int_at_least(1), "an integer >= 1")
    require_writable_folder("--out", FLAGS.out, FLAGS.out)
    model = Model.from_run(FLAGS.workdir, FLAGS.checkpoint, "cpu")
    K = model.process.K
    below = numbers("below", int, f"integers in 0..{K}", lambda level: 0 <= level <= K)
    above = numbers("above", int, f"integers in 0..{K}", lambda level: 0 <= level <= K)
    test = build.build_data(model.config, "test", model.process)
    allowed = f"an integer in 0..{len(test) - 1}"
    require("--test_index", FLAGS.test_index, lambda i: int_at_least(0)(i) and i < len(test), allowed)
    saved = numbers("save_test", int, f"integers in 0..{len(test) - 1}", lambda i: 0 <= i < len(test))
    image = test.fetch(torch.tensor([FLAGS.test_index]))[0].to(model.device)

    unit = lambda x: to_unit(x, model.process.data_range)
    written = [
        save_png(
            os.path.join(FLAGS.out, "temperature.png"),
            unit(temperature_rows(model, temperatures, count, FLAGS.seed)),
            count,
        ),
        save_png(
            os.path.join(FLAGS.out, "level_of_detail.png"),
            unit(level_of_detail_rows(model, image, below, above, count, FLAGS.seed)),
            1 + count,
        ),
        *save_test_images(test, saved, FLAGS.out, model.config.data.dataset),
    ]
    for path in written:
        print(path)


if __name__ == "__main__":
    from scripts.cli.command import run_command

    run_command(run)
