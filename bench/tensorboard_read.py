#!/usr/bin/env python3
"""Reads a folder of TensorBoard event files with TensorBoard's own loader and prints what it found as JSON:
a check that kiln-tensorboard's files are read as TensorBoard reads them.

    python3 bench/tensorboard_read.py runs/mnist
    -> {"folder": ..., "scalars": {"loss/train": [[step, value], ...]}, "histograms": {"fc1.weight": [[step, num, min, max], ...]}}

Needs `pip install tensorboard` (the GPU machine has it).
"""
import json
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main(folder):
    # size_guidance 0 = keep every event (the default keeps a sample of 10,000 scalars per tag)
    acc = EventAccumulator(folder, size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    tags = acc.Tags()
    scalars = {tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in tags.get("scalars", [])}
    histograms = {
        tag: [[e.step, e.histogram_value.num, e.histogram_value.min, e.histogram_value.max] for e in acc.Histograms(tag)]
        for tag in tags.get("histograms", [])
    }
    print(json.dumps({"folder": folder, "scalars": scalars, "histograms": histograms}, indent=1))
    return 0 if scalars or histograms else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: tensorboard_read.py LOG_FOLDER")
    sys.exit(main(sys.argv[1]))
