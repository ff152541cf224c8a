"""A small digit classifier that scores class-conditional samples: the share classified as the class asked for.

``DigitClassifier`` is a three-layer CNN (conv-ReLU-maxpool x 3, then one linear layer) for 1-channel 28x28
digits in [0, 1]. ``train_digit_classifier`` trains it with Adam on the 4,500 mnist5k training digits
(``scripts.data.datasets.mnist``; random shifts of up to 2 pixels), deterministically for a given seed, and
measures it on the 500 held-out digits: 97.6% (8 epochs, seed 0; 16-60 s on 2 CPU cores, with the load).
``load_digit_classifier`` reads the cached network ``<cache_dir>/mnist5k_digit_classifier.pt`` (default
``data/classifiers/``), or trains one and writes it atomically when that file is missing, unreadable, of another
format version or does not fit the network; concurrent callers wait on one lock, so only one of them trains.

``classify`` resizes images [N, 1, H, W] to 28x28 (antialiased bilinear) and returns their labels;
``class_accuracy`` is the share of images whose label is the one given.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any, Dict, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from scripts.data.datasets.mnist import MNIST5K_HELD_OUT, mnist5k_images
from scripts.runs.checkpoints import load_failure, state_mismatch
from scripts.storage.files import exclusive_lock, remove_stale_temporaries, write_atomic_with

Device = Union[str, torch.device]

CLASSIFIER_VERSION = 1  # the format of the cached file; a file of another version is retrained
CLASSIFIER_FILE = "mnist5k_digit_classifier.pt"
CLASSIFIER_SEED = 0
CLASSIFIER_EPOCHS = 8
CLASSIFIER_SIZE = (28, 28)
NUM_CLASSES = 10
PAYLOAD_KEYS = ("version", "state_dict", "held_out_accuracy", "seed", "epochs")

BATCH_SIZE = 64
LEARNING_RATE = 2e-3
MAX_SHIFT = 2  # training digits are shifted by up to this many pixels each way
CLASSIFY_BATCH = 500


class DigitClassifier(nn.Module):
    """Logits [N, 10] of digits [N, 1, 28, 28] in [0, 1]: three conv(3x3)-ReLU-maxpool(2) blocks
    (16, 32, 64 channels; 28 -> 14 -> 7 -> 3) and a linear layer on the 64 * 3 * 3 features."""

    def __init__(self, widths: Tuple[int, int, int] = (16, 32, 64)):
        super().__init__()
        self.conv1 = nn.Conv2d(1, widths[0], 3, padding=1)
        self.conv2 = nn.Conv2d(widths[0], widths[1], 3, padding=1)
        self.conv3 = nn.Conv2d(widths[1], widths[2], 3, padding=1)
        self.head = nn.Linear(widths[2] * 3 * 3, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in (self.conv1, self.conv2, self.conv3):
            x = F.max_pool2d(F.relu(conv(x)), 2)
        return self.head(x.flatten(1))


def shifted(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image of [B, 1, 28, 28] moved by its own whole-pixel shift in [-MAX_SHIFT, MAX_SHIFT]^2,
    zero-filled: a crop of the zero-padded image."""
    count, size = images.shape[0], images.shape[-1]
    padded = F.pad(images[:, 0], (MAX_SHIFT,) * 4)  # [B, 28 + 2 MAX_SHIFT, 28 + 2 MAX_SHIFT]
    offsets = torch.randint(0, 2 * MAX_SHIFT + 1, (2, count), generator=generator)
    rows = (offsets[0][:, None] + torch.arange(size))[:, :, None]  # [B, 28, 1]
    cols = (offsets[1][:, None] + torch.arange(size))[:, None, :]  # [B, 1, 28]
    return padded[torch.arange(count)[:, None, None], rows, cols][:, None]


