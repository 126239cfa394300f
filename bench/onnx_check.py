#!/usr/bin/env python3
"""Runs an ONNX model written by `kiln export` in onnxruntime and compares it with Kiln's own outputs.

    kiln export runs/latest --onnx model.onnx --check-data check/
    python3 bench/onnx_check.py model.onnx check/            # check/input.npy, check/expected.npy
    python3 bench/onnx_check.py model.onnx check/ --provider CUDAExecutionProvider

Prints one JSON line (max absolute and relative difference, whether the top-1 classes agree) and exits 1 when the
difference is above --atol + --rtol * |expected|. Needs numpy and onnxruntime (pip install onnxruntime[-gpu]); with the
onnx package installed it also runs onnx.checker on the file first.
"""
import argparse
import json
import os
import sys

import numpy as np
import onnxruntime as ort


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="the .onnx file")
    ap.add_argument("data", help="the folder holding input.npy and expected.npy")
    ap.add_argument("--atol", type=float, default=1e-4)
    ap.add_argument("--rtol", type=float, default=1e-3)
    ap.add_argument("--provider", default="CPUExecutionProvider", help="onnxruntime execution provider")
    args = ap.parse_args()

    try:
        import onnx
        onnx.checker.check_model(onnx.load(args.model), full_check=True)
        checked = True
    except ImportError:
        checked = False

    x = np.load(os.path.join(args.data, "input.npy"))
    expected = np.load(os.path.join(args.data, "expected.npy"))
    session = ort.InferenceSession(args.model, providers=[args.provider])
    (got,) = session.run(["logits"], {"input": x})
    diff = np.abs(got - expected)
    ok = bool(np.all(diff <= args.atol + args.rtol * np.abs(expected)))
    print(json.dumps({
        "model": args.model, "provider": session.get_providers()[0], "onnx_checker": checked,
        "shape": list(got.shape), "max_abs_diff": float(diff.max()),
        "max_rel_diff": float((diff / np.maximum(np.abs(expected), 1e-6)).max()),
        "top1_agree": bool(np.array_equal(got.argmax(1), expected.argmax(1))), "ok": ok,
    }))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
