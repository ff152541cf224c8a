from configs.default import get_default_configs


def get_config():
    config = get_default_configs()
    config.data.image_size = 8
    config.model.K = 5
    config.model.blur_sigma_max = 4.0
    config.model.blurring_sigma_max = 4.0
    config.model.model_channels = 8
    config.model.channel_mult = (1, 2)
    config.model.num_res_blocks = 1
    config.model.attention_levels = (1,)
    config.model.dropout = 0.1
    config.training.batch_size = 16
    config.training.n_iters = 20
    config.training.snapshot_freq = 10
    config.training.snapshot_freq_for_preemption = 5
    config.training.sampling_freq = 10
    config.training.log_freq = 5
    config.training.num_samples = 4
    config.optim.warmup = 5
    config.training.mixed_precision = (
        "no"  # float32 on every machine: the suite's numbers do not depend on bf16 hardware
    )
    return config
