"""Load an `autorep export --format torch` file into the autorep_torch modules with
`load_state_dict(strict=True)`, run it on the inputs `autorep eval --inputs` wrote, and
compare its logits with the ones `autorep eval --logits` wrote. An all-ReLU efficientnet_b2
is also loaded, strictly, into torchvision's own `efficientnet_b2` when torchvision is
installed, and compared the same way.

    python python/check_torch.py NET.safetensors INPUTS.npy LOGITS.npy [--tol 1e-4]

Exits 0 when every comparison passes; prints what it compared.
"""

import argparse
import sys

import numpy as np
import torch
from safetensors.torch import load_file

import autorep_torch
from compare import compare_logits


def run(module, x):
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("inputs")
    ap.add_argument("logits")
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    torch.set_num_threads(1)
    x = np.load(a.inputs)
    want = np.load(a.logits)
    net = autorep_torch.load(a.model)
    desc = net.autorep
    checks = [("autorep_torch", run(net, x))]
    gated = any(k.endswith(".mask") for k in net.state_dict())
    if desc["model"] == "efficientnet_b2" and not gated:
        try:
            import torchvision
        except ImportError:
            print("torchvision not installed: its efficientnet_b2 not compared")
        else:
            tv = torchvision.models.efficientnet_b2(num_classes=desc["classes"])
            if desc["channels"] != 3:
                old = tv.features[0][0]
                tv.features[0][0] = torch.nn.Conv2d(desc["channels"], old.out_channels, 3, 2, 1, bias=False)
            tv.load_state_dict(load_file(a.model), strict=True)
            checks.append(("torchvision", run(tv.eval(), x)))
    ok = True
    for name, got in checks:
        try:
            rel, same, passed = compare_logits(got, want, a.tol)
        except ValueError as e:
            print(f"{name}: {e}")
            return 1
        ok &= passed
        print(
            f"{a.model} in {name} ({desc['model']}, {'gated' if gated else 'all-ReLU'}): "
            f"{x.shape[0]} images, max relative logit difference {rel:.2e}, "
            f"arg-max {'identical' if same else 'DIFFERENT'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
