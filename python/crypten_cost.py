"""Run an `autorep export --format onnx` network under CrypTen's two-party secret sharing and
measure what private inference of one image costs: communication (bytes sent per party) and
rounds, with the logits it decrypts compared to autorep's.

    python python/crypten_cost.py NET.onnx INPUTS.npy LOGITS.npy [--images 1]

CrypTen 0.4.1 needs PyTorch older than 2.1 (it imports torch.onnx internals later versions
dropped): for example `pip install torch==2.0.1 torchvision==0.15.2` and `pip install
--no-deps crypten==0.4.1` plus `omegaconf "onnx<1.16" pandas pyyaml future scipy
scikit-learn "numpy<2"` in a virtual environment of its own. Both parties run on this machine
(CrypTen's multiprocess launcher); the offline phase (Beaver triples from CrypTen's trusted
third party provider) is not counted, as CrypTen does not count it.
"""

import argparse
import json

import numpy as np
import torch

import crypten
import crypten.communicator as comm
from crypten import mpc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("inputs")
    ap.add_argument("logits")
    ap.add_argument("--images", type=int, default=1)
    a = ap.parse_args()
    crypten.cfg.communicator.verbose = True

    @mpc.run_multiprocess(world_size=2)
    def private_inference():
        with open(a.model, "rb") as f:
            net = crypten.nn.from_onnx(f)
        net.encrypt()
        net.eval()
        x = torch.from_numpy(np.load(a.inputs)[: a.images])
        xe = crypten.cryptensor(x, src=0)
        comm.get().reset_communication_stats()
        y = net(xe)
        stats = comm.get().get_communication_stats()
        got = y.get_plain_text().numpy()
        if comm.get().get_rank() == 0:
            want = np.load(a.logits)[: a.images]
            scale = np.maximum(np.abs(want).max(axis=1, keepdims=True), 1.0)
            print(json.dumps({
                "model": a.model,
                "images": a.images,
                "rounds": stats["rounds"],
                "bytes_per_party": stats["bytes"],
                "seconds": round(stats["time"], 3),
                "max_relative_logit_difference": float((np.abs(got - want) / scale).max()),
                "argmax_agrees": bool((got.argmax(1) == want.argmax(1)).all()),
            }))

    crypten.init()
    private_inference()


if __name__ == "__main__":
    main()
