"""How far training moved an SSL run's online network from its step-0 weights.

For each run folder: ||w_T - w_0|| / ||w_0|| per convolution and linear weight, per batch-norm
scale initialised to 1, and the RMS change of the parameters initialised to 0 (biases, BN
shifts, zero-initialised residual scales), between `initial/step-00000000/online.bpk` and the
newest checkpoint. Prints one markdown row per run (medians over the tensors of each kind).

Reads burnpack files directly (burn-pack 0.22: magic, u16 version, u32 LE metadata length,
CBOR metadata, data aligned to 256 bytes). Needs numpy and cbor2.

    python3 docs/scripts/weight_motion.py runs/ssl-study-v2/*-seed0
"""

import os
import struct
import sys

import cbor2
import numpy as np


def load(path):
    data = open(path, "rb").read()
    length = struct.unpack("<I", data[6:10])[0]
    meta = cbor2.loads(data[10 : 10 + length])
    start = (10 + length + 255) // 256 * 256
    tensors = {}
    for name, entry in meta["tensors"].items():
        if "F32" not in str(entry["dtype"]).upper():
            continue
        lo, hi = entry["data_offsets"]
        tensors[name] = np.frombuffer(data[start + lo : start + hi], dtype="<f4").reshape(entry["shape"])
    return tensors


def newest_checkpoint(run):
    folder = os.path.join(run, "checkpoints")
    steps = sorted(d for d in os.listdir(folder) if d.startswith("step-"))
    return os.path.join(folder, steps[-1], "online.bpk")


def motion(run):
    before = load(os.path.join(run, "initial", "step-00000000", "online.bpk"))
    after = load(newest_checkpoint(run))
    kinds = {"conv": [], "linear": [], "scale": [], "zero": []}
    for name, w0 in before.items():
        if "running" in name or name not in after:
            continue
        change = after[name] - w0
        if w0.ndim == 4:
            kinds["conv"].append(np.linalg.norm(change) / np.linalg.norm(w0))
        elif w0.ndim == 2:
            kinds["linear"].append(np.linalg.norm(change) / np.linalg.norm(w0))
        elif np.allclose(w0, 1.0):
            kinds["scale"].append(np.linalg.norm(change) / np.linalg.norm(w0))
        elif np.allclose(w0, 0.0):
            kinds["zero"].append(float(np.sqrt(np.mean(change**2))))
    return {kind: float(np.median(values)) for kind, values in kinds.items() if values}


if __name__ == "__main__":
    print("| run | conv weights (rel.) | linear weights (rel.) | BN scales (rel.) | zero-initialised (RMS) |")
    print("|---|---|---|---|---|")
    for run in sys.argv[1:]:
        m = motion(run)
        cells = " | ".join(f"{m[k]:.4f}" if k in m else "–" for k in ("conv", "linear", "scale", "zero"))
        print(f"| {os.path.basename(run.rstrip('/'))} | {cells} |")
