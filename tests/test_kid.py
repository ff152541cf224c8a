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


@pytest.mark.parametrize("count, block, capacity", [(23, 4, 10), (23, 4, 30), (9, 5, 7)])
def test_feature_sample_keeps_the_same_rows_for_any_number_of_processes(monkeypatch, count, block, capacity):
    """Each simulated rank streams its ``my_blocks`` batches (row j holds image j) and the ranks' parts are
    merged as ``feature_statistics`` merges them: always images 0..capacity-1, in order."""
    from scripts.runtime import distributed

    rows = np.arange(count, dtype=np.float64)[:, None]
    for world in (1, 2, 3):
        parts_per_rank = []
        for rank in range(world):
            monkeypatch.setattr(distributed, "_context", distributed.Context(rank=rank, world_size=world))
            sample = kid.FeatureSample(capacity)
            for indices in distributed.my_blocks(count, block):
                sample.add(rows[indices.start : indices.stop])
            parts_per_rank.append(sample.parts)
        merged = kid.FeatureSample(capacity)
        merged.merge(parts_per_rank)
        np.testing.assert_array_equal(merged.array()[:, 0], np.arange(min(count, capacity)), err_msg=f"{world=}")
