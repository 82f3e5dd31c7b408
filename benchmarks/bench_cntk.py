"""Time nk.cntk against a straightforward per-pair loop implementation, in the same run.

Workloads (issue #5), float64, 2 cores; depth counts convolutional layers (Arora et al.'s Table 1
depth 3 is depth=2):
  1. CNTK-GAP, depth 2, 200 digits images (8x8): 200 x 200 Gram.       target < 10 s
  2. CNTK-V, depth 2, 100 CIFAR-shaped random images (3x32x32).
  3. CNTK-GAP, depth 2, 50 CIFAR-shaped random images: 50 x 50 Gram.   target < 60 s, peak memory < 4 GB
     (the loop reference runs on 6 image pairs and is reported per pair).
The loop reference computes each image pair separately with plain numpy: the pixel-pair arrays,
the 3x3 patch mean as nine shifted sums, the ReLU duals with arccos.

``--against PATH`` times instead the CNTK-GAP of another checkout of ntklib (e.g. the commit before a
change) against this one in the same process, alternately, best of 3 each, on 4 CIFAR-shaped images
and on 200 digits (depth 2; a checkout from before issue 21, with ``ntklib/cntk.py``, counts the
readout too and gets depth 3).
"""
import os
import resource
import subprocess
import sys
import time

import numpy as np

import ntklib as nk
from bench_ntk import alternate, load_checkout


def loop_pair(x, y, conv_layers, gap):
    """Plain per-pair CNTK (Arora et al.'s recursion) for two images (C, H, W)."""
    C, H, W = x.shape
    depth = conv_layers + 1  # the loop below counts the readout, as Table 1

    def patch(S):
        P = np.pad(S, 1)
        return sum(P[a:a + H, b:b + W, a:a + H, b:b + W] for a in range(3) for b in range(3)) / 9.0

    def relu(S, lx, ly):
        L = np.sqrt(lx[:, :, None, None] * ly[None, None, :, :])
        r = np.clip(S / L, -1, 1)
        t = np.arccos(r)
        return L * (np.sin(t) + (np.pi - t) * r) / np.pi, (np.pi - t) / np.pi

    def self_var(z):
        Sz = np.einsum("cij,ckl->ijkl", z, z)
        out = [patch(Sz)]
        for _ in range(2, depth):
            d = np.einsum("ijij->ij", out[-1])
            out.append(patch(relu(out[-1], d, d)[0]))
        return [np.einsum("ijij->ij", s) for s in out]

    lx, ly = self_var(x), self_var(y)
    sigma = patch(np.einsum("cij,ckl->ijkl", x, y))
    theta = sigma
    for h in range(2, depth):
        K, Kd = relu(sigma, lx[h - 2], ly[h - 2])
        theta = patch(theta * Kd + K)
        sigma = patch(K)
    K, Kd = relu(sigma, lx[depth - 2], ly[depth - 2])
    theta = theta * Kd + K
    return theta.mean() if gap else np.einsum("ijij->", theta)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def against(path):
    other = load_checkout(path)
    old_count = os.path.exists(os.path.join(path, "ntklib", "cntk.py"))  # depth counted the readout
    depth = 3 if old_count else 2
    digits, _ = nk.data.digits()
    workloads = {"4 CIFAR-shaped 3x32x32": np.random.default_rng(2).standard_normal((4, 3, 32, 32)),
                 "200 digits 1x8x8": nk.data.standardize(digits[:200])[0]}
    for name, X in workloads.items():
        best = alternate({"against": lambda: other.cntk(X, depth=depth, pooling="gap"),
                          "this": lambda: nk.cntk(X, depth=2, pooling="gap")}, 3)
        print(f"CNTK-GAP depth 2, {name}: {path} {best['against']:.3f} s, this {best['this']:.3f} s, "
              f"this/against {best['this'] / best['against']:.3f}", flush=True)


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--against":
        against(sys.argv[2])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--cifar-gap-only":  # run in a subprocess for peak memory
        X = np.random.default_rng(2).standard_normal((50, 3, 32, 32))
        t, _ = timed(lambda: nk.cntk(X, depth=2, pooling="gap"))
        print(f"{t:.2f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")
        return
    digits, _ = nk.data.digits()
    D = nk.data.standardize(digits[:200])[0]
    t_nk, K = timed(lambda: nk.cntk(D, depth=2, pooling="gap"))
    t_loop, Kl = timed(lambda: np.array([[loop_pair(D[i], D[j], 2, True) if j >= i else 0.0 for j in range(200)]
                                          for i in range(200)]))
    Kl = np.triu(Kl) + np.triu(Kl, 1).T
    print(f"1. CNTK-GAP depth 2, 200 digits: ntklib {t_nk:.2f} s, loop {t_loop:.2f} s, ratio {t_nk / t_loop:.3f}, "
          f"max rel diff {np.abs(K - Kl).max() / np.abs(Kl).max():.1e}", flush=True)

    X = np.random.default_rng(1).standard_normal((100, 3, 32, 32))
    t_nk, K = timed(lambda: nk.cntk(X, depth=2, pooling="vanilla"))
    t_loop, Kl = timed(lambda: np.array([[loop_pair(X[i], X[j], 2, False) for j in range(10)] for i in range(10)]))
    per_pair_loop = t_loop / 100
    print(f"2. CNTK-V depth 2, 100 CIFAR-shaped: ntklib {t_nk:.2f} s for 5050 pairs; loop {per_pair_loop * 1e3:.1f} ms "
          f"per pair (~{per_pair_loop * 5050:.0f} s for all), ratio {t_nk / (per_pair_loop * 5050):.4f}, "
          f"max rel diff on 10x10 {np.abs(K[:10, :10] - Kl).max() / np.abs(Kl).max():.1e}", flush=True)

    out = subprocess.run([sys.executable, __file__, "--cifar-gap-only"], capture_output=True, text=True, check=True)
    t_nk, peak_mb = map(float, out.stdout.split())
    X = np.random.default_rng(2).standard_normal((50, 3, 32, 32))
    t_loop, _ = timed(lambda: [loop_pair(X[0], X[j], 2, True) for j in range(6)])
    per_pair_loop = t_loop / 6
    print(f"3. CNTK-GAP depth 2, 50 CIFAR-shaped: ntklib {t_nk:.1f} s, peak memory {peak_mb:.0f} MB; loop "
          f"{per_pair_loop:.2f} s per pair (~{per_pair_loop * 1275:.0f} s for the 1275 pairs), "
          f"ratio {t_nk / (per_pair_loop * 1275):.3f}", flush=True)


if __name__ == "__main__":
    main()
