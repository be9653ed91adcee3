"""PyTorch reference figures for BENCHMARKS.md: the same training step as `autorep bench step`
(resnet18_in, wrn22_8 or efficientnet_b2; SGD with momentum, cross-entropy, synthetic data)
in FP32 (TF32 off), TF32, or AMP (fp16 autocast + GradScaler, channels_last), with the peak
CUDA memory; and a GEMM in FP32 (TF32 off) or fp16 (cuBLAS on tensor cores).

    python3 benches/torch_reference.py step --device cpu --threads 2 --batch 32
    python3 benches/torch_reference.py step --device cuda --batch 128 --precision amp
    python3 benches/torch_reference.py gemm --size 8192 --dtype fp16
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


class WideBlock(nn.Module):
    """Pre-activation wide block (Zagoruyko & Komodakis), as autorep's wrn22_8."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride, 0, bias=False)

    def forward(self, x):
        o = F.relu(self.bn1(x))
        y = self.conv1(o)
        y = self.conv2(F.relu(self.bn2(y)))
        return y + (x if self.shortcut is None else self.shortcut(o))


class WideResNet(nn.Module):
    def __init__(self, depth=22, k=8, classes=10):
        super().__init__()
        n = (depth - 4) // 6
        self.stem = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        blocks, cin = [], 16
        for w, s in zip([16 * k, 32 * k, 64 * k], [1, 2, 2]):
            for i in range(n):
                blocks.append(WideBlock(cin, w, s if i == 0 else 1))
                cin = w
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(cin)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = F.relu(self.bn(self.blocks(self.stem(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def step(args):
    dev = args.device
    if args.model == "efficientnet_b2":
        import torchvision
        model = torchvision.models.efficientnet_b2(num_classes=10).to(dev)
    elif args.model == "wrn22_8":
        model = WideResNet().to(dev)
    else:
        model = ResNet18In().to(dev)
    amp = args.precision == "amp"
    tf32 = args.precision == "tf32"
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    x = torch.randn(args.batch, 3, args.input, args.input, device=dev)
    if amp:
        model = model.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    scaler = torch.amp.GradScaler(dev, enabled=amp)
    y = torch.randint(0, 10, (args.batch,), device=dev)
    if dev == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(args.warmup + args.steps):
        sync(dev)
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev, dtype=torch.float16, enabled=amp):
            loss = F.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
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
    memory = ""
    if dev == "cuda":
        # Allocated is the counterpart of `bench step`'s "in use at once"; reserved (what the
        # caching allocator holds) of its buffer-pool total, the headline's peak.
        memory = (f", peak memory {torch.cuda.max_memory_allocated() / 2**20:.1f} MiB allocated, "
                  f"{torch.cuda.max_memory_reserved() / 2**20:.1f} MiB reserved")
    print(f"torch {torch.__version__} {dev} threads {torch.get_num_threads()} {args.model} "
          f"batch {args.batch} at {args.input}x{args.input} {args.precision}: {s * 1e3:.1f} ms/step, "
          f"{args.batch / s:.1f} images/s (median of {args.steps}){memory}")


def gemm(args):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    n = args.size
    dtype = torch.float16 if args.dtype == "fp16" else torch.float32
    a = torch.randn(n, n, device="cuda", dtype=dtype)
    b = torch.randn(n, n, device="cuda", dtype=dtype)
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
    what = "fp16" if args.dtype == "fp16" else "FP32 (TF32 off)"
    print(f"torch {what} GEMM {n}^3 on {torch.cuda.get_device_name()}: "
          f"{s * 1e3:.3f} ms, {2 * n ** 3 / s / 1e12:.2f} TFLOP/s")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("step")
    s.add_argument("--device", default="cpu")
    s.add_argument("--model", default="resnet18_in",
                   choices=["resnet18_in", "wrn22_8", "efficientnet_b2"])
    s.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "amp"],
                   help="fp32: TF32 off; tf32: TF32 on; amp: fp16 autocast + GradScaler, channels_last")
    s.add_argument("--input", type=int, default=32)
    s.add_argument("--threads", type=int, default=0)
    s.add_argument("--batch", type=int, default=32)
    s.add_argument("--steps", type=int, default=5)
    s.add_argument("--warmup", type=int, default=2)
    s.add_argument("--profile", action="store_true", help="also print one step's top ops")
    g = sub.add_parser("gemm")
    g.add_argument("--size", type=int, default=8192)
    g.add_argument("--dtype", default="fp32", choices=["fp32", "fp16"])
    a = p.parse_args()
    if a.what == "step":
        if a.threads:
            torch.set_num_threads(a.threads)
        step(a)
    else:
        gemm(a)
