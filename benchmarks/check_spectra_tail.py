"""Check nk.sphere_eigenvalues far in the tail against an independent 30-digit computation, and time it.

Reference: tests/mpref.py's kernel recursion, mpmath's Legendre/Gegenbauer functions and mpmath's
adaptive quadrature over [0, pi] cut at half periods of P_k (no ntklib code). Slow (about a minute
per eigenvalue at k = 1000), so it is a script, not a test: run `python benchmarks/check_spectra_tail.py`.
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import ntklib as nk  # noqa: E402
from test_spectra import mp_eigenvalue  # noqa: E402

CHECKS = [(3, 3, "ntk", 1000), (3, 3, "nngp", 1000), (3, 1, "ntk", 999), (10, 3, "ntk", 100), (10, 3, "nngp", 100),
          (10, 5, "nngp", 99), (5, 5, "nngp", 100)]

for d, depth, kernel, k in CHECKS:
    t0 = time.perf_counter()
    mu = nk.sphere_eigenvalues(nk.SphereKernel(depth, kernel=kernel), d, k)
    t_nk = time.perf_counter() - t0
    ref = float(mp_eigenvalue(["relu"] * depth, kernel, d, k))
    rel = abs(mu[k] - ref) / abs(ref) if ref else abs(mu[k])
    print(f"d={d:2d} depth={depth} {kernel:4s} k={k:4d}: ntklib {mu[k]: .10e} ({t_nk:5.2f} s)  "
          f"reference {ref: .10e}  rel. diff {rel:.1e}  mu_k/mu_0 {mu[k] / mu[0]:.1e}", flush=True)
