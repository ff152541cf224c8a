"""Every shipped config loads and builds; overrides of derived quantities take effect."""

import os

import numpy as np
import pytest
import torch

from scripts.config import build
from tests.helpers import CONFIG_FILES, ROOT, load_config_file

UPSTREAM_KEYS = [
    "training.batch_size",
    "training.n_iters",
    "training.snapshot_freq",
    "training.snapshot_freq_for_preemption",
    "training.sampling_freq",
    "data.dataset",
    "data.image_size",
    "data.num_channels",
    "model.K",
    "model.sigma",
    "model.blur_sigma_min",
    "model.blur_sigma_max",
    "model.model_channels",
    "model.channel_mult",
    "model.num_res_blocks",
    "model.attention_levels",
    "model.dropout",
    "model.ema_rate",
    "optim.lr",
    "optim.warmup",
    "optim.grad_clip",
    "seed",
]


def test_the_paper_configs_are_shipped():
    names = {os.path.relpath(p, ROOT) for p in CONFIG_FILES}
    for expected in [
        "configs/mnist/default_mnist_configs.py",
        "configs/mnist/small_mnist.py",
        "configs/mnist/quickstart.py",
        "configs/mnist/quick_ddpm.py",
        "configs/mnist/quick_blurring.py",
        "configs/mnist/quick_ddpm_itd.py",
        "configs/cifar10/default_cifar10_configs.py",
        "configs/afhq/default_afhq_configs.py",
        "configs/afhq/img_size_64.py",
        "configs/ffhq/default_ffhq_configs.py",
        "configs/ffhq/img_size_128_maxblur128.py",
        "configs/lsun_church/default_lsun_configs.py",
        "configs/cifar10/default_cifar10_configs_bd.py",
        "configs/cifar10/default_cifar10_configs_bd_noblur.py",
        "configs/mnist/linear_maps/identity.py",
        "configs/mnist/linear_maps/random_matrix.py",
        "configs/mnist/linear_maps/random_matrix_product.py",
        "configs/mnist/linear_maps/constant_velocity.py",
        "configs/mnist/linear_maps/constant_deceleration.py",
        "configs/mnist/ddpm_itd.py",
        "configs/toy2d/spiral.py",
        "configs/toy2d/two_moons.py",
        "configs/toy2d/gaussian_mixture.py",
        "configs/toy2d/correlated_gaussian.py",
    ]:
        assert expected in names


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: os.path.relpath(p, ROOT))
def test_config_loads_and_builds(path):
    config = load_config_file(path)
    for key in UPSTREAM_KEYS:
        node = config
        for part in key.split("."):
            node = node[part]
    process = build.build_process(config)
    with torch.device("meta"):  # the structure only: paper-sized networks, no memory
        net = build.build_network(config)
    shape = build.data_shape(config)
    assert process.K == config.model.K
    small = torch.zeros(1, *shape)
    with torch.no_grad():
        levels = torch.full((1,), config.model.K)
        assert process.operator(small, levels).shape == small.shape
    assert sum(p.numel() for p in net.parameters()) > 0


def test_overrides_of_K_and_blur_take_effect():
    config = load_config_file(os.path.join(ROOT, "configs", "mnist", "default_mnist_configs.py"))
    config.model.K = 10
    config.model.blur_sigma_max = 7.0
    operator = build.build_operator(config)
    assert operator.K == 10 and operator.blur_sigmas.shape == (11,)
    assert float(operator.blur_sigmas[-1]) == pytest.approx(7.0)


def test_paper_settings():
    cifar = load_config_file(os.path.join(ROOT, "configs", "cifar10", "default_cifar10_configs.py"))
    assert (cifar.model.K, cifar.model.blur_sigma_max, tuple(cifar.model.channel_mult)) == (200, 24.0, (1, 2, 2, 2))
    lsun = load_config_file(os.path.join(ROOT, "configs", "lsun_church", "default_lsun_configs.py"))
    assert (lsun.model.K, lsun.model.blur_sigma_max, lsun.data.image_size, lsun.optim.lr) == (400, 64.0, 128, 2e-5)


@pytest.fixture(scope="module")
def image_folders(tmp_path_factory):
    """Tiny generated image folders, one gray and one colour, standing in for every dataset."""
    from PIL import Image

    folders = {}
    generator = np.random.default_rng(0)
    for channels, mode in [(1, "L"), (3, "RGB")]:
        folder = tmp_path_factory.mktemp(f"images{channels}")
        for i in range(8):
            array = generator.integers(0, 256, size=(12, 12, channels), dtype=np.uint8)
            Image.fromarray(array[:, :, 0] if channels == 1 else array, mode).save(folder / f"{i}.png")
        folders[channels] = str(folder)
    return folders


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: os.path.relpath(p, ROOT))
def test_tiny_training_run_of_every_config(path, image_folders, tmp_path):
    """The config's process, operator and prior, shrunk, for 3 steps, then samples.

    8x8 images (2D points stay), a tiny network, K <= 8, a blur kernel of at most 7 pixels.
    """
    from scripts.sampling.sampler import sample
    from scripts.training.trainer import Trainer

    config = load_config_file(path)
    if build.data_kind(config) == "image" and config.model.num_classes:  # needs labels: the embedded digits
        config.data.update(dataset="mnist5k", root="", image_size=8, num_channels=1)
    elif build.data_kind(config) == "image":
        config.data.dataset, config.data.root, config.data.image_size = (
            "image_folder",
            image_folders[config.data.num_channels],
            8,
        )
    config.model.update(
        dict(
            K=min(config.model.K, 8),
            kernel_size=min(config.model.kernel_size, 7),  # cold_blur's kernel fits the 8x8 images
            model_channels=8,
            channel_mult=(1, 2),
            num_res_blocks=1,
            attention_levels=(1,),
            mlp_hidden=16,
        )
    )
    if config.model.process == "hflow":  # its pyramid on 8x8 images: 8 -> 4 -> 2, one value per level key
        config.model.update(dict(hflow_resolutions=(8, 4, 2), K=3, hflow_latent_channels=(0,)))
        config.model.update(dict(hflow_coupling_layers=(2,), hflow_coupling_channels=(8,), hflow_encoder_channels=(4,)))
        config.model.update(dict(hflow_prior_stds=(1.0,), hflow_loss_weights=config.model.hflow_loss_weights[:1]))
    config.training.update(
        dict(
            batch_size=4,
            batch_per_device=0,
            n_iters=3,
            snapshot_freq=3,
            snapshot_freq_for_preemption=3,
            sampling_freq=100,
            log_freq=1,
            num_workers=0,
        )
    )
    trainer = Trainer(config, str(tmp_path), torch.device("cpu"))
    state = trainer.run()
    assert state.step == 3
    out = sample(
        trainer.process,
        state.ema.shadow,
        trainer.prior,
        mode="random",
        count=2,
        seed=0,
        shape=trainer.shape,
        device="cpu",
    )
    assert out["samples"].shape == (2, *build.data_shape(config)) and torch.isfinite(out["samples"]).all()
