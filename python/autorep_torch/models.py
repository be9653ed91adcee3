"""The networks `autorep` trains, as PyTorch modules with autorep's module paths, so an
exported state dict loads with `strict=True`. Activation sites are modules at the paths
autorep names them (`layer1.0.relu1`, `features.2.0.block.0.2`, …); `load` swaps a gated
site's activation for a `Gate`."""

import math

from torch import nn


def _conv(cin, cout, k, stride=1, groups=1, bias=False):
    return nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=bias)


class _Holder(nn.Module):
    """A named place for a site outside a block (`stem.relu`)."""

    def __init__(self, **children):
        super().__init__()
        for name, module in children.items():
            setattr(self, name, module)


class _BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = _conv(cin, cout, 3, stride)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU()
        self.conv2 = _conv(cout, cout, 3)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu2 = nn.ReLU()
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(_conv(cin, cout, 1, stride), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """autorep's `resnet18_in` (no stem ReLU), `resnet18` (with one) and `small`: the
    SNL/AutoReP CIFAR ResNet (3×3 stem, no max-pool)."""

    def __init__(self, widths, blocks, strides, stem_relu, channels, classes):
        super().__init__()
        self.conv1 = _conv(channels, widths[0], 3)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.stem = _Holder(relu=nn.ReLU()) if stem_relu else None
        cin = widths[0]
        for s, (w, n, stride) in enumerate(zip(widths, blocks, strides)):
            layers = []
            for b in range(n):
                layers.append(_BasicBlock(cin, w, stride if b == 0 else 1))
                cin = w
            setattr(self, f"layer{s + 1}", nn.Sequential(*layers))
        self.stages = len(widths)
        self.linear = nn.Linear(cin, classes)

    def forward(self, x):
        h = self.bn1(self.conv1(x))
        if self.stem is not None:
            h = self.stem.relu(h)
        for s in range(self.stages):
            h = getattr(self, f"layer{s + 1}")(h)
        return self.linear(h.mean((2, 3)))


class _WideBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.relu1 = nn.ReLU()
        self.conv1 = _conv(cin, cout, 3, stride)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu2 = nn.ReLU()
        self.conv2 = _conv(cout, cout, 3)
        self.shortcut = None
        if cin != cout or stride != 1:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride, 0, bias=False)

    def forward(self, x):
        a = self.relu1(self.bn1(x))
        out = self.conv2(self.relu2(self.bn2(self.conv1(a))))
        # A projection reads the activated input; an identity shortcut the raw one.
        return out + (self.shortcut(a) if self.shortcut is not None else x)


class WideResNet(nn.Module):
    """autorep's `wrn22_8` (WRN-depth-k, pre-activation blocks)."""

    def __init__(self, depth, k, channels, classes):
        super().__init__()
        n = (depth - 4) // 6
        widths = [16, 16 * k, 32 * k, 64 * k]
        self.conv1 = _conv(channels, widths[0], 3)
        cin = widths[0]
        for g, (w, stride) in enumerate(zip(widths[1:], [1, 2, 2])):
            blocks = []
            for b in range(n):
                blocks.append(_WideBlock(cin, w, stride if b == 0 else 1))
                cin = w
            setattr(self, f"block{g + 1}", nn.Sequential(*blocks))
        self.bn = nn.BatchNorm2d(cin)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        h = self.conv1(x)
        h = self.block3(self.block2(self.block1(h)))
        return self.fc(self.bn(h).mean((2, 3)))


def _divisible(v, d=8):
    new = max(d, int(v + d / 2) // d * d)
    return new + d if new < 0.9 * v else new


class _ConvBNAct(nn.Sequential):
    """torchvision's Conv2dNormActivation: [conv, bn, act] at indices 0, 1, 2."""

    def __init__(self, cin, cout, k, stride=1, groups=1, act=True):
        layers = [_conv(cin, cout, k, stride, groups), nn.BatchNorm2d(cout)]
        if act:
            layers.append(nn.SiLU())
        super().__init__(*layers)


class _SqueezeExcitation(nn.Module):
    """torchvision's SqueezeExcitation (1×1 convolutions with bias)."""

    def __init__(self, channels, squeeze):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = nn.SiLU()
        self.scale_activation = nn.Sigmoid()

    def forward(self, x):
        s = self.fc2(self.activation(self.fc1(self.avgpool(x))))
        return x * self.scale_activation(s)


class _MBConv(nn.Module):
    def __init__(self, ratio, k, stride, cin, cout):
        super().__init__()
        exp = _divisible(cin * ratio)
        layers = []
        if ratio != 1:
            layers.append(_ConvBNAct(cin, exp, 1))
        layers.append(_ConvBNAct(exp, exp, k, stride, groups=exp))
        layers.append(_SqueezeExcitation(exp, max(1, cin // 4)))
        layers.append(_ConvBNAct(exp, cout, 1, act=False))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        out = self.block(x)
        return out + x if self.residual else out


# EfficientNet-B0's stages: (expansion ratio, kernel, stride, input, output, blocks).
_B0 = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
       (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]


class EfficientNetB2(nn.Module):
    """torchvision's `efficientnet_b2` in evaluation (stochastic depth and dropout are
    identities there), with its module names."""

    def __init__(self, channels, classes, width=1.1, depth=1.2):
        super().__init__()
        c0 = _divisible(32 * width)
        features = [_ConvBNAct(channels, c0, 3, 2)]
        cin = c0
        for ratio, k, stride, _, out, n in _B0:
            out = _divisible(out * width)
            stage = []
            for j in range(math.ceil(n * depth)):
                stage.append(_MBConv(ratio, k, stride if j == 0 else 1, cin, out))
                cin = out
            features.append(nn.Sequential(*stage))
        features.append(_ConvBNAct(cin, 4 * cin, 1))
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.3), nn.Linear(4 * cin, classes))

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def build(model, channels, classes):
    """The all-ReLU (EfficientNet: all-SiLU) module of an autorep model name."""
    if model == "resnet18_in":
        return CifarResNet([64, 128, 256, 512], [2] * 4, [1, 2, 2, 2], False, channels, classes)
    if model == "resnet18":
        return CifarResNet([64, 128, 256, 512], [2] * 4, [1, 2, 2, 2], True, channels, classes)
    if model == "small":
        return CifarResNet([16, 32, 64], [1] * 3, [1, 2, 2], True, channels, classes)
    if model.startswith("wrn"):
        depth, k = (int(v) for v in model[3:].split("_"))
        return WideResNet(depth, k, channels, classes)
    if model == "efficientnet_b2":
        return EfficientNetB2(channels, classes)
    raise ValueError(f"unknown autorep model {model!r}")
