"""The other side of infobound-weights' round trips: a NumPy (float64) forward pass of the
Burgess VAE and the CIFAR ResNet read from a safetensors state dict with PyTorch's key names, and,
with --torch, the same networks as torch.nn modules loaded with load_state_dict(strict=True).

    roundtrip.py check-vae WEIGHTS PROBE [--torch]     our export vs. NumPy (and torch)
    roundtrip.py check-resnet WEIGHTS PROBE [--torch]
    roundtrip.py make-vae WEIGHTS PROBE --channels C --latent K --seed S [--torch]
    roundtrip.py make-resnet WEIGHTS PROBE --in-channels C --width W --layers 2,2,2,2 --seed S [--torch]

make-* with --torch also writes the state dict as a Lightning-style torch.save checkpoint
(WEIGHTS with suffix .pt, keys under "state_dict" with the prefix "net."), for PytorchStore.

check-*: PROBE (written by the Rust test) holds the inputs and infobound's outputs; the outputs
are recomputed here from WEIGHTS and compared. make-*: random weights with PyTorch's keys
(batch norms with their `num_batches_tracked`, which infobound ignores) and random inputs go to
WEIGHTS and PROBE with the NumPy outputs, for the Rust test to import and compare. Prints one JSON
line {"output": max |difference|, ...}; exits 1 if a difference exceeds --tol (default 1e-5).

The layer definitions follow crates/infobound-weights/src/keymap.rs: disent's EncoderConv64 /
DecoderConv64 with padding 1 in the encoder, and torchvision's ResNet with the CIFAR stem
(3x3 stride 1 padding 1, no max-pool) and no fc.
"""

import argparse
import json
import sys

import numpy as np
from safetensors.numpy import load_file, save_file

BN_EPS = 1e-5  # torch.nn.BatchNorm2d's and burn's BatchNormConfig's default epsilon


def conv2d(x, w, b, stride, pad):
    """x [B, C, H, W], w [O, C, kh, kw] (PyTorch layout), cross-correlation as torch.nn.Conv2d."""
    kh, kw = w.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride]
    out = np.einsum("bchwij,ocij->bohw", windows, w, optimize=True)
    if b is not None:
        out = out + b[None, :, None, None]
    return out


def conv_transpose2d(x, w, b, stride, pad):
    """x [B, Ci, H, W], w [Ci, Co, kh, kw] (PyTorch layout): each input pixel scatters its
    kernel at stride `stride`, then `pad` is cropped from every side, as torch.nn.ConvTranspose2d."""
    bsz, _, h, wd = x.shape
    kh, kw = w.shape[2:]
    full = np.zeros((bsz, w.shape[1], (h - 1) * stride + kh, (wd - 1) * stride + kw))
    for i in range(kh):
        for j in range(kw):
            full[:, :, i : i + stride * h : stride, j : j + stride * wd : stride] += np.einsum(
                "bchw,co->bohw", x, w[:, :, i, j], optimize=True
            )
    out = full[:, :, pad : full.shape[2] - pad, pad : full.shape[3] - pad]
    return out + b[None, :, None, None]


def relu(x):
    return np.maximum(x, 0.0)


def linear(x, sd, key):
    return x @ sd[key + ".weight"].T + sd[key + ".bias"]


def batch_norm(x, sd, key):
    """Inference-mode batch norm with the running statistics."""
    shape = (1, -1, 1, 1)
    mean, var = sd[key + ".running_mean"].reshape(shape), sd[key + ".running_var"].reshape(shape)
    scale, shift = sd[key + ".weight"].reshape(shape), sd[key + ".bias"].reshape(shape)
    return (x - mean) / np.sqrt(var + BN_EPS) * scale + shift


