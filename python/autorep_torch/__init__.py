"""PyTorch modules for networks exported by `autorep export --format torch`.

    import autorep_torch
    model = autorep_torch.load("net.safetensors")   # eval mode, weights loaded strictly
    logits = model(autorep_torch.normalise(model, pixels))  # pixels: [N, C, H, W] in 0..255

The file is a safetensors state dict whose keys are the modules' `state_dict` keys; its
`autorep_torch` metadata names the model, the class count and the input normalisation. A
gated site (a ReLU that AutoReP replaced pixel by pixel or channel by channel) is a `Gate`
module holding `mask` and `poly` (see gate.py); every other site is `nn.ReLU` (`nn.SiLU` in
EfficientNet-B2).
"""

import json

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from .gate import Gate
from .models import build

__all__ = ["Gate", "build", "load", "normalise", "describe"]


def describe(path):
    """The export's description: model, dataset, channels, input, classes, normalisation,
    sites."""
    with safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
    if "autorep_torch" not in meta:
        raise ValueError(f"{path} was not written by `autorep export --format torch`")
    return json.loads(meta["autorep_torch"])


def _set_module(root, path, module):
    *parents, last = path.split(".")
    parent = root
    for p in parents:
        parent = getattr(parent, p)
    setattr(parent, last, module)


def load(path, map_location="cpu"):
    """The exported network as a module in eval mode, its state dict loaded with
    `strict=True`; `model.autorep` holds the description."""
    desc = describe(path)
    state = load_file(path, device=str(map_location))
    model = build(desc["model"], desc["channels"], desc["classes"])
    for key, mask in state.items():
        if key.endswith(".mask"):
            site = key[: -len(".mask")]
            _set_module(model, site, Gate(tuple(mask.shape)))
    model.load_state_dict(state, strict=True)
    model.autorep = desc
    return model.eval()


def normalise(model, pixels):
    """Pixels in 0..255, [N, C, H, W], as the network's input: pixels / 255, then
    (x - mean) / std per channel, with the export's mean and std."""
    n = model.autorep["normalisation"]
    mean = torch.tensor(n["mean"], dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(n["std"], dtype=torch.float32).view(1, -1, 1, 1)
    return (pixels.float() / 255.0 - mean) / std
