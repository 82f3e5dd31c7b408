"""Time nk.ntk against a plain numpy implementation of the same recursion, in the same run.

Workload (issue #2): ReLU network of depth 3, n = 4000 points in d = 64, float64, K(X, X).
The reference is the recursion as one would first write it: whole n x n arrays, numpy ufuncs,
arccos and sin. Both are run ``--repeat`` times; the best time of each is reported with the ratio
ntklib / plain (target: <= 0.5). Run ``python benchmarks/bench_ntk.py --help`` for options;
``--threads 1`` pins torch to one thread to separate the effect of tiling from that of threads.
``--against PATH`` times instead ``nk.ntk`` of another checkout of ntklib (e.g. the commit before a
change) against this one in the same process, alternately, best of ``--repeat`` each.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import platform
import time

import numpy as np
import torch

import ntklib as nk


def plain_relu_ntk(X: np.ndarray, depth: int) -> np.ndarray:
    """The Arora et al. recursion for ReLU, written plainly on full n x n numpy arrays."""
    sigma = X @ X.T
    theta = sigma.copy()
    for _ in range(depth):
        q = np.diag(sigma)
        den = np.sqrt(np.outer(q, q))
        rho = np.clip(sigma / den, -1.0, 1.0)
        angle = np.arccos(rho)
        sigma = den * (np.sin(angle) + (np.pi - angle) * rho) / np.pi  # c_sigma = 2 times J_1 / (2 pi)
        sigma_dot = (np.pi - angle) / np.pi
        theta = theta * sigma_dot + sigma
    return theta


def load_checkout(path: str, name: str = "ntklib_against"):
    """The package ``ntklib`` of the checkout at ``path``, imported under ``name`` (beside this one)."""
    spec = importlib.util.spec_from_file_location(name, f"{path}/ntklib/__init__.py",
                                                  submodule_search_locations=[f"{path}/ntklib"])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def alternate(fns: dict, repeat: int) -> dict:
    """Best time of each callable, run alternately ``repeat`` times (so load drifts hit all alike)."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[key] = min(best[key], time.perf_counter() - t0)
    return best


def best_time(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--block-size", type=int, default=256)
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--against", metavar="PATH", help="time the nk.ntk of the ntklib checkout at PATH against this one")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    X = np.random.default_rng(0).standard_normal((args.n, args.d))
    if args.against:
        other = load_checkout(args.against)
        best = alternate({"against": lambda: other.ntk(X, depth=args.depth),
                          "this": lambda: nk.ntk(X, depth=args.depth)}, args.repeat)
        print(f"ReLU NTK depth {args.depth}, n={args.n}, d={args.d}: {args.against} {best['against']:.3f} s, "
              f"this {best['this']:.3f} s, this/against {best['this'] / best['against']:.3f}")
        return best
    t_plain, K_plain = best_time(lambda: plain_relu_ntk(X, args.depth), args.repeat)
    t_nk, K_nk = best_time(lambda: nk.ntk(X, depth=args.depth, block_size=args.block_size), args.repeat)
    err = float(np.max(np.abs(K_nk - K_plain)) / np.max(np.abs(K_plain)))
    res = {
        "workload": f"ReLU NTK depth {args.depth}, n={args.n}, d={args.d}, float64",
        "torch_threads": torch.get_num_threads(),
        "block_size": args.block_size,
        "plain_numpy_s": round(t_plain, 4),
        "ntklib_s": round(t_nk, 4),
        "ratio": round(t_nk / t_plain, 3),
        "max_rel_diff": err,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
    for k, v in res.items():
        print(f"{k:>15}: {v}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)
    return res


if __name__ == "__main__":
    main()