@torch.enable_grad()  # trains even when called under no_grad (the evaluator's)
def train_digit_classifier(
    seed: int = CLASSIFIER_SEED, epochs: int = CLASSIFIER_EPOCHS, device: Device = "cpu", *, progress: bool = True
) -> Tuple[DigitClassifier, float]:
    """Train a ``DigitClassifier`` on the 4,500 mnist5k training digits (rows ``MNIST5K_HELD_OUT:``) with Adam
    (a cosine-decayed learning rate, batches of ``BATCH_SIZE`` randomly shifted digits) and return it in eval
    mode with its accuracy on the 500 held-out digits (rows ``:MNIST5K_HELD_OUT``).

    Deterministic for a given ``seed`` on a given device: the initial weights, the batch order and the shifts
    come from generators seeded with it (torch's global random state is left as it was).
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    images, labels = mnist5k_images()
    train_x = images[MNIST5K_HELD_OUT:].float() / 255.0
    train_y = labels[MNIST5K_HELD_OUT:]
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        classifier = DigitClassifier()
    classifier.to(device).train()
    steps_per_epoch = math.ceil(train_x.shape[0] / BATCH_SIZE)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=LEARNING_RATE)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    with tqdm(total=epochs * steps_per_epoch, desc="digit classifier", disable=not progress) as bar:
        for _ in range(epochs):
            order = torch.randperm(train_x.shape[0], generator=generator)
            for start in range(0, train_x.shape[0], BATCH_SIZE):
                rows = order[start : start + BATCH_SIZE]
                x = shifted(train_x[rows], generator).to(device)
                loss = F.cross_entropy(classifier(x), train_y[rows].to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
                bar.update()
    classifier.eval()
    held_out = images[:MNIST5K_HELD_OUT].float() / 255.0
    return classifier, class_accuracy(classifier, held_out, labels[:MNIST5K_HELD_OUT])


def classifier_path(cache_dir: str) -> str:
    """``<cache_dir>/mnist5k_digit_classifier.pt``."""
    return os.path.join(cache_dir, CLASSIFIER_FILE)


def read_cached(path: str, device: Device) -> Tuple[Optional[Tuple[DigitClassifier, float]], str]:
    """(classifier in eval mode, its held-out accuracy) from the cache file ``path`` and '', or None and why
    the file cannot be used (missing, unreadable, another version, missing entries, weights that do not fit)."""
    if not os.path.isfile(path):
        return None, "is missing"
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated or foreign files fail in many ways; each means "retrain"
        return None, f"is unreadable ({type(error).__name__}: {load_failure(error)})"
    if not isinstance(payload, dict):
        return None, f"holds a {type(payload).__name__}, not a dict"
    if payload.get("version") != CLASSIFIER_VERSION:
        return None, f"has format version {payload.get('version')!r}, this code writes {CLASSIFIER_VERSION}"
    missing = [key for key in PAYLOAD_KEYS if key not in payload]
    if missing:
        return None, f"lacks {', '.join(missing)}"
    state, accuracy = payload["state_dict"], payload["held_out_accuracy"]
    if not isinstance(accuracy, float) or not 0.0 <= accuracy <= 1.0:
        return None, f"has held_out_accuracy {accuracy!r}, not a float in [0, 1]"
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        return None, "has a state_dict that is not a dict of tensors"
    classifier = DigitClassifier()
    mismatch = state_mismatch(classifier, state)
    if mismatch:
        return None, f"does not fit DigitClassifier ({'; '.join(mismatch)})"
    classifier.load_state_dict(state)
    return (classifier.to(device).eval(), accuracy), ""


def write_cached(path: str, classifier: DigitClassifier, accuracy: float, seed: int, epochs: int) -> None:
    """Write the classifier's weights (on CPU) and how they were made to ``path`` atomically."""
    payload: Dict[str, Any] = {
        "version": CLASSIFIER_VERSION,
        "state_dict": {name: value.detach().cpu() for name, value in classifier.state_dict().items()},
        "held_out_accuracy": float(accuracy),
        "seed": seed,
        "epochs": epochs,
    }
    write_atomic_with(path, lambda handle: torch.save(payload, handle))