def vae_forward(sd, x, z):
    """(mu, logvar, logits of decode(z)) of the Burgess VAE."""
    h = x
    for i in range(4):
        key = f"encoder.model.{2 * i}"
        h = relu(conv2d(h, sd[key + ".weight"], sd[key + ".bias"], 2, 1))
    h = relu(linear(h.reshape(h.shape[0], -1), sd, "encoder.model.9"))
    out = linear(h, sd, "encoder.model.11")
    k = out.shape[1] // 2
    mu, logvar = out[:, :k], out[:, k:]
    h = relu(linear(z, sd, "decoder.model.0"))
    h = relu(linear(h, sd, "decoder.model.2"))
    first = sd["decoder.model.5.weight"].shape[0]
    h = h.reshape(h.shape[0], first, 4, 4)
    for n, idx in enumerate((5, 7, 9, 11)):
        key = f"decoder.model.{idx}"
        h = conv_transpose2d(h, sd[key + ".weight"], sd[key + ".bias"], 2, 1)
        if n < 3:
            h = relu(h)
    return {"mu": mu, "logvar": logvar, "logits": h}


def resnet_depths(sd):
    """Blocks per stage, from the keys `layer{s}.{j}.conv1.weight`."""
    depths = []
    for stage in range(1, 5):
        j = 0
        while f"layer{stage}.{j}.conv1.weight" in sd:
            j += 1
        depths.append(j)
    return depths


def resnet_forward(sd, x):
    """Pooled features of the CIFAR ResNet (basic blocks)."""
    h = relu(batch_norm(conv2d(x, sd["conv1.weight"], None, 1, 1), sd, "bn1"))
    for stage, depth in enumerate(resnet_depths(sd), start=1):
        for j in range(depth):
            key = f"layer{stage}.{j}"
            stride = 2 if stage > 1 and j == 0 else 1
            out = relu(batch_norm(conv2d(h, sd[key + ".conv1.weight"], None, stride, 1), sd, key + ".bn1"))
            out = batch_norm(conv2d(out, sd[key + ".conv2.weight"], None, 1, 1), sd, key + ".bn2")
            if key + ".downsample.0.weight" in sd:
                shortcut = conv2d(h, sd[key + ".downsample.0.weight"], None, stride, 0)
                shortcut = batch_norm(shortcut, sd, key + ".downsample.1")
            else:
                shortcut = h
            h = relu(out + shortcut)
    return {"features": h.mean(axis=(2, 3))}


def torch_vae(sd, channels, latent):
    """The VAE as torch.nn modules with disent's layout, loaded strictly."""
    import torch
    from torch import nn

    class Part(nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

    encoder = nn.Sequential(
        nn.Conv2d(channels, 32, 4, 2, 1), nn.ReLU(),
        nn.Conv2d(32, 32, 4, 2, 1), nn.ReLU(),
        nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
        nn.Conv2d(64, 64, 4, 2, 1), nn.ReLU(),
        nn.Flatten(), nn.Linear(1024, 256), nn.ReLU(), nn.Linear(256, 2 * latent),
    )
    decoder = nn.Sequential(
        nn.Linear(latent, 256), nn.ReLU(), nn.Linear(256, 1024), nn.ReLU(),
        nn.Unflatten(1, (64, 4, 4)),
        nn.ConvTranspose2d(64, 64, 4, 2, 1), nn.ReLU(),
        nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
        nn.ConvTranspose2d(32, 32, 4, 2, 1), nn.ReLU(),
        nn.ConvTranspose2d(32, channels, 4, 2, 1),
    )
    vae = nn.Module()
    vae.encoder, vae.decoder = Part(encoder), Part(decoder)
    vae.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=True)
    vae.eval()

    def forward(x, z):
        with torch.no_grad():
            out = vae.encoder.model(torch.from_numpy(x)).double().numpy()
            logits = vae.decoder.model(torch.from_numpy(z)).double().numpy()
        k = out.shape[1] // 2
        return {"mu": out[:, :k], "logvar": out[:, k:], "logits": logits}

    return forward


