"""Time nk.empirical_ntk: structured path vs generic torch.func path vs a per-sample autograd loop.

Workload (issue #4): MLP of width 512, depth 3, n = 500 inputs in d = 64, float64, K(X, X).
Target: the structured path under 0.3 s on 2 cores. All three run in the same process; the loop and
the generic path are the references (the full Jacobian here would be 500 x ~560k = 2.2 GB, so both
work in chunks).

``--train`` times instead one step of nk.train on the finite-width chapter's workload (20 points in
d = 3, an antisymmetric two-layer ReLU MLP of widths 128, 512, 2048, full-batch GD): the written-out
gradient (``method="structured"``) against autograd (``method="autograd"``), in the same process.
"""
import argparse
import time

import numpy as np
import torch

import ntklib as nk


def per_sample_loop(model, X):
    params = [p for p in model.parameters()]
    theta = torch.zeros(len(X), len(X), dtype=torch.float64)
    chunk = 50
    for i0 in range(0, len(X), chunk):
        gi = []
        for x in X[i0:i0 + chunk]:
            g = torch.autograd.grad(model(x[None]).sum(), params)
            gi.append(torch.cat([t.flatten() for t in g]))
        gi = torch.stack(gi)
        for j0 in range(0, len(X), chunk):
            gj = gi if j0 == i0 else torch.stack([torch.cat([t.flatten() for t in torch.autograd.grad(model(x[None]).sum(), params)])
                                                  for x in X[j0:j0 + chunk]])
            theta[i0:i0 + chunk, j0:j0 + chunk] = gi @ gj.T
    return theta


def bench_train(steps):
    X = nk.data.sphere(20, 3, seed=1)
    y = np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2]
    print(f"nk.train, GD, n = 20, d = 3, antisymmetric depth-1 ReLU MLP, {steps} steps, "
          f"torch threads {torch.get_num_threads()}")
    for width in (128, 512, 2048):
        times = {}
        for method in ("structured", "autograd"):
            net = nk.MLP(3, width, 1, antisymmetric=True, seed=0)
            nk.train(net, X, y, lr=0.05, steps=5, method=method, progress=False)  # warm-up
            t0 = time.perf_counter()
            nk.train(net, X, y, lr=0.05, steps=steps, record_every=steps, method=method, progress=False)
            times[method] = (time.perf_counter() - t0) / steps
        print(f"width {width:>5}: structured {1e6 * times['structured']:7.1f} us/step, autograd "
              f"{1e6 * times['autograd']:7.1f} us/step, ratio structured/autograd "
              f"{times['structured'] / times['autograd']:.3f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--skip-loop", action="store_true", help="skip the slow per-sample loop")
    p.add_argument("--train", action="store_true", help="time nk.train's step instead (see the docstring)")
    p.add_argument("--steps", type=int, default=300, help="steps per nk.train timing (with --train)")
    args = p.parse_args(argv)
    if args.train:
        return bench_train(args.steps)
    X = torch.from_numpy(np.random.default_rng(0).standard_normal((args.n, 64)))
    net = nk.MLP(64, args.width, args.depth, seed=0)
    times = {}
    t0 = time.perf_counter(); K = nk.empirical_ntk(net, X); times["structured"] = time.perf_counter() - t0
    t0 = time.perf_counter(); Kj = nk.empirical_ntk(net, X, method="jacobian"); times["torch.func"] = time.perf_counter() - t0
    diff = {"torch.func": float((K - Kj).abs().max() / K.abs().max())}
    if not args.skip_loop:
        t0 = time.perf_counter(); Kl = per_sample_loop(net, X); times["per-sample loop"] = time.perf_counter() - t0
        diff["per-sample loop"] = float((K - Kl).abs().max() / K.abs().max())
    print(f"MLP width {args.width}, depth {args.depth}, n = {args.n}, float64, torch threads {torch.get_num_threads()}")
    for name, t in times.items():
        extra = f"  ratio structured/this {times['structured'] / t:.4f}  max rel diff {diff[name]:.1e}" if name in diff else ""
        print(f"{name:>16}: {t:8.3f} s{extra}")


if __name__ == "__main__":
    main()
