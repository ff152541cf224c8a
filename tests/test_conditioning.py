"""Class conditioning: labels bound to the network, classifier-free guidance, label dropout, labels per image,
and the commands that pass them (training, sample.py, evaluate.py, the API).

Oracles: data of class c has independent coefficients N(m_c, s_c^2) (``GaussianDataOracle`` per class), the
unconditional rows those of N(m_u, s_u^2), so the exact conditional eps of every row is known in closed form.
"""

import json
import os

import numpy as np
import pytest
import torch

from model_code.conditioning import NO_LABEL, LabelChoice, conditioned, drop_labels, uniform_label
from model_code.randomness import ExampleRandomness
from model_code.samplers.spec import SamplingSpec
from scripts.runs.rundir import config_from_dict
from scripts.sampling.sampler import sample
from scripts.training.trainer import Trainer
from tests.configs import tiny
from tests.helpers import GaussianDataOracle, make_process, run_command

SIZE = 4
CLASS_MEANS = torch.tensor([-0.6, 0.0, 0.5]).view(3, 1, 1, 1, 1) * torch.ones(3, 1, 1, SIZE, SIZE)
CLASS_STD = 0.1


class ClassOracle(torch.nn.Module):
    """The exact eps of each row's class (x | c ~ N(m_c, 0.1^2) per coefficient); NO_LABEL rows and calls
    without labels get that of N(0.2, 0.5^2). Counts its calls and the rows it saw."""

    num_classes = 3

    def __init__(self, process):
        super().__init__()
        self.per_class = [GaussianDataOracle(process, mean, CLASS_STD * torch.ones_like(mean)) for mean in CLASS_MEANS]
        self.unconditional = GaussianDataOracle(process, 0.2 * torch.ones_like(CLASS_MEANS[0]), 0.5)
        self.calls, self.rows = 0, 0

    def forward(self, u, time, labels=None):
        self.calls, self.rows = self.calls + 1, self.rows + len(u)
        labels = torch.full((len(u),), NO_LABEL) if labels is None else labels
        out = self.unconditional(u, time)
        for c, oracle in enumerate(self.per_class):
            out = torch.where((labels == c).view(-1, 1, 1, 1), oracle(u, time), out)
        return out


def gaussian_process(K=100):
    return make_process("gaussian", "identity", K, SIZE, clip_denoised=False)


def draw(process, net, count, spec, seed=0):
    return sample(
        process,
        net,
        StandardNormal(),
        mode="random",
        count=count,
        seed=seed,
        shape=(1, SIZE, SIZE),
        device="cpu",
        spec=spec,
    )["samples"]


class StandardNormal:
    def sample(self, generators, shape, device, temperature=1.0):
        return temperature * torch.stack([torch.randn(shape, generator=g) for g in generators])


