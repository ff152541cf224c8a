"""evaluate.py --mode=restore: Cold Diffusion's "Degraded / Direct / Sampled" table over the test split.

Every test image x (``--num_test`` of them, 0: all) is taken to level k = ``--from_level`` (default K) by the run's
operator; the table compares with x, per image in [0, 1]: the degraded image u_k, the one-step estimate
x0_hat(u_k, k) ("direct") and the reverse process from u_k ("sampled"): mean RMSE, mean SSIM, and the FID of each
set against the reference statistics of ``--dataset_split``. Image i uses seeds (seed, i); batches are shared
out over the processes and the sums combined, so the table is the same for any number of them.
"""

from __future__ import annotations

from typing import Any, Dict, List

import torch
from tqdm import tqdm

from scripts.config import build
from scripts.evaluation import fid
from scripts.evaluation.image_metrics import check_ssim_size, rmse, ssim
from scripts.runtime import distributed
from scripts.sampling.imaging import to_unit
from scripts.sampling.restoration import check_restoration, restore

ROWS = ("degraded", "direct", "restored")  # the table's rows, as ``restore`` names them
ROW_NAMES = {"degraded": "Degraded", "direct": "Direct", "restored": "Sampled"}


def in_unit_range(out: Dict[str, torch.Tensor], data_range) -> Dict[str, torch.Tensor]:
    """The degraded images, one-step and sampled restorations of ``restore``'s output, each [B, C, H, W] in the
    data range, as images in [0, 1] (clamped)."""
    return {row: to_unit(out[row], data_range).clamp(0, 1) for row in ROWS}


def fidelity(units: Dict[str, torch.Tensor], truth: torch.Tensor) -> Dict[str, torch.Tensor]:
    """{'rmse_<row>', 'ssim_<row>'}: per image [B], each row of ``units`` against the originals ``truth``
    [B, C, H, W], all in [0, 1]."""
    scores = {}
    for row in ROWS:
        scores[f"rmse_{row}"], scores[f"ssim_{row}"] = rmse(units[row], truth), ssim(units[row], truth)
    return scores


def check_restore_request(request, model, data_kind: str) -> int:
    """The level k of a restore request (--from_level, default K), refused in one line unless the model can
    restore, k lies in 1..K (``check_restoration``) and its images hold SSIM's window."""
    level = check_restoration(model.process, data_kind, request.from_level)
    check_ssim_size(model.shape[1:])
    return level


def run_restore(
    request, config, model, spec, feature_net, reference, *, level: int, seed: int, batch_size: int, device
) -> Dict[str, Any]:
    """{'from_level', 'num_test', 'rmse_degraded', 'ssim_direct', 'fid_restored', ..., 'nfe', 'headline'}: the table
    of the module docstring from ``level`` (``check_restore_request``); ``reference`` the FID reference statistics
    of ``feature_net``."""
    test_data = build.build_data(config, "test", model.process)
    num_test = config.eval.num_test if request.num_test is None else request.num_test
    count = len(test_data) if not num_test else min(num_test, len(test_data))
    if count < 2:
        raise ValueError(f"--num_test={num_test}: the FIDs need at least 2 test images; allowed: 2 or more, 0 for all")
    sums = {f"{metric}_{row}": torch.zeros((), dtype=torch.float64) for metric in ("rmse", "ssim") for row in ROWS}
    outputs: Dict[int, Dict[str, torch.Tensor]] = {}
    spent = set()
    bar = tqdm(total=count, desc="restore", dynamic_ncols=True, disable=not distributed.is_main())
    for rows in distributed.my_blocks(count, batch_size):
        originals = test_data.prepare(test_data.raw_batch(rows).to(device), augment=False)
        out = restore(model.process, model.net, originals, level, rows=rows, seed=seed, spec=spec)
        spent.add(out["nfe"])
        units = in_unit_range(out, model.process.data_range)
        for key, values in fidelity(units, to_unit(originals, model.process.data_range)).items():
            sums[key] += values.sum().cpu()
        outputs[rows.start] = {row: units[row].cpu() for row in ROWS}
        bar.update(len(rows) * distributed.world_size())
    bar.close()
    totals = {key: sum(part[key] for part in distributed.gather_objects(sums)) for key in sums}
    result: Dict[str, Any] = {key: float(value) / count for key, value in totals.items()}
    for row in ROWS:
        generate = lambda start, size, row=row: outputs[start][row][:size]
        result[f"fid_{row}"] = fid.fid_from_generator(generate, count, batch_size, feature_net, reference)
    nfe = distributed.max_over_ranks(max(spent, default=0))
    result.update(from_level=level, num_test=count, nfe=nfe, feature_network=feature_net.name)
    result["table"] = table_lines(result)
    result["headline"] = f"restoration from level {level} of {count} test images ({nfe} NFE): " + ", ".join(
        f"{ROW_NAMES[row]} RMSE {result[f'rmse_{row}']:.4f} SSIM {result[f'ssim_{row}']:.4f} "
        f"FID {result[f'fid_{row}']:.2f}"
        for row in ROWS
    )
    return result


def table_lines(result: Dict[str, Any]) -> List[str]:
    """The table as text lines: a header, then Degraded / Direct / Sampled with RMSE, SSIM and FID."""
    lines = [f"{'':10s} {'RMSE':>8s} {'SSIM':>8s} {'FID':>9s}"]
    for row in ROWS:
        rmse_value, ssim_value, fid_value = (result[f"{metric}_{row}"] for metric in ("rmse", "ssim", "fid"))
        lines.append(f"{ROW_NAMES[row]:10s} {rmse_value:8.4f} {ssim_value:8.4f} {fid_value:9.2f}")
    return lines
