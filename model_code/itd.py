"""Information-theoretic diffusion (Kong et al., ICLR 2023): NLL from the denoising-MSE curve.

Notation. Data x in R^d (any shape [...], d = number of entries), log signal-to-noise ratio a,

    z_a = sqrt(sigmoid(a)) x + sqrt(sigmoid(-a)) eps,        eps ~ N(0, I).

For any eps-predictor eps_hat(z, a), the pointwise estimate of the negative log density (nats) is

    -log p(x) ~= (d/2) log(2 pi e) + 1/2 int [ mse(x, a) - d sigmoid(a) ] da,        (1)
    mse(x, a) = E_eps || eps - eps_hat(z_a, a) ||^2,

exact (over the whole real line) when eps_hat is the optimal denoiser E[eps | z_a]; for any other
predictor its expectation over x upper-bounds the entropy E[-log p(x)] (up to truncation).
``d sigmoid(a)`` is the eps-MMSE of N(0, I)
data, so the integrand decays in both tails. The integral is estimated by importance sampling
with a logistic(loc, scale) proposal truncated to loc +- 4 scale:

    int_{loc-4s}^{loc+4s} f(a) da = E_q[ w(a) f(a) ],   w = s tanh(2) / (sigmoid(v) sigmoid(-v)),
    v = (a - loc) / s                                                                    (2)

(tanh(2) = sigmoid(4) - sigmoid(-4) is the mass the truncation keeps). The truncation drops the
tails of (1); for sensible (loc, scale) the dropped part is small (see the tests).

Everything here is pure maths on tensors: no file I/O, no configs.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import torch

from model_code.randomness import RandomSource, as_randomness

EpsPredictor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
ArrayLike = Union[torch.Tensor, Sequence[float], Sequence[Sequence[float]]]

TRUNCATION = 4.0  # the proposal keeps loc +- TRUNCATION * scale
LOG_2PI_E = math.log(2.0 * math.pi * math.e)


def _check_scale(scale: float) -> float:
    value = float(scale)
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")
    return value


def _check_loc(loc: float) -> float:
    value = float(loc)
    if not math.isfinite(value):
        raise ValueError(f"loc must be a finite number, got {loc!r}")
    return value


def truncation_interval(loc: float, scale: float) -> Tuple[float, float]:
    """The log-SNR interval [loc - 4 scale, loc + 4 scale] that the proposal covers."""
    loc, scale = _check_loc(loc), _check_scale(scale)
    return loc - TRUNCATION * scale, loc + TRUNCATION * scale


def sample_truncated_logistic(
    n: int,
    loc: float,
    scale: float,
    randomness: RandomSource = None,
    device: Optional[Union[str, torch.device]] = None,
    dtype: torch.dtype = torch.float32,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Log SNRs from a logistic(loc, scale) truncated to loc +- 4 scale, with importance weights.

    Inverse CDF: u ~ U(sigmoid(-4), sigmoid(4)), v = logit(u), a = loc + scale v. The proposal
    density is q(a) = sigmoid(v) sigmoid(-v) / (scale tanh(2)), so the weight w = 1 / q is

        w = scale tanh(2) / (sigmoid(v) sigmoid(-v))            (eq. 2)

    and E_q[w f(a)] = int_{loc-4 scale}^{loc+4 scale} f(a) da for any integrable f.

    Returns:
        logsnr [n] and weight [n], both of ``dtype`` on ``device``.
    Raises:
        ValueError: scale not positive and finite, loc not finite, or n negative.
    """
    loc, scale = _check_loc(loc), _check_scale(scale)
    if int(n) < 0:
        raise ValueError(f"n must be non-negative, got {n!r}")
    low = 1.0 / (1.0 + math.exp(TRUNCATION))  # sigmoid(-4)
    high = 1.0 - low  # sigmoid(4)
    uniform = as_randomness(randomness, device).rand((int(n),), dtype=torch.float64)
    u = low + (high - low) * uniform
    v = torch.log(u) - torch.log1p(-u)
    logsnr = loc + scale * v
    weight = scale * math.tanh(TRUNCATION / 2.0) / (u * (1.0 - u))  # sigmoid(v) = u, sigmoid(-v) = 1 - u
    return logsnr.to(dtype), weight.to(dtype)


