"""Gaussian fits of feature sets and the Frechet distance between them (the maths of FID, in float64).

FID (Heusel et al. 2017) fits N(mu, Sigma) to the features of each image set and reports their
Frechet (2-Wasserstein) distance

    d^2 = |mu_1 - mu_2|^2 + tr(S_1) + tr(S_2) - 2 tr((S_1 S_2)^(1/2)).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import numpy as np


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), computed in float64.

    mu1, mu2: [D]; sigma1, sigma2: [D, D] symmetric positive semi-definite.
    ``d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))``. With S1 = V W V^T (eigh)
    and R = V W^(1/2), S1 S2 is similar to the symmetric PSD matrix ``M = R^T S2 R``, so
    ``tr((S1 S2)^(1/2)) = sum_i sqrt(lambda_i(M))``: two symmetric eigendecompositions instead
    of scipy's general ``sqrtm`` (same value, several times faster at D = 2048).

    Singular covariances (fewer images than features): eigenvalues of S1 below the float64
    noise floor ``D * eps * largest`` are set to zero and their directions dropped (M is then
    r x r, r = rank S1). Without this, the square root lifts eigh's rounding noise
    (~eps * largest) to ~1e-8 * largest per null direction, and the FID of a few images
    against themselves comes out ~1e-5 instead of ~1e-12. Negative eigenvalues of M (rounding)
    are clamped to zero. Accuracy against an exact oracle: ~1e-8 relative or better.
    """
    mu1, sigma1 = check_gaussian(mu1, sigma1, "1")
    mu2, sigma2 = check_gaussian(mu2, sigma2, "2")
    if mu1.shape != mu2.shape:
        raise ValueError(f"mean shapes differ: mu1 {mu1.shape} vs mu2 {mu2.shape}")
    eigvals, eigvecs = np.linalg.eigh(sigma1)
    keep = eigvals > _noise_floor(eigvals)
    root = eigvecs[:, keep] * np.sqrt(eigvals[keep])  # [D, r]; root @ root.T = S1
    middle = root.T @ sigma2 @ root  # [r, r]
    middle_eigvals = np.linalg.eigvalsh(0.5 * (middle + middle.T))
    tr_covmean = np.sqrt(np.clip(middle_eigvals, 0.0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


def _noise_floor(eigvals: np.ndarray) -> float:
    """Eigenvalues [n] of a symmetric PSD matrix below this are rounding noise: n * eps * max."""
    if eigvals.size == 0:
        return 0.0
    return eigvals.size * np.finfo(np.float64).eps * max(float(eigvals.max()), 0.0)


def check_gaussian(mu: Any, sigma: Any, which: str) -> Tuple[np.ndarray, np.ndarray]:
    """Validate one Gaussian (mu [D], sigma [D, D] finite and symmetric) and return float64 copies.

    ``which`` names it in the errors (``mu<which>``, ``sigma<which>``).
    """
    mu = np.asarray(mu, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    if mu.ndim != 1:
        raise ValueError(f"mu{which} must have shape [D], got {mu.shape}")
    if sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(
            f"sigma{which} must have shape [D, D] = {(mu.shape[0],) * 2} to match mu{which}, got {sigma.shape}"
        )
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ValueError(f"mu{which}/sigma{which} contain NaN or inf")
    scale = max(float(np.abs(sigma).max()), 1e-300)
    asym = float(np.abs(sigma - sigma.T).max())
    if asym > 1e-6 * scale:
        raise ValueError(f"sigma{which} is not symmetric: max |S - S^T| = {asym:.3g} (allowed {1e-6 * scale:.3g})")
    return mu, sigma


class RunningMoments:
    """Streaming mean [D] and unbiased covariance [D, D] (as ``np.cov``) of feature rows.

    Sums are taken about a fixed shift (the first batch's mean) so the covariance keeps full
    float64 precision when the mean is large compared with the spread:
    ``sigma = (sum c c^T - n m m^T) / (n - 1)`` with c = x - shift and m = mean(c).
    """

    def __init__(self) -> None:
        self.count = 0
        self._shift: Optional[np.ndarray] = None
        self._sum: Optional[np.ndarray] = None
        self._outer: Optional[np.ndarray] = None

    def update(self, features: np.ndarray) -> None:
        """Add rows ``features`` [B, D]."""
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[0] == 0:
            raise ValueError(f"features must have shape [B, D] with B >= 1, got {features.shape}")
        if self._shift is None:
            self._shift = features.mean(axis=0)
            dim = features.shape[1]
            self._sum = np.zeros(dim)
            self._outer = np.zeros((dim, dim))
        elif features.shape[1] != self._shift.shape[0]:
            raise ValueError(f"feature dimension changed: {features.shape[1]} after {self._shift.shape[0]}")
        centred = features - self._shift
        self._sum += centred.sum(axis=0)
        self._outer += centred.T @ centred
        self.count += features.shape[0]

    def summary(self) -> Tuple[int, Optional[np.ndarray], Optional[np.ndarray]]:
        """(n, mean [D], scatter about the mean [D, D]) of the rows so far; (0, None, None) for none."""
        if self.count == 0:
            return 0, None, None
        mean_shifted = self._sum / self.count
        return self.count, self._shift + mean_shifted, self._outer - self.count * np.outer(mean_shifted, mean_shifted)

    def finalize(self) -> Tuple[np.ndarray, np.ndarray]:
        """Return (mu [D], sigma [D, D]); needs at least two rows."""
        return combine_moments([self.summary()])[:2]


def combine_moments(summaries: Sequence[Tuple[int, Optional[np.ndarray], Optional[np.ndarray]]]):
    """Mean [D], unbiased covariance [D, D] and count of the union of row sets given by their summaries.

    Pairwise merging of (n_r, m_r, S_r): n = sum n_r, m = sum n_r m_r / n,
    S = sum (S_r + n_r (m_r - m)(m_r - m)^T), sigma = S / (n - 1); exact in any grouping, so the
    statistics of images split over processes equal those of one stream up to float64 rounding.
    """
    parts = [part for part in summaries if part[0] > 0]
    count = sum(n for n, _, _ in parts)
    if count < 2:
        raise ValueError(f"statistics need at least 2 images, got {count}")
    mean = sum(n * m for n, m, _ in parts) / count
    scatter = sum(s + n * np.outer(m - mean, m - mean) for n, m, s in parts)
    sigma = scatter / (count - 1)
    return mean, 0.5 * (sigma + sigma.T), count
