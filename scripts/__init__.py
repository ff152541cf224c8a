"""Runtime machinery, grouped by job; the modules at this level are stand-alone commands.

    python -m scripts.visualize_forward | scripts.suggest_logsnr | scripts.benchmark_blur

cli/ (flags, errors), config/ (config -> objects), runs/ (run directory, checkpoints, loading a
trained model), runtime/ (devices), data/, training/, sampling/, evaluation/.
"""
