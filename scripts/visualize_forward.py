"""A picture of forward processes: u_0 ... u_K for a few dataset images, one row per operator.

    python -m scripts.visualize_forward --config configs/mnist/quickstart.py \
        --operators=heat,blur,identity,random_matrix,random_matrix_product,constant_velocity,constant_deceleration,\
cold_blur,mask,pixelate,desaturate --config.model.mask_std=0.2 --config.model.pixelate_every=10 \
        --num_images=2 --num_levels=10 --out runs/forward.png

Each row is one (operator, image) pair; columns are levels 0 = k_0 < ... < k_{n-1} = K evenly
spaced, showing a draw of u_k from the config's process with that operator (noise included).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, List, Sequence

from absl import flags
from ml_collections import config_flags

if TYPE_CHECKING:
    import torch
    from PIL import Image

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    "config", None, "Configuration file (dataset, process, K, blur settings).", lock_config=False
)
flags.DEFINE_list("operators", None, "Operators to show, one row per operator and image (default: the config's).")
flags.DEFINE_integer("num_images", 2, "Dataset images per operator.")
flags.DEFINE_integer("num_levels", 10, "Columns: levels from 0 to K.")
flags.DEFINE_integer("seed", 0, "Seed of the forward noise.")
flags.DEFINE_string("out", "runs/forward_process.png", "Output PNG.")
flags.mark_flags_as_required(["config"])


def forward_strip(process, images: torch.Tensor, num_levels: int, seed: int) -> torch.Tensor:
    """u_k for k evenly spaced in 0..K: images [N, C, H, W] -> [N, num_levels, C, H, W] in the data range."""
    import torch

    levels = torch.linspace(0, process.K, num_levels).round().long()
    generator = torch.Generator().manual_seed(seed)
    columns = []
    for k in levels:
        eps = torch.randn(images.shape, generator=generator)
        columns.append(process.diffuse(images, torch.full((images.shape[0],), int(k)), eps))
    return torch.stack(columns, dim=1)


def labelled_rows(rows: List[torch.Tensor], labels: Sequence[str], scale: int = 3) -> Image.Image:
    """Rows of [L, C, H, W] images in [0, 1] side by side, each with a text label on the left."""
    from PIL import Image, ImageDraw

    from scripts.sampling.imaging import make_grid

    strips = [Image.fromarray(make_grid(row, nrow=row.shape[0])) for row in rows]
    strips = [s.resize((s.width * scale, s.height * scale), Image.NEAREST) for s in strips]
    label_width = 7 * max(len(label) for label in labels) + 12
    canvas = Image.new("RGB", (label_width + strips[0].width, sum(s.height for s in strips)), "white")
    draw, top = ImageDraw.Draw(canvas), 0
    for strip, label in zip(strips, labels):
        canvas.paste(strip, (label_width, top))
        draw.text((6, top + strip.height // 2 - 6), label, fill="black")
        top += strip.height
    return canvas


def check_flags() -> None:
    """One-line errors for bad flag and config values, before any data is read."""
    from scripts.cli.flags import require_writable_folder
    from scripts.cli.values import int_at_least, require
    from scripts.config.validate import validate_config

    validate_config(FLAGS.config)
    require("--num_images", FLAGS.num_images, int_at_least(1), "an integer >= 1 (dataset images per operator)")
    require("--num_levels", FLAGS.num_levels, int_at_least(2), "an integer >= 2 (columns from level 0 to K)")
    require("--seed", FLAGS.seed, int_at_least(0), "an integer >= 0")
    require_writable_folder("--out", FLAGS.out, os.path.dirname(FLAGS.out) or ".")


def run() -> None:
    check_flags()
    import torch

    from scripts.config import build
    from scripts.sampling.imaging import to_unit

    config = FLAGS.config
    operators = FLAGS.operators or [config.model.forward]
    rows, labels = [], []
    for name in operators:
        config.model.forward = name
        process = build.build_process(config)
        data = build.build_data(config, "test", process)
        images = data.fetch(torch.arange(min(FLAGS.num_images, len(data))))
        for index, strip in enumerate(forward_strip(process, images, FLAGS.num_levels, FLAGS.seed)):
            rows.append(to_unit(strip, process.data_range))
            labels.append(f"{name} #{index}")
    labelled_rows(rows, labels).save(FLAGS.out)
    described = f"{', '.join(operators)}; {config.model.process} process, K={config.model.K}"
    print(f"forward processes ({described}) written to {FLAGS.out}")


if __name__ == "__main__":
    from scripts.cli.command import run_command

    run_command(run)
