"""KID: the blocked float64 estimator against the unbiased MMD^2 written out over full kernel matrices."""

import numpy as np
import pytest

from scripts.evaluation import kid


def unbiased_mmd2(x, y):
    """Oracle: the three kernel matrices in full, diagonals removed by masking."""
    k = lambda a, b: (a @ b.T / a.shape[1] + 1.0) ** 3
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    m, n = len(x), len(y)
    off = lambda mat: mat[~np.eye(len(mat), dtype=bool)].sum()
    return off(kxx) / (m * (m - 1)) + off(kyy) / (n * (n - 1)) - 2 * kxy.mean()


def test_blocked_kid_equals_full_matrix_oracle(monkeypatch):
    monkeypatch.setattr(kid, "KID_BLOCK_ROWS", 7)  # several blocks, the last one partial
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((30, 5)), rng.standard_normal((23, 5)) + 0.3
    assert kid.kid(x, y) == pytest.approx(unbiased_mmd2(x, y), rel=1e-12)


def test_kid_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((400, 8)), rng.standard_normal((400, 8))
    assert abs(kid.kid(x, y)) < 0.02 < kid.kid(x, y + 1.0)


def test_feature_sample_keeps_the_first_rows():
    sample = kid.FeatureSample(5)
    for start in (0, 3, 6):
        sample.add(np.arange(start, start + 3, dtype=np.float64)[:, None])
    np.testing.assert_array_equal(sample.array()[:, 0], [0, 1, 2, 3, 4])
