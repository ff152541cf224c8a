"""``evaluate.py --mode=class_accuracy``: the share of a class-conditional model's samples that a digit classifier
(``scripts.evaluation.classifier``, trained once on the 4,500 mnist5k training digits and cached under
data/classifiers/) classifies as the label they were drawn for.

Image i is drawn with its label from its own seed (uniform over the classes, ``model_code.conditioning``) and
the request's sampling flags, guidance included, exactly as ``--mode=fid`` draws it; batches are shared out over
the processes and the counts summed, so the score is the same for any number of them.
"""

from __future__ import annotations

from typing import Any, Dict

import torch
from tqdm import tqdm

from model_code.conditioning import num_classes_of
from scripts.evaluation.classifier import NUM_CLASSES, classify, load_digit_classifier
from scripts.runtime import distributed
from scripts.sampling.imaging import to_unit
from scripts.sampling.sampler import generate_range


def check_scoreable(model) -> None:
    """One line refusing a model the digit classifier cannot score: unconditional, or not 10 classes of 1-channel
    images."""
    classes, channels = num_classes_of(model.net), model.shape[0]
    if classes == 0:
        raise ValueError(
            "--mode=class_accuracy needs a class-conditional model; this one is unconditional (model.num_classes=0)"
        )
    if classes != NUM_CLASSES or channels != 1:
        raise ValueError(
            f"--mode=class_accuracy scores {NUM_CLASSES} classes of 1-channel digits (mnist5k, mnist); this model has "
            f"{classes} classes of {channels}-channel images"
        )


def run_class_accuracy(request, config, model, spec, seed: int, batch_size: int, device) -> Dict[str, Any]:
    """{'class_accuracy', 'per_class_accuracy' [10], 'samples_per_class' [10], 'classifier_held_out_accuracy',
    'headline', ...} of ``request.num_gen`` samples drawn as ``spec`` says."""
    check_scoreable(model)
    classifier, held_out = load_digit_classifier(request.classifier_dir, device, progress=distributed.is_main())
    correct, total = torch.zeros(NUM_CLASSES, dtype=torch.int64), torch.zeros(NUM_CLASSES, dtype=torch.int64)
    bar = tqdm(total=request.num_gen, desc="class accuracy", dynamic_ncols=True, disable=not distributed.is_main())
    for rows in distributed.my_blocks(request.num_gen, batch_size):
        samples, nfe = generate_range(
            model.process,
            model.net,
            model.prior,
            start=rows.start,
            count=len(rows),
            seed=seed,
            shape=model.shape,
            device=device,
            spec=spec,
        )
        labels = spec.labels(rows, seed, NUM_CLASSES)
        hits = classify(classifier, to_unit(samples, model.process.data_range)).cpu() == labels
        correct += torch.bincount(labels[hits], minlength=NUM_CLASSES)
        total += torch.bincount(labels, minlength=NUM_CLASSES)
        bar.update(len(rows) * distributed.world_size())
    bar.close()
    counts = distributed.gather_objects((correct, total))
    correct, total = sum(part[0] for part in counts), sum(part[1] for part in counts)
    accuracy = float(correct.sum()) / float(total.sum())
    per_class = [float(c) / float(t) if t else None for c, t in zip(correct.tolist(), total.tolist())]
    guided = f", guidance {spec.guidance:g}" if spec.guidance else ""
    return {
        "class_accuracy": accuracy,
        "per_class_accuracy": per_class,
        "samples_per_class": total.tolist(),
        "classifier_held_out_accuracy": held_out,
        "num_gen": request.num_gen,
        **{key: value for key, value in spec.record().items() if key != "classes"},
        **spec.classes.record(NUM_CLASSES),
        "headline": f"class accuracy ({request.num_gen} samples{guided}, digit classifier {held_out:.4f} on held-out "
        f"digits): {accuracy:.4f}",
    }
