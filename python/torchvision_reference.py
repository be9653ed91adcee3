"""Write torchvision networks with random weights (and random BatchNorm statistics, so
evaluation mode is not the identity) as `torch.save` state dicts, with inputs and the logits
PyTorch computes for them, for `tests/torch_import.rs` to import and compare against.

    python python/torchvision_reference.py OUT_DIR

Writes OUT_DIR/{efficientnet_b2,resnet18_cifar}.{pth,x.npy,logits.npy}: torchvision's
`efficientnet_b2` (1000 classes, 3×64×64 inputs) and torchvision's `resnet18` in its common
CIFAR form (3×3 stride-1 stem, no max-pool; 10 classes, 3×32×32), which is autorep's
`resnet18` under torchvision's names.
"""

import os
import sys

import numpy as np
import torch
import torchvision


def randomise_bn(model, g):
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


def write(out, name, model, side, g):
    randomise_bn(model, g)
    model.eval()
    x = torch.randn(2, 3, side, side, generator=g)
    with torch.no_grad():
        logits = model(x)
    torch.save(model.state_dict(), os.path.join(out, f"{name}.pth"))
    np.save(os.path.join(out, f"{name}.x.npy"), x.numpy())
    np.save(os.path.join(out, f"{name}.logits.npy"), logits.numpy())


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(1)
    write(out, "efficientnet_b2", torchvision.models.efficientnet_b2(), 64, g)
    r = torchvision.models.resnet18(num_classes=10)
    r.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    r.maxpool = torch.nn.Identity()
    write(out, "resnet18_cifar", r, 32, g)


if __name__ == "__main__":
    main()
