"""Check nk.sphere_eigenvalues far in the tail against an independent 30-digit computation, and time it.

Reference: mpref.eigenvalue (this folder): mpref's kernel recursion, mpmath's Legendre/Gegenbauer
functions and mpmath's adaptive quadrature over [0, pi] cut at half periods of P_k (no ntklib code).
Slow (about a minute per eigenvalue at k = 1000), so it is a script beside the tests, not a test:

    python tests/check_spectra_tail.py            # every check
    python tests/check_spectra_tail.py --quick    # the k <= 100 checks (about a minute)

Python puts this script's folder first on sys.path, so ``import mpref`` needs no path setting; the
benchmarks do not import from tests/. Results: benchmarks/README.md.
"""
import argparse
import time

CHECKS = [(3, 3, "ntk", 1000), (3, 3, "nngp", 1000), (3, 1, "ntk", 999), (10, 3, "ntk", 100), (10, 3, "nngp", 100),
          (10, 5, "nngp", 99), (5, 5, "nngp", 100)]


def main(argv=None):
    import mpref
    import ntklib as nk

    parser = argparse.ArgumentParser(description="far-tail eigenvalues against an independent 30-digit reference")
    parser.add_argument("--quick", action="store_true", help="only the checks with k <= 100")
    args = parser.parse_args(argv)
    for d, depth, kernel, k in CHECKS:
        if args.quick and k > 100:
            continue
        t0 = time.perf_counter()
        mu = nk.sphere_eigenvalues(nk.SphereKernel(depth, kernel=kernel), d, k)
        t_nk = time.perf_counter() - t0
        ref = float(mpref.eigenvalue(["relu"] * depth, kernel, d, k))
        rel = abs(mu[k] - ref) / abs(ref) if ref else abs(mu[k])
        print(f"d={d:2d} depth={depth} {kernel:4s} k={k:4d}: ntklib {mu[k]: .10e} ({t_nk:5.2f} s)  "
              f"reference {ref: .10e}  rel. diff {rel:.1e}  mu_k/mu_0 {mu[k] / mu[0]:.1e}", flush=True)


if __name__ == "__main__":
    main()
