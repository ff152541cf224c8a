"""Runtime machinery, grouped by job; the modules at this level are stand-alone commands.

    python -m scripts.visualize_forward | suggest_logsnr | benchmark_blur | benchmark_train | compare_ema

cli/ (flags, errors), config/ (config -> objects, validation), runs/ (run directory, checkpoints,
loading a trained model), runtime/ (the distributed context and device, the torchvision workaround),
data/, training/, sampling/, evaluation/.
"""