def test_guidance_is_one_batch_of_both_halves_combined_in_the_predicted_quantity():
    process = gaussian_process()
    net = ClassOracle(process)
    u, time, labels = torch.randn(4, 1, SIZE, SIZE), torch.full((4,), 300.0), torch.tensor([0, 2, 1, NO_LABEL])
    assert torch.equal(conditioned(net, labels, 0.0)(u, time), net(u, time, labels))
    net.calls = net.rows = 0
    guided = conditioned(net, labels, 2.5)(u, time)
    assert (net.calls, net.rows) == (1, 8)
    expected = 3.5 * net(u, time, labels) - 2.5 * net(u, time)
    torch.testing.assert_close(guided, expected, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(guided[3], net(u, time)[3], atol=1e-6, rtol=0)  # a row without a label: unguided
    assert conditioned(net, None) is net
    with pytest.raises(ValueError, match="guidance=1.0 needs class labels"):
        conditioned(net, None, 1.0)
    for bad in (-0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="a finite number >= 0"):
            conditioned(net, labels, bad)


def test_conditional_samples_follow_their_class_in_a_grid_of_one_row_per_class():
    process = gaussian_process()
    spec = SamplingSpec(classes=LabelChoice((2, 0, 1), per_class=300))
    samples = draw(process, ClassOracle(process), 900, spec)
    for row, c in enumerate((2, 0, 1)):
        drawn = samples[row * 300 : (row + 1) * 300]
        assert abs(drawn.mean() - CLASS_MEANS[c].mean()) < 4 * CLASS_STD / (300 * SIZE * SIZE) ** 0.5 + 0.01
        assert abs(drawn.std() - CLASS_STD) < 0.02


def test_guided_sampling_equals_sampling_the_guided_network_bound_by_hand():
    process = gaussian_process()
    net = ClassOracle(process)
    spec = SamplingSpec(sampler="ddim", eta=0.0, steps=20, guidance=1.5, classes=LabelChoice((0, 2)))
    guided = draw(process, net, 6, spec)
    labels = torch.tensor([0, 2, 0, 2, 0, 2])

    class ByHand(torch.nn.Module):
        def forward(self, u, time):
            return 2.5 * net(u, time, labels) - 1.5 * net(u, time, torch.full_like(labels, NO_LABEL))

    unguided = SamplingSpec(sampler="ddim", eta=0.0, steps=20)
    torch.testing.assert_close(guided, draw(process, ByHand(), 6, unguided), atol=1e-6, rtol=1e-6)
    assert not torch.allclose(guided, draw(process, net, 6, SamplingSpec(sampler="ddim", eta=0.0, steps=20)))


def test_drawn_labels_depend_on_the_seed_and_the_image_alone_and_are_uniform():
    choice = LabelChoice()
    full = choice.labels(range(3000), seed=7, num_classes=10)
    torch.testing.assert_close(choice.labels(range(1000, 1010), seed=7, num_classes=10), full[1000:1010])
    counts = torch.bincount(full, minlength=10).float()
    assert (counts - 300).abs().max() < 4 * (300 * 0.9) ** 0.5
    assert not torch.equal(full[:50], choice.labels(range(50), seed=8, num_classes=10))
    assert uniform_label(7, 5, 10) == int(full[5])
    assert LabelChoice((4, 6)).labels(range(1, 4), 0, 10).tolist() == [6, 4, 6]
    assert LabelChoice((4, 6), per_class=2).labels(range(4), 0, 10).tolist() == [4, 4, 6, 6]
    assert LabelChoice().labels(range(3), 0, 0) is None


@pytest.mark.parametrize(
    "choice, num_classes, message",
    [
        (LabelChoice((3,)), 0, "class labels \\[3\\] given, but this model is unconditional"),
        (LabelChoice((10,)), 10, "class label 10 is outside 0..9"),
        (LabelChoice((-1,)), 10, "class label -1 is outside 0..9"),
    ],
)
def test_classes_a_model_does_not_have_are_refused_in_one_line(choice, num_classes, message):
    with pytest.raises(ValueError, match=message):
        SamplingSpec(classes=choice).check_classes(num_classes)


def test_label_dropout_draws_per_row_from_the_examples_stream():
    labels = torch.arange(1000) % 10
    full = drop_labels(labels, 0.3, ExampleRandomness(5, 2, 1000))
    halves = [drop_labels(labels[s : s + 500], 0.3, ExampleRandomness(5, 2, 1000, s, 500)) for s in (0, 500)]
    assert torch.equal(torch.cat(halves), full)
    dropped = (full == NO_LABEL).float().mean()
    assert abs(dropped - 0.3) < 4 * (0.3 * 0.7 / 1000) ** 0.5
    assert torch.equal(full[full != NO_LABEL], labels[full != NO_LABEL])
    assert torch.equal(drop_labels(labels, 0.0, ExampleRandomness(5, 2, 1000)), labels)
    assert bool((drop_labels(labels, 1.0, ExampleRandomness(5, 2, 1000)) == NO_LABEL).all())
    assert drop_labels(None, 0.3, ExampleRandomness(5, 2, 1000)) is None


def tiny_config(**model):
    config = tiny.get_config()
    config.model.dropout = 0.0
    config.training.sampling_freq = 0
    config.training.n_iters = 3
    config.model.update(model)
    return config


def test_label_dropout_one_trains_exactly_the_unconditional_model(tmp_path):
    cpu = torch.device("cpu")
    unconditional = Trainer(tiny_config(), str(tmp_path / "u"), cpu).run().net.state_dict()
    conditional = Trainer(tiny_config(num_classes=10, label_dropout=1.0), str(tmp_path / "c"), cpu).run()
    state = conditional.net.state_dict()
    assert torch.equal(state.pop("label_embedding.weight"), torch.zeros(10, 8))
    for key, value in unconditional.items():  # equal up to the float summation order of two threads
        torch.testing.assert_close(state[key], value, atol=1e-7, rtol=1e-5, msg=key)
    trained = Trainer(tiny_config(num_classes=10, label_dropout=0.5), str(tmp_path / "d"), cpu).run()
    assert trained.net.state_dict()["label_embedding.weight"].abs().sum() > 0


def test_a_resumed_conditional_run_is_bit_identical(tmp_path):
    cpu = torch.device("cpu")
    settings = dict(num_classes=10, label_dropout=0.5)
    straight = Trainer(tiny_config(**settings), str(tmp_path / "a"), cpu).run()
    first = tiny_config(**settings)
    first.training.n_iters = 1
    Trainer(first, str(tmp_path / "b"), cpu).run()
    resumed = Trainer(tiny_config(**settings), str(tmp_path / "b"), cpu).run()
    for key, value in straight.net.state_dict().items():
        assert torch.equal(value, resumed.net.state_dict()[key]), key


@pytest.mark.parametrize(
    "dataset, num_classes, message",
    [
        ("spiral", 2, "model.num_classes=2: dataset 'spiral' has no class labels"),
        ("mnist5k", 5, "model.num_classes=5: dataset 'mnist5k' has labels 0..9; allowed: model.num_classes >= 10"),
    ],
)
def test_a_conditional_config_on_data_without_fitting_labels_is_refused_before_anything_is_written(
    tmp_path, dataset, num_classes, message
):
    config = tiny_config(num_classes=num_classes)
    if dataset == "spiral":
        config.data.update(dataset="spiral", num_channels=2, image_size=1)
        config.model.update(network="mlp", process="gaussian", forward="identity", prior="standard_normal")
    with pytest.raises(ValueError, match=message):
        Trainer(config, str(tmp_path / "run"), torch.device("cpu"))
    assert not (tmp_path / "run").exists() or os.listdir(tmp_path / "run") == []


def test_the_gaussian_mixture_carries_its_components_and_keeps_its_points():
    from scripts.data.datasets.toy2d import GaussianMixture, Toy2DDataset

    dataset = Toy2DDataset("gaussian_mixture", 400, seed=3)
    assert torch.equal(dataset.points, GaussianMixture().sample(400, torch.Generator().manual_seed(3)))
    nearest = torch.cdist(dataset.points.double(), dataset.distribution.means).argmin(1)
    assert (nearest == dataset.labels).float().mean() > 0.99
    assert Toy2DDataset("spiral", 10).labels is None


def test_runs_stored_before_conditioning_load_as_unconditional_with_the_old_block():
    config = tiny.get_config().to_dict()
    for key in ("num_classes", "label_dropout", "scale_shift_norm"):
        del config["model"][key]
    loaded = config_from_dict(config)
    assert (loaded.model.num_classes, loaded.model.scale_shift_norm) == (0, False)


def test_sample_and_evaluate_a_conditional_run_by_the_commands(tmp_path):
    workdir = str(tmp_path / "run")
    trained = run_command(
        "train.py",
        "--config",
        "tests/configs/tiny.py",
        f"--workdir={workdir}",
        "--config.training.n_iters=2",
        "--config.model.num_classes=10",
        "--config.training.sampling_freq=0",
    )
    assert trained.returncode == 0, trained.stderr[-2000:]
    drawn = run_command("sample.py", f"--workdir={workdir}", "--per_class=2", "--class_labels=3,1", "--guidance=1")
    assert drawn.returncode == 0, drawn.stderr[-2000:]
    folder = os.path.join(
        workdir, "sample_outputs", "random_n4_checkpoint0_step2_seed0_guidance1_per_class2_classes3-1"
    )
    assert np.load(os.path.join(folder, "samples.npz"))["labels"].tolist() == [3, 3, 1, 1]
    assert "class labels [3, 1], 2 each, guidance 1" in drawn.stdout
    refused = run_command("sample.py", f"--workdir={workdir}", "--class_label=10")
    assert refused.returncode != 0 and refused.stderr.strip().splitlines()[-1] == (
        "error: class label 10 is outside 0..9 (this model's classes)"
    )
    evaluated = run_command(
        "evaluate.py",
        f"--workdir={workdir}",
        "--mode=fid",
        "--num_gen=8",
        "--batch_size=4",
        "--guidance=2",
        "--feature_net=fast_random_conv",
        "--dataset_split=test",
    )
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    results = os.path.join(workdir, "evaluation_results", "default", "results.json")
    record = json.load(open(results))["default"]["fid"]
    assert record["guidance"] == 2.0 and record["labels"] == "drawn per image, uniform over the 10 classes"
    elbo = run_command("evaluate.py", f"--workdir={workdir}", "--mode=elbo", "--num_test=4", "--batch_size=4")
    assert elbo.returncode == 0, elbo.stderr[-2000:]
    scored = run_command(
        "evaluate.py",
        f"--workdir={workdir}",
        "--mode=class_accuracy",
        "--num_gen=30",
        "--batch_size=16",
        "--guidance=1",
        f"--classifier_dir={tmp_path / 'classifiers'}",
        timeout=300,
    )
    assert scored.returncode == 0, scored.stderr[-2000:]
    record = json.load(open(results))["default"]["class_accuracy"]
    assert sum(record["samples_per_class"]) == 30 and record["classifier_held_out_accuracy"] >= 0.97
    hits = sum(a * n for a, n in zip(record["per_class_accuracy"], record["samples_per_class"]) if n)
    assert abs(hits / 30 - record["class_accuracy"]) < 1e-9 and record["guidance"] == 1.0
    assert os.path.isfile(tmp_path / "classifiers" / "mnist5k_digit_classifier.pt")


def test_class_options_for_an_unconditional_model_are_refused_in_one_line():
    for flag, message in [
        ("--class_label=1", "class labels [1] given, but this model is unconditional"),
        ("--per_class=2", "--per_class=2 given, but this model is unconditional"),
        ("--guidance=1", "guidance=1.0 needs a class-conditional model"),
    ]:
        result = run_command("sample.py", "--workdir=pretrained/quickstart", flag, "--batch_size=1")
        assert result.returncode != 0 and message in result.stderr.strip().splitlines()[-1], result.stderr
    result = run_command("evaluate.py", "--workdir=pretrained/quickstart", "--mode=class_accuracy", "--num_gen=2")
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode != 0 and "--mode=class_accuracy needs a class-conditional model" in last, result.stderr