def torch_resnet(sd):
    """The CIFAR ResNet as torch.nn modules with torchvision's names, loaded strictly (the
    `num_batches_tracked` buffers absent from our export are filled in by PyTorch)."""
    import torch
    from torch import nn

    class BasicBlock(nn.Module):
        def __init__(self, c_in, width, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, width, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.downsample = None
            if stride != 1 or c_in != width:
                self.downsample = nn.Sequential(
                    nn.Conv2d(c_in, width, 1, stride, bias=False), nn.BatchNorm2d(width)
                )

        def forward(self, x):
            out = torch.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            shortcut = x if self.downsample is None else self.downsample(x)
            return torch.relu(out + shortcut)

    class ResNet(nn.Module):
        def __init__(self, in_channels, width, depths):
            super().__init__()
            self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            c_in = width
            for stage, depth in enumerate(depths):
                blocks = []
                for j in range(depth):
                    stride = 2 if stage > 0 and j == 0 else 1
                    blocks.append(BasicBlock(c_in, width << stage, stride))
                    c_in = width << stage
                setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))

        def forward(self, x):
            h = torch.relu(self.bn1(self.conv1(x)))
            for stage in range(1, 5):
                h = getattr(self, f"layer{stage}")(h)
            return h.mean(dim=(2, 3))

    in_channels, width = sd["conv1.weight"].shape[1], sd["conv1.weight"].shape[0]
    net = ResNet(in_channels, width, resnet_depths(sd))
    net.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=True)
    net.eval()

    def forward(x):
        with torch.no_grad():
            return {"features": net(torch.from_numpy(x)).double().numpy()}

    return forward


def max_differences(ours, reference):
    return {
        name: float(np.max(np.abs(np.asarray(reference[name], dtype=np.float64) - ours[name])))
        for name in ours
    }


def random_vae(rng, channels, latent):
    def conv(o, c):
        return rng.normal(0, np.sqrt(2.0 / (c * 16)), (o, c, 4, 4))

    def deconv(c, o):
        return rng.normal(0, np.sqrt(2.0 / (c * 4)), (c, o, 4, 4))

    def dense(o, i):
        return rng.normal(0, np.sqrt(2.0 / i), (o, i))

    shapes = {
        "encoder.model.0": conv(32, channels), "encoder.model.2": conv(32, 32),
        "encoder.model.4": conv(64, 32), "encoder.model.6": conv(64, 64),
        "encoder.model.9": dense(256, 1024), "encoder.model.11": dense(2 * latent, 256),
        "decoder.model.0": dense(256, latent), "decoder.model.2": dense(1024, 256),
        "decoder.model.5": deconv(64, 64), "decoder.model.7": deconv(64, 32),
        "decoder.model.9": deconv(32, 32), "decoder.model.11": deconv(32, channels),
    }
    sd = {}
    for key, weight in shapes.items():
        out = weight.shape[1] if key.startswith("decoder.model.") and weight.ndim == 4 else weight.shape[0]
        sd[key + ".weight"] = weight
        sd[key + ".bias"] = rng.normal(0, 0.1, out)
    return sd


def random_resnet(rng, in_channels, width, depths):
    sd = {}

    def conv(key, o, c, k):
        sd[key + ".weight"] = rng.normal(0, np.sqrt(2.0 / (c * k * k)), (o, c, k, k))

    def bn(key, c):
        # γ below 1 keeps the residual sums O(1), so that float32 rounding (relative ~1e-7)
        # stays well inside the absolute 1e-5 bound.
        sd[key + ".weight"] = rng.uniform(0.2, 0.6, c)
        sd[key + ".bias"] = rng.normal(0, 0.1, c)
        sd[key + ".running_mean"] = rng.normal(0, 0.1, c)
        sd[key + ".running_var"] = rng.uniform(0.5, 1.5, c)
        sd[key + ".num_batches_tracked"] = np.array(7, dtype=np.int64)

    conv("conv1", width, in_channels, 3)
    bn("bn1", width)
    c_in = width
    for stage, depth in enumerate(depths):
        w = width << stage
        for j in range(depth):
            key = f"layer{stage + 1}.{j}"
            stride = 2 if stage > 0 and j == 0 else 1
            conv(key + ".conv1", w, c_in, 3)
            bn(key + ".bn1", w)
            conv(key + ".conv2", w, w, 3)
            bn(key + ".bn2", w)
            if stride != 1 or c_in != w:
                conv(key + ".downsample.0", w, c_in, 1)
                bn(key + ".downsample.1", w)
            c_in = w
    return sd


