"""Runtime machinery: config handling, data, training, sampling, evaluation, checkpoints."""