def load_digit_classifier(
    cache_dir: str = "data/classifiers", device: Device = "cpu", *, progress: bool = True
) -> Tuple[DigitClassifier, float]:
    """The cached ``DigitClassifier`` (eval mode, on ``device``) and its held-out accuracy.

    Reads ``<cache_dir>/mnist5k_digit_classifier.pt`` (``torch.load(weights_only=True)``). Where that file
    cannot be used (see ``read_cached``), trains one (``train_digit_classifier`` with ``CLASSIFIER_SEED``
    and ``CLASSIFIER_EPOCHS``), writes it atomically and prints one line saying why and the accuracy.
    Training and writing happen under an exclusive lock on the file, and the file is read again once the lock
    is held, so of several processes starting together only the first trains.
    """
    path = classifier_path(cache_dir)
    cached, _ = read_cached(path, device)
    if cached is not None:
        return cached
    with exclusive_lock(path):
        cached, reason = read_cached(path, device)
        if cached is not None:
            return cached
        remove_stale_temporaries(cache_dir, [CLASSIFIER_FILE])
        start = time.perf_counter()
        classifier, accuracy = train_digit_classifier(
            seed=CLASSIFIER_SEED, epochs=CLASSIFIER_EPOCHS, device=device, progress=progress
        )
        write_cached(path, classifier, accuracy, CLASSIFIER_SEED, CLASSIFIER_EPOCHS)
    print(
        f"digit classifier: trained one ({time.perf_counter() - start:.0f} s) because {path} {reason}; "
        f"held-out accuracy {accuracy:.4f} on {MNIST5K_HELD_OUT} mnist5k digits; written to {path}",
        flush=True,
    )
    return classifier, accuracy


def check_images(images: Any) -> None:
    """Refuse, in one ValueError line, anything but a float tensor [N, 1, H, W]."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 1:
        shape = list(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"the digit classifier takes float images [N, 1, H, W] (1 channel), got {shape}")
    if not images.is_floating_point():
        raise ValueError(f"the digit classifier takes float images in [0, 1], got dtype {images.dtype}")


@torch.no_grad()
def classify(classifier: DigitClassifier, images: torch.Tensor) -> torch.Tensor:
    """Predicted labels int64 [N] (on the images' device) of float images [N, 1, H, W] in [0, 1], any H and W:
    resized to 28x28 (antialiased bilinear) where different, classified ``CLASSIFY_BATCH`` at a time."""
    check_images(images)
    classifier.eval()
    device = next(classifier.parameters()).device
    predictions = [torch.zeros(0, dtype=torch.int64)]
    for start in range(0, images.shape[0], CLASSIFY_BATCH):
        batch = images[start : start + CLASSIFY_BATCH].to(device, torch.float32)
        if tuple(batch.shape[-2:]) != CLASSIFIER_SIZE:
            batch = F.interpolate(batch, size=CLASSIFIER_SIZE, mode="bilinear", antialias=True, align_corners=False)
        predictions.append(classifier(batch).argmax(dim=1).cpu())
    return torch.cat(predictions).to(images.device)


def class_accuracy(classifier: DigitClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of images [N, 1, H, W] (float in [0, 1]) that ``classify`` labels as ``labels`` (int64 [N])."""
    check_images(images)
    if not isinstance(labels, torch.Tensor) or labels.ndim != 1 or labels.dtype != torch.int64:
        what = f"{labels.dtype} {list(labels.shape)}" if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"class_accuracy takes labels int64 [N], got {what}")
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"class_accuracy got {images.shape[0]} images but {labels.shape[0]} labels; they must match")
    if labels.shape[0] == 0:
        raise ValueError("class_accuracy got no images (N = 0): the share of zero images is undefined")
    predictions = classify(classifier, images)
    return (predictions == labels.to(predictions.device)).double().mean().item()