def as_float32(sd):
    return {k: (v.astype(np.float32) if v.dtype.kind == "f" else v) for k, v in sd.items()}


def save_lightning_checkpoint(sd, weights):
    """The same state dict as a PyTorch Lightning checkpoint would hold it: a torch.save pickle
    `{"state_dict": {"net." + key: tensor}, "epoch": 3}`, next to WEIGHTS with suffix .pt."""
    import torch

    tensors = {"net." + k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()}
    torch.save({"state_dict": tensors, "epoch": 3}, weights.rsplit(".", 1)[0] + ".pt")


def contiguous(arrays):
    """safetensors.numpy.save_file writes an array's buffer as it lies in memory: NumPy results
    such as a mean over axes can be Fortran-ordered, so make every array C-ordered first."""
    return {k: np.ascontiguousarray(v) for k, v in arrays.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["check-vae", "check-resnet", "make-vae", "make-resnet"])
    parser.add_argument("weights")
    parser.add_argument("probe")
    parser.add_argument("--torch", action="store_true", help="also run torch.nn modules")
    parser.add_argument("--tol", type=float, default=1e-5)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--latent", type=int, default=10)
    parser.add_argument("--in-channels", type=int, default=3)
    parser.add_argument("--width", type=int, default=4)
    parser.add_argument("--layers", default="2,2,2,2")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    vae = args.mode.endswith("vae")
    if args.mode.startswith("make"):
        rng = np.random.default_rng(args.seed)
        if vae:
            sd = as_float32(random_vae(rng, args.channels, args.latent))
            probe = {
                "x": rng.uniform(0, 1, (3, args.channels, 64, 64)).astype(np.float32),
                "z": rng.normal(0, 1, (3, args.latent)).astype(np.float32),
            }
        else:
            depths = [int(d) for d in args.layers.split(",")]
            sd = as_float32(random_resnet(rng, args.in_channels, args.width, depths))
            probe = {"x": rng.normal(0, 1, (3, args.in_channels, 32, 32)).astype(np.float32)}
        save_file(contiguous(sd), args.weights)
        if args.torch:
            save_lightning_checkpoint(sd, args.weights)
    else:
        sd = load_file(args.weights)
        probe = load_file(args.probe)

    weights64 = {k: v.astype(np.float64) for k, v in sd.items() if v.dtype.kind == "f"}
    inputs64 = {k: probe[k].astype(np.float64) for k in (("x", "z") if vae else ("x",))}
    reference = vae_forward(weights64, **inputs64) if vae else resnet_forward(weights64, **inputs64)

    report = {}
    if args.mode.startswith("check"):
        report["numpy"] = max_differences(reference, probe)
    if args.torch:
        if vae:
            forward = torch_vae(sd, sd["encoder.model.0.weight"].shape[1], sd["decoder.model.0.weight"].shape[1])
            torch_out = forward(probe["x"], probe["z"])
        else:
            torch_out = torch_resnet(sd)(probe["x"])
        against = probe if args.mode.startswith("check") else reference
        report["torch"] = max_differences(torch_out, against)
    if args.mode.startswith("make"):
        probe.update({k: v.astype(np.float32) for k, v in reference.items()})
        save_file(contiguous(probe), args.probe)

    print(json.dumps(report))
    worst = max((d for part in report.values() for d in part.values()), default=0.0)
    if worst > args.tol:
        print(f"max |difference| {worst:.3g} exceeds {args.tol:g}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
