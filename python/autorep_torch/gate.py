"""A gated activation site as `autorep` trains it: ReLU where the mask is 1, the site's
per-channel polynomial where it is 0."""

import torch
from torch import nn


class Gate(nn.Module):
    """out = mask · relu(x) + (1 − mask) · (a0 + a1·x + a2·x²).

    Buffers: `mask` [C, H, W] (pixel gates) or [C, 1, 1] (channel gates), 1 = ReLU kept;
    `poly` [3, C], the rows a0, a1, a2 in the units of the site's input (autorep's scale
    factors and x² clamp already applied)."""

    def __init__(self, mask_shape):
        super().__init__()
        channels = mask_shape[0]
        self.register_buffer("mask", torch.zeros(mask_shape))
        self.register_buffer("poly", torch.zeros(3, channels))

    def forward(self, x):
        shape = (1, -1) + (1,) * (x.dim() - 2)
        a0, a1, a2 = (row.view(shape) for row in self.poly)
        # The ONNX export's Horner form.
        poly = (x * a2 + a1) * x + a0
        mask = self.mask if x.dim() == 4 else self.mask.view(-1)
        return mask * torch.relu(x) + (1.0 - mask) * poly
