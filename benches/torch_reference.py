"""PyTorch reference figures for BENCHMARKS.md: the same resnet18_in training step as
`autorep bench step` (SGD with momentum, cross-entropy, synthetic CIFAR-shaped data), and an
FP32 GEMM with TF32 off (the adapter's achievable FP32 rate, to set our GEMM core against).

    python3 benches/torch_reference.py step --device cpu --threads 2 --batch 32
    python3 benches/torch_reference.py step --device cuda --batch 128
    python3 benches/torch_reference.py gemm --size 8192
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        s = x if self.shortcut is None else self.shortcut(x)
        return F.relu(y + s)


class ResNet18In(nn.Module):
    """CIFAR ResNet-18 as autorep's resnet18_in: 3x3 stem, no stem ReLU, no max-pool."""

    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.stem_bn = nn.BatchNorm2d(64)
        blocks, cin = [], 64
        for w, s in zip([64, 128, 256, 512], [1, 2, 2, 2]):
            blocks += [Block(cin, w, s), Block(w, w, 1)]
            cin = w
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        x = self.blocks(self.stem_bn(self.stem(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def step(args):
    dev = args.device
    if args.model == "efficientnet_b2":
        import torchvision
        model = torchvision.models.efficientnet_b2(num_classes=10).to(dev)
    else:
        model = ResNet18In().to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(args.batch, 3, args.input, args.input, device=dev)
    y = torch.randint(0, 10, (args.batch,), device=dev)
    times = []
    for i in range(args.warmup + args.steps):
        sync(dev)
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
        sync(dev)
        if i >= args.warmup:
            times.append(time.perf_counter() - t)
    if args.profile:
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    s = statistics.median(times)
    print(f"torch {torch.__version__} {dev} threads {torch.get_num_threads()} {args.model} "
          f"batch {args.batch} at {args.input}x{args.input}: {s * 1e3:.1f} ms/step, {args.batch / s:.1f} images/s "
          f"(median of {args.steps})")


def gemm(args):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    n = args.size
    a = torch.randn(n, n, device="cuda")
    b = torch.randn(n, n, device="cuda")
    for _ in range(3):
        a @ b
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(10):
        start.record()
        a @ b
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    s = statistics.median(times)
    print(f"torch FP32 (TF32 off) GEMM {n}^3 on {torch.cuda.get_device_name()}: "
          f"{s * 1e3:.3f} ms, {2 * n ** 3 / s / 1e12:.2f} TFLOP/s")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("step")
    s.add_argument("--device", default="cpu")
    s.add_argument("--model", default="resnet18_in", choices=["resnet18_in", "efficientnet_b2"])
    s.add_argument("--input", type=int, default=32)
    s.add_argument("--threads", type=int, default=0)
    s.add_argument("--batch", type=int, default=32)
    s.add_argument("--steps", type=int, default=5)
    s.add_argument("--warmup", type=int, default=2)
    s.add_argument("--profile", action="store_true", help="also print one step's top ops")
    g = sub.add_parser("gemm")
    g.add_argument("--size", type=int, default=8192)
    a = p.parse_args()
    if a.what == "step":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        if a.threads:
            torch.set_num_threads(a.threads)
        step(a)
    else:
        gemm(a)
