"""An independent high-precision (mpmath, 40 digits) implementation of the kernel recursion.

Written from the published closed forms (Cho & Saul 2009; Williams 1997) with none of ntklib's
code, to check ntklib's float64 results to ~1e-15, in particular at and near u = +-1 where float64
formulas can lose digits. Also the Funk-Hecke eigenvalues on the sphere by mpmath's own adaptive
quadrature and Gegenbauer functions (:func:`eigenvalue`), used by tests/test_sphere.py and by the
far-tail check tests/check_spectra_tail.py.

No global state: every function works under a local ``mp.workdps`` (at least :data:`DPS` digits,
more if the caller has set more); importing this module leaves ``mp.mp.dps`` alone.
"""
import functools

import mpmath as mp

DPS = 40  # digits of the kernel recursion


def _at_least_dps(fn):
    """Run ``fn`` under mp.workdps(max(DPS, the caller's digits)), restoring the caller's after."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with mp.workdps(max(DPS, mp.mp.dps)):
            return fn(*args, **kwargs)

    return wrapped


@_at_least_dps
def J(n, u):
    """Cho & Saul's J_n at cos(theta) = u."""
    u = mp.mpf(u)
    th = mp.acos(u)
    s = mp.sqrt(1 - u * u)
    j_prev, j = mp.pi - th, s + (mp.pi - th) * u
    if n == 0:
        return j_prev
    for m in range(1, n):
        j_prev, j = j, (2 * m + 1) * u * j + m * m * s * s * j_prev
    return j


def double_fact_odd(k):
    out = 1
    for i in range(1, 2 * k, 2):
        out *= i
    return out


@_at_least_dps
def duals(name, q1, q2, q12):
    """(E[s(u)s(v)], E[s'(u)s'(v)], c_sigma) for an activation name ('relu2' is ReLU^2)."""
    q1, q2, q12 = mp.mpf(q1), mp.mpf(q2), mp.mpf(q12)
    if name.startswith("relu") or name == "step":
        k = 0 if name == "step" else (1 if name == "relu" else int(name[4:]))
        den = mp.sqrt(q1 * q2)
        u = q12 / den if den > 0 else mp.mpf(0)
        u = max(min(u, 1), -1)
        e = den**k * J(k, u) / (2 * mp.pi)
        ed = mp.mpf(0) if k == 0 else k * k * den ** (k - 1) * J(k - 1, u) / (2 * mp.pi)
        return e, ed, mp.mpf(2) / double_fact_odd(k)
    if name == "erf":
        e = 2 / mp.pi * mp.asin(2 * q12 / mp.sqrt((1 + 2 * q1) * (1 + 2 * q2)))
        ed = 4 / mp.pi / mp.sqrt((1 + 2 * q1) * (1 + 2 * q2) - 4 * q12**2)
        return e, ed, mp.pi / (2 * mp.asin(mp.mpf(2) / 3))
    if name in ("sin", "cos"):
        a, b = mp.exp(-(q1 + q2) / 2) * mp.sinh(q12), mp.exp(-(q1 + q2) / 2) * mp.cosh(q12)
        c = 1 / (mp.exp(-1) * (mp.sinh(1) if name == "sin" else mp.cosh(1)))
        return (a, b, c) if name == "sin" else (b, a, c)
    if name == "identity":
        return q12, mp.mpf(1), mp.mpf(1)
    slopes = two_slopes(name)
    if slopes is not None:  # a max(z, 0) + b min(z, 0) = a relu(z) - b relu(-z); (u, -v) has -u
        a, b = slopes
        den = mp.sqrt(q1 * q2)
        u = max(min(q12 / den if den > 0 else mp.mpf(0), 1), -1)
        e = den * ((a * a + b * b) * J(1, u) - 2 * a * b * J(1, -u)) / (2 * mp.pi)
        ed = ((a * a + b * b) * J(0, u) + 2 * a * b * J(0, -u)) / (2 * mp.pi)
        return e, ed, 2 / (a * a + b * b)
    if name == "sign":
        den = mp.sqrt(q1 * q2)
        u = max(min(q12 / den if den > 0 else mp.mpf(0), 1), -1)
        return (2 / mp.pi * mp.asin(u) if den > 0 else mp.mpf(0)), mp.mpf(0), mp.mpf(1)
    if name == "gelu":
        return _gelu(q1, q2, q12) + (1 / _gelu(mp.mpf(1), mp.mpf(1), mp.mpf(1))[0],)
    raise KeyError(name)


