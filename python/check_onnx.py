"""Run an `autorep export` ONNX model in ONNX Runtime on the inputs `autorep eval --inputs`
wrote, and compare its logits with the ones `autorep eval --logits` wrote.

    python python/check_onnx.py MODEL.onnx INPUTS.npy LOGITS.npy [--tol 1e-4]

Exits 0 when every logit agrees within `tol` relative to the largest logit magnitude of its
image and every arg-max agrees (apart from exact ties); prints what it compared.
"""

import argparse
import sys

import numpy as np
import onnxruntime as ort


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("inputs")
    ap.add_argument("logits")
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    x = np.load(a.inputs)
    want = np.load(a.logits)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(a.model, opts, providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    got = sess.run(["logits"], {"input": x})[0]
    if got.shape != want.shape:
        print(f"shape: ONNX Runtime {got.shape}, autorep {want.shape}")
        return 1
    scale = np.maximum(np.abs(want).max(axis=1, keepdims=True), 1.0)
    rel = float((np.abs(got - want) / scale).max())
    top2 = np.sort(want, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-5 * scale[:, 0]
    same = bool((got.argmax(1) == want.argmax(1))[clear].all())
    print(
        f"{a.model}: {x.shape[0]} images, max relative logit difference {rel:.2e}, "
        f"arg-max {'identical' if same else 'DIFFERENT'}; metadata {dict(sorted(meta.items()))}"
    )
    return 0 if rel <= a.tol and same else 1


if __name__ == "__main__":
    sys.exit(main())
