"""Every configuration key, with its default, grouped by the component that reads it.

Experiment files start from ``get_default_configs()`` and change what differs. Nothing here is
derived from another key: schedules and other derived values are computed in code, so a command
line override such as ``--config.model.K=50`` always takes effect. Every key has one rule in
scripts/config/validate.py (its allowed values, checked before anything runs, and whether it changes the
trained model, the samples or neither).
"""

import ml_collections


def get_default_configs():
    config = ml_collections.ConfigDict()
    config.seed = 42  # training seed (data order, levels, noise, dropout); recorded in the run

    # --- training loop (scripts/training/trainer.py)
    config.training = training = ml_collections.ConfigDict()
    training.batch_size = 128  # the global batch, over every process (torchrun / mpiexec)
    # examples per device and accumulation round; 0: the whole per-process share in one round
    training.batch_per_device = 0
    training.n_iters = 1_300_001
    # periods in steps; 0 switches the action off (the final state is saved and the last step logged regardless)
    training.snapshot_freq = 50_000  # numbered snapshots checkpoints/checkpoint_{step // snapshot_freq}.pth
    training.snapshot_freq_for_preemption = 5_000  # checkpoints-meta/checkpoint.pth (resume point)
    training.sampling_freq = 10_000  # sample grid into samples/ and TensorBoard
    training.log_freq = 50  # TensorBoard scalars
    # periods in minutes of wall time (hflow's *_every_hours), beside the step periods; 0 switches one off
    training.checkpoint_minutes = 0.0  # checkpoints-meta/checkpoint.pth (the resume point)
    training.sampling_minutes = 0.0  # sample grid
    training.fid_minutes = 0.0  # FID of the EMA model (as fid_freq)
    training.num_samples = 36  # images in each periodic sample grid
    training.fid_freq = 0  # FID of the EMA model against the training split's reference statistics; 0 = off
    training.fid_num_gen = 1000  # generated images per FID during training (image i from seed i: the same each time)
    training.fid_feature_net = "inception"  # 'inception', or 'fast_random_conv' (quick, not comparable; labelled)
    training.fid_stats_dir = "data/fid_stats"  # cache of reference statistics (shared with evaluate.py)
    # the network's precision: 'auto' (bf16 where the GPU or CPU computes it natively, float32 elsewhere) | 'bf16' |
    # 'fp16' (CUDA only, with loss scaling) | 'no' (float32); operators, losses and ELBO terms are float32 always
    training.mixed_precision = "auto"
    training.num_workers = 0  # DataLoader workers for image folders (in-memory datasets stay on the device)
    # speed options (python -m scripts.benchmark_train measures each against its absence)
    training.channels_last = False  # network weights and input in channels-last memory order
    training.compile = False  # torch.compile the network's training pass (CPU quickstart: +5%, at noise level)
    training.tf32 = True  # CUDA: TF32 float32 convolutions (matrix products stay IEEE for the operators)

    # --- data (scripts/data/datasets/)
    config.data = data = ml_collections.ConfigDict()
    # mnist5k | mnist | cifar10 | image_folder | afhq | ffhq | lsun_church | 2D: spiral, two_moons, gaussian_mixture,
    # correlated_gaussian
    data.dataset = "mnist5k"
    data.image_size = 28  # int, or a pair (H, W) for rectangular images
    data.num_channels = 1
    data.root = (
        ""  # where the dataset lives (downloads go here; a folder or .zip for image sets); '' means data/<dataset>
    )
    data.random_flip = False  # random horizontal flips during training
    data.uniform_dequantization = False  # (255 x + u) / 256 during training

    # --- forward process (model_code/operators/, model_code/processes/)
    config.model = model = ml_collections.ConfigDict()
    model.process = "ihdm"  # ihdm | gaussian | cold | hflow
    # operator: heat | blur | identity | random_matrix | random_matrix_product | constant_velocity |
    # constant_deceleration | cold_blur | mask | pixelate | desaturate (the last four: Cold Diffusion's) | haar_pyramid
    model.forward = "heat"
    model.K = 100  # number of levels
    model.sigma = 0.01  # ihdm: training noise std (data in [0, 1])
    model.delta = ml_collections.config_dict.placeholder(
        float
    )  # ihdm: sampling noise std; None: 1.25 sigma (--delta overrides)
    model.blur_sigma_min = 0.5  # heat: sigma_B at level 1
    model.blur_sigma_max = 20.0  # heat: sigma_B at level K
    model.blurring_sigma_max = 20.0  # blur: sigma_B(t) = blurring_sigma_max sin^2(pi t / 2); 0: no blur (DDPM)
    model.min_scale = 0.001  # blur: d_min, the floor of every frequency's scale
    model.operator_seed = 0  # random_matrix*: seed of the matrices; mask: of its seeded centre (stored in checkpoints)
    model.kernel_size = 11  # cold_blur: odd side of the Gaussian kernel, at most the image's shorter side
    model.kernel_std = 0.35  # cold_blur: s_i = kernel_std (constant), kernel_std (i+1) (incremental),
    # exp(kernel_std i) (exponential), kernel_std + kernel_std_step i (linear), step i = 0..K-1
    model.kernel_std_step = 0.01  # cold_blur: the linear routine's step (0.35, 0.01: Cold's CIFAR-10)
    model.blur_routine = "linear"  # cold_blur: constant | incremental | exponential | linear
    model.blur_padding = "reflect"  # cold_blur: reflect (torch's) | circular (Cold's default)
    model.mask_std = 0.1  # mask: s_i = mask_std (i + mask_initial) (incremental) or mask_std (constant), pixels
    model.mask_initial = 1.0  # mask: the incremental routine's offset (>= 0)
    model.mask_routine = "incremental"  # mask: incremental | constant
    model.mask_centre = "centre"  # mask: centre (the image's) | seeded (a pixel drawn from operator_seed)
    model.pixelate_every = 1  # pixelate: levels per halving of the resolution (2^ceil(K/every) must divide H, W)
    model.desaturate_routine = "constant"  # desaturate: constant (s_k = desaturate_factor^k) | linear (1 - k/K)
    model.desaturate_factor = 0.9  # desaturate: the constant routine's factor per level, in (0, 1]
    model.loss_norm = "l1"  # cold: l1 (Cold Diffusion's) | l2, of the restored image's error
    model.prior_noise = 0.002  # cold: std of the prior components around A_K x0 (Cold's --noise; data in [-1, 1])
    model.prior = "kde"  # kde (training images at level K + noise) | fitted_gaussian | standard_normal | gmm
    model.gmm_components = 1  # gmm: Gaussian components over the channel means at level K (Cold's --gmm_cluster)
    # gaussian process
    model.continuous_time = True  # t ~ U(0, 1) during training; False: t = k / K, k ~ U{1..K}
    model.logsnr_min = -10.0  # cosine log-SNR schedule clipped to [logsnr_min, logsnr_max]
    model.logsnr_max = 10.0
    model.clip_denoised = True  # clip the estimate of x0 to the data range while sampling
    model.logsnr_sampling = (
        "schedule"  # schedule | logistic (identity operator only: log SNR ~ logistic(loc, scale), weighted)
    )
    model.logistic_loc = 0.0  # logistic log-SNR location; python -m scripts.suggest_logsnr suggests it
    model.logistic_scale = 2.0  # logistic log-SNR scale (> 0); also used by evaluate.py --mode=nll_itd
    model.prediction = "eps"  # what the network predicts: eps | v (v = alpha eps - sigma x, per coefficient)
    # hflow process (haar_pyramid operator, hflow network, standard_normal prior); per-level tuples list the
    # resolutions' levels in order, the finest first; a single value serves every level
    model.hflow_resolutions = (28, 14, 7)  # the image height, then each halved one or more times (K = their count)
    model.hflow_latent_channels = (0,)  # channels of each level's flow: 0 its own (C (4^m - 1); C), else x 4^j
    model.hflow_coupling_layers = (4,)  # flow steps (actnorm, 1x1 conv, affine coupling) per level
    model.hflow_coupling_channels = (32,)  # hidden channels of each coupling network
    model.hflow_encoder_channels = (16,)  # features of the conv encoder of the coarser image (unused at the coarsest)
    model.hflow_prior_stds = (1.0,)  # s_j: z_j ~ N(0, s_j^2 I)
    model.hflow_loss_weights = (1.0,)  # w_j of each level's NLL in the training loss (reported NLLs: unweighted)
    model.hflow_encoder_lr_scale = 1.0  # the condition encoders' learning rate over optim.lr (hflow's A: 0.1)
    model.hflow_noise_std = 0.0  # std of Gaussian noise added to the dequantised training images (hflow's 0.005)

    # --- network (model_code/networks/)
    model.network = "unet"  # unet | mlp (flat data such as 2D points) | hflow (the hflow process's flows)
    model.mlp_hidden = 128  # mlp: hidden width
    model.mlp_depth = 3  # mlp: hidden layers
    model.model_channels = 128
    model.channel_mult = (1, 2, 2)
    model.num_res_blocks = 4
    model.attention_levels = (2,)  # indices into channel_mult (level i works at image_size / 2^i)
    model.scale_shift_norm = True  # unet: the embedding scales and shifts the GroupNorm (False: added before it,
    # where a level of <= 32 channels, one channel per group, normalises it away: the runs stored before the key)
    model.dropout = 0.1
    model.checkpoint_activations = False  # unet: recompute each block's activations in the backward pass (memory)
    model.num_classes = 0  # C > 0: class-conditional on the data's labels 0..C-1 (mnist5k, mnist, cifar10: 10)
    model.label_dropout = 0.1  # conditional: the probability of training a row without its label (CFG's null class)
    model.ema_rate = 0.999  # EMA decay once warmed up: min(ema_rate, 0.5^(1 / (ema_rampup_ratio n))) at step n + 1
    model.ema_rampup_ratio = 0.05  # the EMA's half-life is at most this share of the images seen (EDM's ramp)

    # --- optimiser (scripts/training/trainer.py)
    config.optim = optim = ml_collections.ConfigDict()
    optim.optimizer = "Adam"
    optim.lr = 2e-4
    optim.beta1 = 0.9
    optim.beta2 = 0.999
    optim.eps = 1e-8
    optim.weight_decay = 0.0
    optim.warmup = 5_000  # linear learning-rate warm-up steps
    optim.grad_clip = 1.0  # clip the global gradient norm (<= 0 disables)
    optim.implementation = "auto"  # Adam kernels: auto (fused on CUDA, foreach on CPU) | fused | foreach | for_loop

    # --- sampling and evaluation (sample.py, evaluate.py)
    config.eval = evaluation = ml_collections.ConfigDict()
    evaluation.batch_size = 128
    evaluation.seed = 0  # base seed of sampling and evaluation: image i uses a seed derived from (seed, i)
    evaluation.elbo_passes = 1  # Monte-Carlo passes over the test set for the ELBO
    evaluation.num_test = 0  # test images used by the ELBO (0: all)
    return config
