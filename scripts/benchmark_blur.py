"""Time the heat operator's two paths, and the one it picks, against the upstream way of blurring (float64 DCT
through FFTs).

    python -m scripts.benchmark_blur --sizes=32,64,256 --batch=128 --device=cpu

All compute A_k x for random levels k: the dense path (two products with per-level blur matrices), the FFT path
(a float32 DCT by FFTs, the decay, the inverse) and the upstream reference, each checked against the reference
before timing. The operator takes the FFT path from ``HeatOperator.blur_by_fft_from`` pixels.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from typing import Callable, Dict, Iterator

import torch
from absl import app, flags

from model_code.operators import build_operator
from model_code.operators.base import DCTOperator
from model_code.operators.heat import HeatOperator

FLAGS = flags.FLAGS
flags.DEFINE_list("sizes", ["32", "64", "256"], "Square image sizes.")
flags.DEFINE_integer("batch", 128, "Images per call (3 channels).")
flags.DEFINE_integer("repeats", 10, "Timed calls per method (the best is reported).")
flags.DEFINE_string("device", "cpu", "cpu or cuda.")


def fft_dct(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal DCT-II over the last dim through an FFT of the even/odd reordering (float64)."""
    n = x.shape[-1]
    reordered = torch.cat([x[..., ::2], x[..., 1::2].flip(-1)], dim=-1)
    spectrum = torch.fft.fft(reordered, dim=-1)
    k = torch.arange(n, device=x.device, dtype=x.dtype)
    coefficients = (spectrum * torch.exp(-1j * math.pi * k / (2 * n))).real * math.sqrt(2.0 / n)
    coefficients[..., 0] /= math.sqrt(2.0)
    return coefficients


def fft_idct(c: torch.Tensor) -> torch.Tensor:
    """Inverse of ``fft_dct`` (orthonormal DCT-III) over the last dim."""
    n = c.shape[-1]
    k = torch.arange(n, device=c.device, dtype=c.dtype)
    scaled = c * math.sqrt(2.0 / n)
    scaled = torch.cat([scaled[..., :1] / math.sqrt(2.0), scaled[..., 1:]], dim=-1)
    reordered = torch.fft.ifft(scaled * torch.exp(1j * math.pi * k / (2 * n)), dim=-1).real * n
    out = torch.empty_like(reordered)
    half = (n + 1) // 2
    out[..., ::2] = reordered[..., :half]
    out[..., 1::2] = reordered[..., half:].flip(-1)
    return out


def upstream_blur(x: torch.Tensor, sigmas: torch.Tensor, frequencies_squared: torch.Tensor) -> torch.Tensor:
    """float64: 2D DCT by FFTs, multiply by exp(-lambda sigma^2 / 2), inverse, back to float32."""
    x = x.double()
    coefficients = fft_dct(fft_dct(x).transpose(-1, -2)).transpose(-1, -2)
    coefficients = coefficients * torch.exp(-frequencies_squared * (sigmas.double() ** 2 / 2)[:, None, None, None])
    return fft_idct(fft_idct(coefficients).transpose(-1, -2)).transpose(-1, -2).float()


def best_time(function: Callable[[], torch.Tensor], repeats: int, device: str) -> float:
    function()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        function()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


@contextlib.contextmanager
def path(name: str) -> Iterator[None]:
    """Heat operators built inside take the 'dense' or the 'fft' path at every size."""
    saved = DCTOperator.dct_by_fft_from, HeatOperator.blur_by_fft_from
    threshold = 1 if name == "fft" else math.inf
    DCTOperator.dct_by_fft_from = HeatOperator.blur_by_fft_from = threshold
    try:
        yield
    finally:
        DCTOperator.dct_by_fft_from, HeatOperator.blur_by_fft_from = saved


def heat_operator(size: int, device: str):
    return build_operator("heat", image_size=size, K=200, blur_sigma_min=0.5, blur_sigma_max=size / 2).to(device)


def compare(size: int, batch: int, repeats: int, device: str) -> Dict[str, float]:
    """Milliseconds per call of each path and of the reference, their largest difference from it, the path the
    operator picks at this size and its speed-up over the reference."""
    default = heat_operator(size, device)
    picked = "fft" if default.blur_by_fft else "dense"
    x = torch.rand(batch, 3, size, size, device=device)
    k = torch.randint(0, 201, (batch,), device=device, generator=torch.Generator(device).manual_seed(0))
    freqs = (math.pi * torch.arange(size, device=device, dtype=torch.float64) / size) ** 2
    frequencies_squared = freqs[:, None] + freqs[None, :]
    sigmas = default.blur_sigmas[k]
    reference = upstream_blur(x, sigmas, frequencies_squared)
    result = {"size": size, "picked": picked, "max_abs_difference": 0.0}
    for name in ("dense", "fft"):
        with path(name):
            op = heat_operator(size, device)
        difference = (op(x, k) - reference).abs().max().item()
        result["max_abs_difference"] = max(result["max_abs_difference"], difference)
        result[f"{name}_ms"] = 1000 * best_time(functools.partial(op, x, k), repeats, device)
        del op  # the dense path's [K+1, n, n] matrices are large at 1024 pixels
    theirs = best_time(lambda: upstream_blur(x, sigmas, frequencies_squared), repeats, device)
    result["fft_float64_ms"] = 1000 * theirs
    result["speedup"] = theirs / (result[f"{picked}_ms"] / 1000)
    return result


def positive_sizes(sizes) -> list:
    """--sizes as integers; one line naming the first entry that is not an integer >= 2."""
    for size in sizes:
        if not (size.isdigit() and int(size) >= 2):
            raise ValueError(f"--sizes entry {size!r}; allowed: integers >= 2 (square image sizes), e.g. 32,64")
    return [int(size) for size in sizes]


def main(argv) -> None:
    from scripts.cli.errors import run_cli

    def run() -> None:
        sizes = positive_sizes(FLAGS.sizes)
        for name in ("batch", "repeats"):
            if getattr(FLAGS, name) < 1:
                raise ValueError(f"--{name}={getattr(FLAGS, name)}; allowed: a positive integer")
        if FLAGS.device not in ("cpu", "cuda"):
            raise ValueError(f"--device={FLAGS.device}; allowed: cpu, cuda")
        if FLAGS.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device=cuda but no CUDA device is available; allowed here: cpu")
        print(f"heat operator, batch {FLAGS.batch} x 3 channels, device {FLAGS.device}, best of {FLAGS.repeats}")
        for size in sizes:
            r = compare(size, FLAGS.batch, FLAGS.repeats, FLAGS.device)
            print(
                f"{size:4d}x{size:<4d} dense {r['dense_ms']:9.2f} ms   fft {r['fft_ms']:9.2f} ms   "
                f"picks {r['picked']:5s}  "
                f"upstream float64 FFT DCT {r['fft_float64_ms']:9.2f} ms   speed-up {r['speedup']:5.1f}x   "
                f"max |difference| {r['max_abs_difference']:.1e}"
            )

    run_cli(run)


if __name__ == "__main__":
    app.run(main)
