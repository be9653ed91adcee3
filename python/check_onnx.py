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

from compare import compare_logits


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
    try:
        rel, same, ok = compare_logits(got, want, a.tol)
    except ValueError as e:
        print(e)
        return 1
    print(
        f"{a.model}: {x.shape[0]} images, max relative logit difference {rel:.2e}, "
        f"arg-max {'identical' if same else 'DIFFERENT'}; metadata {dict(sorted(meta.items()))}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