def _broadcast(per_example: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """[B] -> [B, 1, ..., 1] matching ``like``'s number of dimensions."""
    return per_example.reshape(per_example.shape[0], *([1] * (like.dim() - 1)))


def gaussian_channel(x: torch.Tensor, logsnr: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """z = sqrt(sigmoid(a)) x + sqrt(sigmoid(-a)) eps for x, eps [B, ...] and a = logsnr [B]."""
    return _broadcast(torch.sigmoid(logsnr).sqrt(), x) * x + _broadcast(torch.sigmoid(-logsnr).sqrt(), x) * eps


@torch.no_grad()
def nll_estimate(
    eps_pred: EpsPredictor,
    x: torch.Tensor,
    num_samples: int,
    loc: float,
    scale: float,
    generator: Optional[torch.Generator] = None,
    *,
    batch_size: int = 4096,
) -> Dict[str, Union[torch.Tensor, float, int]]:
    """Importance-sampled estimate of -log p(x) (nats), eq. (1) with the proposal of eq. (2).

    Each example gets ``num_samples`` independent (a, eps) draws; rows are processed
    ``batch_size`` at a time (whole examples per call, at least one), so ``eps_pred`` sees
    z [b * num_samples, ...] and logsnr [b * num_samples]. Runs under ``torch.no_grad``; put a
    network in eval mode first.

    Args:
        eps_pred: callable (z [B, ...], logsnr [B]) -> eps_hat [B, ...].
        x: data [N, ...]; d = prod of the trailing dims. Its dtype and device are used throughout.
        num_samples: log-SNR draws per example.
        loc, scale: the truncated-logistic proposal.
        generator: drives all randomness (log SNRs and noise), on x's device.
        batch_size: largest number of rows given to ``eps_pred`` in one call.

    Returns a dict with
        ``nll`` [N]: per-example estimates (nats);
        ``mean``, ``stderr``: their mean and its standard error (std / sqrt(N); for N = 1 the
            Monte-Carlo standard error over that example's draws);
        ``bits_per_dim``, ``bits_per_dim_stderr``: mean / (d ln 2) and likewise for the error;
        ``logsnr``, ``mse`` [N * num_samples]: the raw draws a and ||eps - eps_hat||^2 (example-major),
            for plotting the MSE-vs-log-SNR curve; ``weight`` [N * num_samples]: their weights;
        ``d``: the dimension.
    """
    if x.dim() < 2 or x.shape[0] < 1:
        raise ValueError(f"x must be [N, ...] with N >= 1 and at least one data dim, got shape {tuple(x.shape)}")
    if int(num_samples) < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    num_samples = int(num_samples)
    _check_loc(loc)
    _check_scale(scale)
    n, d = x.shape[0], x[0].numel()
    examples_per_call = max(1, int(batch_size) // num_samples)

    nll, logsnrs, mses, weights, terms = [], [], [], [], []
    for start in range(0, n, examples_per_call):
        x_rows = x[start : start + examples_per_call].repeat_interleave(num_samples, dim=0)
        rows = x_rows.shape[0]
        logsnr, weight = sample_truncated_logistic(rows, loc, scale, generator, x.device, x.dtype)
        eps = torch.randn(x_rows.shape, generator=generator, device=x.device, dtype=x.dtype)
        z = gaussian_channel(x_rows, logsnr, eps)
        eps_hat = eps_pred(z, logsnr)
        if eps_hat.shape != eps.shape:
            raise ValueError(f"eps_pred returned shape {tuple(eps_hat.shape)}, expected {tuple(eps.shape)}")
        mse = (eps - eps_hat).reshape(rows, -1).pow(2).sum(dim=1)
        term = weight * (mse - d * torch.sigmoid(logsnr))  # [rows]; its mean estimates the integral in (1)
        nll.append(0.5 * d * LOG_2PI_E + 0.5 * term.reshape(-1, num_samples).mean(dim=1))
        logsnrs.append(logsnr)
        mses.append(mse)
        weights.append(weight)
        terms.append(term)

    return summarise_nll(
        torch.cat(nll), torch.cat(terms), torch.cat(logsnrs), torch.cat(mses), torch.cat(weights), d, num_samples
    )


def summarise_nll(
    nll: torch.Tensor,
    terms: torch.Tensor,
    logsnr: torch.Tensor,
    mse: torch.Tensor,
    weight: torch.Tensor,
    d: int,
    num_samples: int,
) -> Dict[str, Union[torch.Tensor, float, int]]:
    """``nll_estimate``'s result from per-example estimates nll [N] and per-draw terms, log SNRs, squared
    errors and weights [N * num_samples]: mean, standard error (std / sqrt(N); for N = 1 the Monte-Carlo
    error over the draws) and bits per dimension."""
    n = nll.shape[0]
    mean = nll.mean().item()
    if n > 1:
        stderr = nll.std().item() / math.sqrt(n)
    elif num_samples > 1:
        stderr = 0.5 * terms.std().item() / math.sqrt(num_samples)
    else:
        stderr = float("nan")
    bits = d * math.log(2.0)
    return {
        "nll": nll,
        "mean": mean,
        "stderr": stderr,
        "bits_per_dim": mean / bits,
        "bits_per_dim_stderr": stderr / bits,
        "logsnr": logsnr,
        "mse": mse,
        "weight": weight,
        "terms": terms,
        "d": d,
    }


def log_density_grid(
    eps_pred: EpsPredictor,
    grid_points: torch.Tensor,
    num_samples: int,
    loc: float,
    scale: float,
    generator: Optional[torch.Generator] = None,
    *,
    batch_size: int = 4096,
) -> torch.Tensor:
    """Estimated log p at each grid point: grid_points [G, D] (e.g. D = 2) -> [G].

    The negative of ``nll_estimate(...)["nll"]``; for density pictures, exponentiate and reshape.
    """
    return -nll_estimate(eps_pred, grid_points, num_samples, loc, scale, generator, batch_size=batch_size)["nll"]


def gaussian_baseline_mse(logsnr: torch.Tensor, d: int) -> torch.Tensor:
    """d sigmoid(a): the eps-MMSE of N(0, I_d) data, whose optimal denoiser is sqrt(sigmoid(-a)) z.

    logsnr [...] -> [...].
    """
    return d * torch.sigmoid(logsnr)


def _positive_eigenvalues(eigenvalues: ArrayLike) -> torch.Tensor:
    values = torch.as_tensor(eigenvalues, dtype=torch.float64).reshape(-1)
    if values.numel() == 0 or not bool(torch.all(values > 0)) or not bool(torch.all(torch.isfinite(values))):
        raise ValueError(f"eigenvalues must be positive and finite, got {values.tolist()}")
    return values


def gaussian_mmse_curve(logsnr: torch.Tensor, eigenvalues: ArrayLike) -> torch.Tensor:
    """eps-MMSE of N(m, Sigma) data: sum_i sigmoid(a + log lambda_i).

    Per eigen-direction with variance lambda, E[eps | z] = sqrt(sigmoid(-a)) (z - alpha m) / (alpha^2
    lambda + sigmoid(-a)), alpha^2 = sigmoid(a), leaving the error lambda e^a / (lambda e^a + 1).

    logsnr [G] (any shape), eigenvalues [d] -> [G] (float64 unless logsnr is a float tensor of
    another dtype).
    """
    values = _positive_eigenvalues(eigenvalues)
    logsnr = torch.as_tensor(logsnr)
    dtype = logsnr.dtype if logsnr.is_floating_point() else torch.float64
    values = values.to(device=logsnr.device, dtype=dtype)
    return torch.sigmoid(logsnr.to(dtype)[..., None] + values.log()).sum(dim=-1)


def _covariance(cov: ArrayLike) -> torch.Tensor:
    matrix = torch.as_tensor(cov, dtype=torch.float64)
    if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"cov must be a square [d, d] matrix, got shape {tuple(matrix.shape)}")
    if not torch.allclose(matrix, matrix.T, rtol=1e-10, atol=1e-12):
        raise ValueError("cov must be symmetric")
    return matrix


def gaussian_entropy(cov: ArrayLike) -> float:
    """Differential entropy (nats) of N(m, Sigma): 1/2 log det(2 pi e Sigma), cov [d, d]."""
    matrix = _covariance(cov)
    sign, logdet = torch.linalg.slogdet(matrix)
    if sign <= 0:
        raise ValueError("cov must be positive definite")
    return 0.5 * (matrix.shape[0] * LOG_2PI_E + logdet.item())


def _crossing(logsnr: torch.Tensor, logit_curve: torch.Tensor, level: float, quantile: float) -> float:
    """First a where logit(mse/d) reaches ``level``, interpolating linearly in logit space."""
    above = torch.nonzero(logit_curve >= level).reshape(-1)
    if above.numel() == 0:
        raise ValueError(
            f"the MSE curve never reaches {quantile:.0%} of d on the grid (max mse/d = "
            f"{torch.sigmoid(logit_curve.max()).item():.4g}); extend the grid to higher log SNR"
        )
    index = int(above[0])
    if index == 0:
        raise ValueError(
            f"the MSE curve is already at {quantile:.0%} of d at the lowest grid log SNR "
            f"{logsnr[0].item():.4g}; extend the grid to lower log SNR"
        )
    a0, a1 = logsnr[index - 1].item(), logsnr[index].item()
    y0, y1 = logit_curve[index - 1].item(), logit_curve[index].item()
    return a0 + (level - y0) * (a1 - a0) / (y1 - y0)


def suggest_logistic_params(logsnr_grid: ArrayLike, mse: ArrayLike, d: int) -> Tuple[float, float]:
    """(loc, scale) for the log-SNR proposal from an eps-MSE curve.

    The eps-MSE rises from 0 to d as log SNR grows, like d times a CDF. The seed README's rule:
    loc = the 50% quantile (where mse/d crosses 0.5) and scale = "the distance to the 75%
    quantile". Here scale = (a_75 - loc) / ln 3: a logistic CDF sigmoid((a - loc)/s) reaches 0.75
    at a = loc + s ln 3, so with the ln 3 the rule gives back exactly (loc, s) for the curve
    d sigmoid((a - loc)/s) (the README's literal distance would overstate s by 10%).

    Crossings are found by linear interpolation of logit(mse/d) between grid points (exact for a
    logistic curve); the first crossing is used, so smooth a noisy curve first.

    Args:
        logsnr_grid [G], mse [G]: the curve (sorted by log SNR here), d: the data dimension.
    Raises:
        ValueError: the curve does not cross 50% or 75% of d inside the grid.
    """
    grid = torch.as_tensor(logsnr_grid, dtype=torch.float64).reshape(-1)
    values = torch.as_tensor(mse, dtype=torch.float64).reshape(-1)
    if grid.numel() != values.numel() or grid.numel() < 2:
        raise ValueError(f"logsnr_grid and mse need the same length >= 2, got {grid.numel()} and {values.numel()}")
    if not d > 0:
        raise ValueError(f"d must be positive, got {d!r}")
    order = torch.argsort(grid)
    grid, values = grid[order], values[order]
    fraction = (values / d).clamp(1e-300, 1.0 - 1e-16)
    logit_curve = torch.log(fraction) - torch.log1p(-fraction)
    loc = _crossing(grid, logit_curve, 0.0, 0.5)
    upper = _crossing(grid, logit_curve, math.log(3.0), 0.75)
    return loc, (upper - loc) / math.log(3.0)


def suggest_logistic_params_from_spectrum(
    eigenvalues: ArrayLike, grid: Optional[torch.Tensor] = None
) -> Tuple[float, float]:
    """(loc, scale) from the data covariance spectrum: ``suggest_logistic_params`` applied to
    ``gaussian_mmse_curve`` on ``grid`` (default: 20001 points spanning -log lambda_i +- 30)."""
    values = _positive_eigenvalues(eigenvalues)
    if grid is None:
        shifts = -values.log()
        grid = torch.linspace(shifts.min().item() - 30.0, shifts.max().item() + 30.0, 20001, dtype=torch.float64)
    return suggest_logistic_params(grid, gaussian_mmse_curve(grid, values), values.numel())
