"""Time nk.sphere_eigenvalues against a plain per-degree scipy quadrature, in the same run.

Workloads (issue #3): mu_0..mu_kmax of the depth-3 ReLU NTK and NNGP on S^2 (kmax = 1000) and on S^9
(kmax = 100). The plain reference integrates the Funk-Hecke formula for each k separately with
scipy.integrate.quad in t (weight (1-t^2)^((d-3)/2), scipy's Gegenbauer polynomials); it is also
shown how far it is from the exact values in the tail, where it returns round-off.
"""
import argparse
import math
import time
import warnings

import numpy as np
from scipy import integrate, special

import ntklib as nk


def relu_kappa(depth, kernel):
    """The ReLU NTK / NNGP on the sphere as a plain numpy function of a scalar u (chapter 1's recursion)."""

    def f(u):
        s, th = u, u
        for _ in range(depth):
            a = np.arccos(min(max(s, -1.0), 1.0))
            s_new = (np.sin(a) + (np.pi - a) * s) / np.pi
            th = th * (np.pi - a) / np.pi + s_new
            s = s_new
        return th if kernel == "ntk" else s

    return f


def plain(kappa, d, kmax):
    lam = (d - 2) / 2
    c = math.gamma(d / 2) / (math.sqrt(math.pi) * math.gamma((d - 1) / 2))
    out = np.empty(kmax + 1)
    for k in range(kmax + 1):
        if d == 3:
            P = lambda t: special.eval_legendre(k, t)  # noqa: E731
        else:
            P = lambda t: special.eval_gegenbauer(k, lam, t) / special.eval_gegenbauer(k, lam, 1.0)  # noqa: E731
        f = lambda t: float(kappa(t)) * P(t) * (1 - t * t) ** ((d - 3) / 2)  # noqa: E731
        out[k] = c * integrate.quad(f, -1, 1, limit=400)[0]
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description="time nk.sphere_eigenvalues against per-degree scipy quad")
    parser.add_argument("--quick", action="store_true",
                        help="kmax = 300 on S^2 and 50 on S^9 (about 15 s) instead of 1000 and 100")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    for d, kmax in [(3, 300), (10, 50)] if args.quick else [(3, 1000), (10, 100)]:
        for kernel in ("ntk", "nngp"):
            kern = nk.SphereKernel(3, kernel=kernel)
            t0 = time.perf_counter()
            mu = nk.sphere_eigenvalues(kern, d, kmax)
            t_nk = time.perf_counter() - t0
            t0 = time.perf_counter()
            ref = plain(relu_kappa(3, kernel), d, kmax)
            t_plain = time.perf_counter() - t0
            worst = np.max(np.abs(ref - mu) / np.abs(mu))
            print(f"d={d:2d} kmax={kmax:4d} {kernel:4s}: ntklib {t_nk:6.2f} s | plain quad {t_plain:6.2f} s "
                  f"(ratio {t_nk / t_plain:.3f}) | plain's worst relative error {worst:.1e} "
                  f"| mu_kmax/mu_0 {mu[kmax] / mu[0]:.1e}", flush=True)


if __name__ == "__main__":
    main()