def two_slopes(name):
    """(a, b) of the two-slope ReLU a max(z, 0) + b min(z, 0) named `name`, or None."""
    if name == "abs":
        return mp.mpf(1), mp.mpf(-1)
    if name == "leaky_relu":
        return mp.mpf(1), mp.mpf(0.01)  # the float slope, exactly
    if name.startswith("leaky_relu(") or name.startswith("abrelu("):
        values = [mp.mpf(float(v)) for v in name[name.index("(") + 1:-1].split(",")]
        return (mp.mpf(1), values[0]) if len(values) == 1 else tuple(values)
    return None


def _gelu(q1, q2, q12):
    """GELU z Phi(z): with c_i = 1 + q_ii, det = c1 c2 - q12^2, r = q12 / sqrt(c1 c2), by Stein's
    lemma on E[u v 1(u > X) 1(v > Y)] (X, Y independent standard normals):
    E = q12 (1/4 + asin(r) / (2 pi)) + (q11 q22 det + q12^2) / (2 pi c1 c2 sqrt(det)),
    E' = 1/4 + asin(r) / (2 pi) + q12 / (2 pi sqrt(det)) (1/c1 + 1/c2 + 1/det)."""
    c1, c2 = 1 + q1, 1 + q2
    det = c1 * c2 - q12 * q12
    p = mp.mpf(1) / 4 + mp.asin(q12 / mp.sqrt(c1 * c2)) / (2 * mp.pi)
    e = q12 * p + (q1 * q2 * det + q12 * q12) / (2 * mp.pi * c1 * c2 * mp.sqrt(det))
    ed = p + q12 / (2 * mp.pi * mp.sqrt(det)) * (1 / c1 + 1 / c2 + 1 / det)
    return e, ed


@_at_least_dps
def kernel(names, x, y, *, bias_var=0.0, ntk=True):
    """Theta^(L)(x, y) (or Sigma^(L)) for hidden-layer activations `names`, inputs as lists."""
    b = mp.mpf(bias_var)
    sxy = mp.fsum(mp.mpf(a) * mp.mpf(c) for a, c in zip(x, y)) + b
    sxx = mp.fsum(mp.mpf(a) ** 2 for a in x) + b
    syy = mp.fsum(mp.mpf(c) ** 2 for c in y) + b
    theta = sxy
    for name in names:
        e, ed, c = duals(name, sxx, syy, sxy)
        exx = duals(name, sxx, sxx, sxx)[0]
        eyy = duals(name, syy, syy, syy)[0]
        sxy, sxx, syy = c * e + b, c * exx + b, c * eyy + b
        theta = theta * c * ed + sxy
    return theta if ntk else sxy


@_at_least_dps
def kappa(names, u, *, ntk=True):
    """The unit-sphere kernel at x . y = u."""
    u = mp.mpf(u)
    return kernel(names, [mp.mpf(1), mp.mpf(0)], [u, mp.sqrt(1 - u * u)], ntk=ntk)


def eigenvalue(names, kernel_name, d, k, *, dps=30):
    """mu_k on S^(d-1) of the unit-sphere kernel of `names` ("ntk" or "nngp"), to about `dps` digits.

    The Funk-Hecke integral in the angle, mu_k = c_d int_0^pi kappa(cos a) P_k(cos a) sin^(d-2) a da,
    by mpmath's adaptive quadrature on one subinterval per half period of P_k, with mpmath's own
    Chebyshev / Legendre / Gegenbauer functions and the recursion above (no ntklib code).
    """
    with mp.workdps(dps):
        lam = mp.mpf(d - 2) / 2

        def P(t):
            if d == 2:
                return mp.chebyt(k, t)
            if d == 3:
                return mp.legendre(k, t)
            return mp.gegenbauer(k, lam, t) / mp.gegenbauer(k, lam, 1)

        def f(angle):
            t = mp.cos(angle)
            return kappa(names, t, ntk=kernel_name == "ntk") * P(t) * mp.sin(angle) ** (d - 2)

        cuts = [mp.pi * j / (k + 2) for j in range(k + 3)]
        c = mp.gamma(mp.mpf(d) / 2) / (mp.sqrt(mp.pi) * mp.gamma(mp.mpf(d - 1) / 2))
        return c * mp.quad(f, cuts)
