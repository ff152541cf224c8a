"""Evaluate a trained run: FID (clean-fid), the ELBO breakdown, the information-theoretic NLL (nll_itd), the
probability-flow ODE likelihood (nll_ode) or, for class-conditional digit models, the class accuracy.

    python evaluate.py --config CONFIG --workdir WORKDIR --checkpoint 0 --dataset_name=cifar10
        --experiment_name=experiment1 --param_name=default --mode=fid --delta=0.013
        --dataset_name_cleanfid=cifar10 --dataset_split=train --batch_size=128 --num_gen=50000
    python evaluate.py ... --mode=elbo --delta=0.013
    python evaluate.py --workdir WORKDIR --mode=fid --num_gen=1000 --steps=50 --eta=0   # gaussian: 50 DDIM steps
    python evaluate.py --workdir WORKDIR --mode=fid --num_gen=1000 --sampler=dpmpp_2m --steps=20 --grid=logsnr
    python evaluate.py --workdir WORKDIR --mode=nll_ode --num_test=500 --hutchinson_probes=1   # gaussian process
    python evaluate.py --workdir WORKDIR --mode=fid --num_gen=1000 --guidance=1          # class-conditional: CFG
    python evaluate.py --workdir WORKDIR --mode=class_accuracy --num_gen=1000 --guidance=1   # conditional digits
    python evaluate.py --workdir WORKDIR --mode=restore --from_level=20 --num_test=1000   # cold: restoration table

--config may be left out (the checkpoint carries the run's config). Results are appended to
WORKDIR/evaluation_results/EXPERIMENT_NAME/log.txt and stored in results.json there, keyed by
--param_name; the last line printed is the headline (for --mode=fid its last number is the FID).
"""

from absl import flags
from ml_collections import config_flags

from scripts.cli import sampling_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Configuration file; default: the checkpoint's own.", lock_config=True)
flags.DEFINE_string("workdir", None, "Run directory of a training run.")
flags.DEFINE_integer("checkpoint", 0, "0: the latest checkpoint (checkpoints-meta); N: checkpoints/checkpoint_N.pth.")
flags.DEFINE_string(
    "mode",
    "fid",
    "fid | fid_ref (reference statistics only) | elbo | nll_itd | nll_ode | class_accuracy (digits) | restore",
)
flags.DEFINE_string("experiment_name", "default", "Folder under WORKDIR/evaluation_results/.")
flags.DEFINE_string("param_name", "default", "Key of this result within the experiment (e.g. delta0.013).")
flags.DEFINE_float("delta", None, "Sampling / reverse-step noise std (ihdm); default: the config's.")
sampling_flags.define()  # fid, restore: --sampler, --grid, --steps, --eta, --churn, --mixed_precision
flags.DEFINE_integer("batch_size", None, "Batch size; default: config.eval.batch_size.")
flags.DEFINE_integer("seed", None, "Base seed; default: config.eval.seed.")
flags.DEFINE_string("dataset_name", None, "Name of the dataset in the results (default: config.data.dataset).")
# fid
flags.DEFINE_integer("num_gen", 50000, "fid, class_accuracy: number of generated images (image i uses seed i).")
flags.DEFINE_integer(
    "num_seeds", 1, "fid: disjoint seed sets (set s: images s*num_gen..(s+1)*num_gen-1); each FID, mean, std."
)
flags.DEFINE_string("dataset_name_cleanfid", None, "fid: reference statistics name (default: config.data.dataset).")
flags.DEFINE_string("dataset_split", "train", "fid: split of the reference statistics (train | test).")
flags.DEFINE_string(
    "feature_net", "inception", "fid: inception (standard) | fast_random_conv (quick checks, not comparable)."
)
flags.DEFINE_string("stats_dir", "data/fid_stats", "fid: cache of reference statistics.")
flags.DEFINE_string("classifier_dir", "data/classifiers", "class_accuracy: cache of the digit classifier.")
# elbo
flags.DEFINE_integer(
    "elbo_passes", None, "elbo: Monte-Carlo passes over the test set (default: config.eval.elbo_passes)."
)
flags.DEFINE_integer(
    "num_test", None, "elbo / nll_itd / nll_ode / restore: test images to use, 0 = all (default: config.eval.num_test)."
)
# nll_itd
flags.DEFINE_integer("num_logsnr", 100, "nll_itd: log-SNR draws per test image.")
flags.DEFINE_float("logsnr_loc", None, "nll_itd: logistic location (default: config.model.logistic_loc).")
flags.DEFINE_float("logsnr_scale", None, "nll_itd: logistic scale > 0 (default: config.model.logistic_scale).")
flags.DEFINE_bool(
    "variational_bound",
    True,
    "nll_itd: also compute the process's K-step variational bound (saved after the estimate); "
    "--novariational_bound skips it.",
)
# nll_ode
flags.DEFINE_float("ode_rtol", 1e-5, "nll_ode: relative tolerance of the adaptive ODE solver (RK45).")
flags.DEFINE_float("ode_atol", 1e-5, "nll_ode: absolute tolerance of the adaptive ODE solver (RK45).")
flags.DEFINE_integer(
    "hutchinson_probes",
    None,
    "nll_ode: Rademacher probes per image for Hutchinson's divergence estimate; default: the exact divergence "
    "for inputs of at most 256 dimensions, 1 probe above.",
)
# restore
flags.DEFINE_integer("from_level", None, "restore: the level 1..K the test images are degraded to (default: K).")
flags.mark_flags_as_required(["workdir"])


def run() -> None:
    """Collect the flags into a request, check it (before torch is imported), evaluate it."""
    from scripts.evaluation.request import EvaluationRequest, check_request

    request = EvaluationRequest(
        config=FLAGS.config,
        workdir=FLAGS.workdir,
        checkpoint=FLAGS.checkpoint,
        mode=FLAGS.mode,
        experiment_name=FLAGS.experiment_name,
        param_name=FLAGS.param_name,
        delta=FLAGS.delta,
        sampling=sampling_flags.options(FLAGS),
        batch_size=FLAGS.batch_size,
        seed=FLAGS.seed,
        dataset_name=FLAGS.dataset_name,
        num_gen=FLAGS.num_gen,
        num_seeds=FLAGS.num_seeds,
        dataset_name_cleanfid=FLAGS.dataset_name_cleanfid,
        dataset_split=FLAGS.dataset_split,
        feature_net=FLAGS.feature_net,
        stats_dir=FLAGS.stats_dir,
        classifier_dir=FLAGS.classifier_dir,
        elbo_passes=FLAGS.elbo_passes,
        num_test=FLAGS.num_test,
        num_logsnr=FLAGS.num_logsnr,
        logsnr_loc=FLAGS.logsnr_loc,
        logsnr_scale=FLAGS.logsnr_scale,
        variational_bound=FLAGS.variational_bound,
        ode_rtol=FLAGS.ode_rtol,
        ode_atol=FLAGS.ode_atol,
        hutchinson_probes=FLAGS.hutchinson_probes,
        from_level=FLAGS.from_level,
    )
    check_request(request)
    from scripts.evaluation.evaluator import evaluate

    evaluate(request)


if __name__ == "__main__":
    from scripts.cli.command import run_command

    run_command(run)
