"""The digit classifier that scores conditional samples: its held-out accuracy, its cache, its inputs."""

import os

import pytest
import torch
import torch.nn.functional as F

from scripts.data.datasets.mnist import MNIST5K_HELD_OUT, mnist5k_images
from scripts.evaluation import classifier as digits


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(cache folder, classifier, accuracy): one training for the whole module, through the cache."""
    folder = str(tmp_path_factory.mktemp("classifiers"))
    classifier, accuracy = digits.load_digit_classifier(folder, progress=False)
    return folder, classifier, accuracy


def held_out():
    images, labels = mnist5k_images()
    return images[:MNIST5K_HELD_OUT].float() / 255.0, labels[:MNIST5K_HELD_OUT]


def test_the_classifier_reaches_97_percent_on_the_held_out_digits(trained):
    _, classifier, accuracy = trained
    images, labels = held_out()
    assert accuracy >= 0.97
    assert (digits.classify(classifier, images) == labels).double().mean().item() == pytest.approx(accuracy)
    upsampled = F.interpolate(images, size=(32, 32), mode="bilinear", align_corners=False)
    assert digits.class_accuracy(classifier, upsampled, labels) >= 0.95


def test_a_cached_classifier_loads_without_training(trained, monkeypatch):
    folder, classifier, accuracy = trained

    def refuse(*args, **kwargs):
        raise AssertionError("trained again although the cache is good")

    monkeypatch.setattr(digits, "train_digit_classifier", refuse)
    loaded, loaded_accuracy = digits.load_digit_classifier(folder)
    images, _ = held_out()
    assert loaded_accuracy == accuracy
    assert torch.equal(digits.classify(loaded, images[:50]), digits.classify(classifier, images[:50]))


@pytest.mark.parametrize("damage", ["garbage", "version"])
def test_a_corrupt_or_outdated_cache_is_retrained_and_replaced_atomically(tmp_path, monkeypatch, damage, capsys):
    path = digits.classifier_path(str(tmp_path))
    if damage == "garbage":
        path_bytes = b"\x00not a checkpoint"
        open(path, "wb").write(path_bytes)
    else:
        digits.write_cached(path, digits.DigitClassifier(), 0.5, 0, 1)
        payload = torch.load(path, weights_only=True)
        torch.save(dict(payload, version=digits.CLASSIFIER_VERSION + 1), path)
    fresh = digits.DigitClassifier()
    monkeypatch.setattr(digits, "train_digit_classifier", lambda **kwargs: (fresh, 0.75))
    classifier, accuracy = digits.load_digit_classifier(str(tmp_path))
    assert classifier is fresh and accuracy == 0.75
    said = capsys.readouterr().out
    assert ("is unreadable" if damage == "garbage" else "has format version") in said
    assert digits.read_cached(path, "cpu")[0][1] == 0.75
    assert sorted(os.listdir(tmp_path)) == [".mnist5k_digit_classifier.pt.lock", "mnist5k_digit_classifier.pt"]


def test_bad_inputs_are_refused_in_one_line():
    net = digits.DigitClassifier()
    with pytest.raises(ValueError, match=r"float images \[N, 1, H, W\] \(1 channel\), got \[2, 3, 28, 28\]"):
        digits.classify(net, torch.zeros(2, 3, 28, 28))
    with pytest.raises(ValueError, match="got 2 images but 3 labels"):
        digits.class_accuracy(net, torch.zeros(2, 1, 28, 28), torch.zeros(3, dtype=torch.int64))
