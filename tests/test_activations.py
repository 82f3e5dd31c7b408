"""Activations and their duals: closed forms against quadrature, Monte Carlo and 40-digit references;
the mpmath path of every closed form; names, reprs and equality that round-trip."""
import math
import pickle

import mpmath as mp
import numpy as np
import pytest
import torch
from scipy import integrate

import ntklib as nk
from mpref import J as mp_J
from mpref import duals as mp_duals
from mpref import kernel as mp_kernel
from ntklib.activations import ClosedForm
from ntklib.style import COLORS

#: every closed form the library names (add one to ACTIVATION_NAMES and it gets every test below)
CLOSED = list(dict.fromkeys(nk.get_activation(n).name for n in nk.ACTIVATION_NAMES if nk.get_activation(n).closed_form))
QUADRATURE = [n for n in nk.ACTIVATION_NAMES if not nk.get_activation(n).closed_form]
EPS = float(np.finfo(np.float64).eps)


def act(name):
    return nk.get_activation(name)


def test_every_closed_form_is_covered():
    assert CLOSED == ["relu", "step", "relu2", "relu3", "erf", "sin", "cos", "identity", "abs", "leaky_relu", "sign",
                      "gelu"]
    assert QUADRATURE == ["tanh", "softplus", "sigmoid"]


# ----------------------------------------------------------------------------------------------
# arc-cosine functions
# ----------------------------------------------------------------------------------------------
THETAS = np.linspace(0.0, np.pi, 41)


def test_J_low_orders_match_closed_forms():
    t = THETAS
    np.testing.assert_allclose(nk.arc_cosine_J(0, t), np.pi - t, rtol=0, atol=1e-15)
    np.testing.assert_allclose(nk.arc_cosine_J(1, t), np.sin(t) + (np.pi - t) * np.cos(t), rtol=0, atol=1e-15)
    j2 = 3 * np.sin(t) * np.cos(t) + (np.pi - t) * (1 + 2 * np.cos(t) ** 2)
    np.testing.assert_allclose(nk.arc_cosine_J(2, t), j2, rtol=0, atol=1e-14)


@pytest.mark.parametrize("n", range(0, 7))
def test_J_at_zero_is_pi_double_factorial(n):
    assert nk.arc_cosine_J(n, 0.0) == pytest.approx(math.pi * math.prod(range(1, 2 * n, 2)), rel=1e-15)


@pytest.mark.parametrize("n", range(1, 6))
def test_J_derivative_identity(n):
    """d/dtheta J_n = -n^2 sin(theta) J_{n-1}, by a central difference with h = 1e-5.

    The difference's error is the truncation h^2 max|J_n'''| / 6 plus the rounding of the two
    values, about eps max|J_n| / h. Both scale with the size of J_n, max|J_n| = J_n(0) =
    pi (2n-1)!! (3e3 at n = 5), so the error is ~1e-10 *relative to J_n(0)* (measured: 2e-11 at
    n = 1 to 1e-10 at n = 5), and that is what is asserted, with a margin of 2. A wrong coefficient
    in the recursion is off by order J_n(0)."""
    t, h = THETAS[1:-1], 1e-5
    fd = (nk.arc_cosine_J(n, t + h) - nk.arc_cosine_J(n, t - h)) / (2 * h)
    scale = math.pi * math.prod(range(1, 2 * n, 2))
    np.testing.assert_allclose(fd, -(n**2) * np.sin(t) * nk.arc_cosine_J(n - 1, t), rtol=0, atol=2e-10 * scale)


@pytest.mark.parametrize("n", range(0, 6))
def test_J_matches_40_digit_reference(n):
    for t in THETAS:
        ref = float(mp_J(n, mp.cos(mp.mpf(t))))
        assert nk.arc_cosine_J(n, t) == pytest.approx(ref, rel=1e-13, abs=1e-14 * math.pi * 3**n)


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_arc_cosine_identity_by_integration(n):
    """E_w[relu(w.x)^n relu(w.y)^n] = |x|^n |y|^n J_n / (2 pi) for w ~ N(0, I_2), by polar quadrature."""
    x, y = np.array([1.3, 0.0]), 0.7 * np.array([np.cos(1.1), np.sin(1.1)])
    step = (lambda z: (z > 0) * 1.0) if n == 0 else (lambda z: np.maximum(z, 0.0) ** n)

    def integrand(r, phi):
        w = r * np.array([np.cos(phi), np.sin(phi)])
        return step(w @ x) * step(w @ y) * np.exp(-r * r / 2) / (2 * np.pi) * r

    val = integrate.dblquad(integrand, 0, 2 * np.pi, 0, 12, epsabs=1e-12, epsrel=1e-11)[0]
    # the product is non-zero only for phi in a wedge; dblquad handles the kinks to ~1e-9
    expected = 1.3**n * 0.7**n * nk.arc_cosine_J(n, 1.1) / (2 * np.pi)
    assert val == pytest.approx(expected, rel=1e-7)


# ----------------------------------------------------------------------------------------------
# closed-form duals
# ----------------------------------------------------------------------------------------------
COVS = [(1.0, 0.3, 1.0), (2.0, -0.9, 0.7), (0.5, 0.5, 0.5), (1.5, -1.5, 1.5), (0.3, 0.0, 2.0), (1.0, 0.999, 1.0)]


@pytest.mark.parametrize("name", CLOSED)
@pytest.mark.parametrize("cov", COVS)
def test_closed_form_duals_match_40_digit_reference(name, cov):
    a, c, b = cov
    e, ed, _ = mp_duals(name, a, b, c)
    A = act(name)
    assert A.dual(a, c, b) == pytest.approx(float(e), rel=1e-14, abs=1e-15)
    assert A.dual_deriv(a, c, b) == pytest.approx(float(ed), rel=1e-14, abs=1e-15)


@pytest.mark.parametrize("name", CLOSED)
@pytest.mark.parametrize("cov", COVS[:2])
def test_closed_form_duals_match_2d_integration(name, cov):
    """Independent check of the formulas themselves: adaptive 2-D integration over (z1, z2)."""
    a, c, b = cov
    A = act(name)
    L = np.linalg.cholesky(np.array([[a, c], [c, b]]))

    def expect(f):
        """Nested 1-D adaptive quadrature with breakpoints at the kinks z1 = 0 and v = 0."""

        def inner(z1):
            u = L[0, 0] * z1
            kink = -L[1, 0] * z1 / L[1, 1]
            g = lambda z2: f(L[1, 0] * z1 + L[1, 1] * z2) * math.exp(-z2 * z2 / 2)  # noqa: E731
            val = integrate.quad(g, -12, 12, points=[kink] if abs(kink) < 12 else None, epsabs=1e-13, limit=200)[0]
            return f(u) * val * math.exp(-z1 * z1 / 2) / (2 * math.pi)

        return integrate.quad(inner, -12, 12, points=[0.0], epsabs=1e-12, limit=200)[0]

    sig = lambda z: float(A(torch.tensor(z, dtype=torch.float64)))  # noqa: E731
    dsig = lambda z: float(A.derivative(torch.tensor(z, dtype=torch.float64)))  # noqa: E731
    assert A.dual(a, c, b) == pytest.approx(expect(sig), rel=1e-9, abs=1e-12)
    if name != "step":  # the step's derivative is a Dirac mass: its dual is 0 by convention
        assert A.dual_deriv(a, c, b) == pytest.approx(expect(dsig), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", CLOSED)
def test_closed_form_duals_match_monte_carlo(name):
    """Monte Carlo with 4e5 samples; tolerance = 5 standard errors."""
    a, c, b = 1.2, 0.4, 0.8
    A = act(name)
    g = torch.Generator().manual_seed(0)
    z = torch.randn(400_000, 2, generator=g, dtype=torch.float64)
    L = torch.linalg.cholesky(torch.tensor([[a, c], [c, b]], dtype=torch.float64))
    uv = z @ L.T
    for f, exact in [(A, A.dual(a, c, b)), (A.derivative, A.dual_deriv(a, c, b))]:
        s = f(uv[:, 0]) * f(uv[:, 1])
        se = float(s.std()) / math.sqrt(len(s))
        assert abs(float(s.mean()) - exact) <= 5 * se + 1e-12


@pytest.mark.parametrize("name", CLOSED)
def test_c_sigma_matches_quadrature(name):
    A = act(name)
    second = integrate.quad(
        lambda z: float(A(torch.tensor(z, dtype=torch.float64))) ** 2 * math.exp(-z * z / 2) / math.sqrt(2 * math.pi),
        -40, 40, points=[0.0], limit=200, epsabs=1e-14, epsrel=1e-13,
    )[0]
    assert A.c_sigma == pytest.approx(1 / second, rel=1e-10)


@pytest.mark.parametrize("k", range(0, 6))
def test_relu_k_c_sigma_closed_form(k):
    assert nk.relu(k).c_sigma == pytest.approx(2 / math.prod(range(1, 2 * k, 2)), rel=1e-15)


@pytest.mark.parametrize("k", range(0, 5))
@pytest.mark.parametrize("q", [1e-3, 1.0, 7.0])
def test_relu_k_dual_exact_at_rho_plus_minus_one(k, q):
    """u = v: E[relu(u)^{2k}] = q^k (2k-1)!!/2; u = -v: relu(u) relu(v) = 0 (k >= 1) or 0 for the step."""
    A = nk.relu(k)
    assert A.dual(q, q, q) == pytest.approx(q**k * math.prod(range(1, 2 * k, 2)) / 2, rel=4e-16 * (k + 1))
    assert A.dual(q, -q, q) == 0.0


def test_step_is_relu_zero():
    assert nk.get_activation("step") == nk.relu(0)
    z = torch.tensor([-1.0, 0.0, 2.0], dtype=torch.float64)
    assert nk.relu(0)(z).tolist() == [0.0, 0.0, 1.0]


def test_relu_power_is_not_max_of_power():
    """relu(k) is max(z, 0)^k, not max(z^k, 0) (which differs for even k: a known pitfall)."""
    z = torch.tensor([-2.0, 3.0], dtype=torch.float64)
    assert nk.relu(2)(z).tolist() == [0.0, 9.0]


def _t(x):
    return torch.tensor(x, dtype=torch.float64)


#: correlations at and near the endpoints; 1 - 1e-12 has a full mantissa, so 1 - rho**2 would lose
#: 5 digits of sin(theta)^2 to the rounding of rho**2
EDGE_RHOS = [1.0, -1.0, 1 - 1e-12, -(1 - 1e-12), 1 - 3.7e-7]
EDGE_VARS = [(1.0, 1.0), (1e-3, 1e-3), (7.0, 7.0), (0.3, 2.0), (1e3, 1e-3), (800.0, 800.0), (1e4, 1e4)]


def _ulps(name, q11, q22, r):
    """4 ulps; for sin and cos plus the conditioning of their factor exp(-delta/2), delta =
    q11 + q22 - 2|q12|: its rounded argument costs up to delta/2 ulps, as for any float64 exp
    at a rounded argument (about 500 at q11 = 1e3, q22 = 1e-3; nothing at q11 = q22, rho = +-1)."""
    if name not in ("sin", "cos"):
        return 4
    return 4 + (q11 + q22 - 2 * abs(r) * math.sqrt(q11 * q22)) / 2


@pytest.mark.parametrize("name", CLOSED)
def test_float64_duals_keep_every_digit_at_and_near_rho_plus_minus_one(name):
    """duals() on tensors against the 50-digit reference: a few ulps at rho = +-1 and near +1
    (where sqrt(1 - rho^2) or pi - arccos(rho) would lose digits), for equal and unequal and for
    large variances (sin and cos used to give 0 * inf = NaN from q = 745 on). Near -1 the ReLU^k
    duals vanish, see the next test."""
    A = act(name)
    for q11, q22 in EDGE_VARS:
        for r in EDGE_RHOS:
            if r < 0 and (abs(r) < 1 and name.startswith("relu") or name == "gelu"):
                continue  # vanishing duals: see the next test
            e, ed = A.duals(_t(q11), _t(q22), _t(r))
            with mp.workdps(50):
                E, ED, _ = mp_duals(name, q11, q22, mp.mpf(r) * mp.sqrt(mp.mpf(q11) * mp.mpf(q22)))
                for got, ref in ((e, E), (ed, ED)):
                    assert abs(mp.mpf(float(got)) - ref) <= _ulps(name, q11, q22, r) * EPS * abs(ref), (q11, q22, r)


@pytest.mark.parametrize("name", CLOSED)
@pytest.mark.parametrize("r", [-(1 - 1e-12), -1.0])
def test_float64_duals_near_rho_minus_one_are_accurate_to_the_kernel_scale(name, r):
    """Near rho = -1 the ReLU^k duals vanish like (pi - theta)^(2k+1), and the J_k recursion
    cancels: relative to their own tiny values they keep only ~eps / (pi - theta)^2, but the
    error stays below eps times the dual's scale sqrt(q11 q22)^k (2k - 1)!!/2, which is what a
    kernel entry sees (its diagonal has that size). GELU's duals at and near rho = -1 are small
    differences of terms of size sqrt(q11 q22) (GELU(u) GELU(-u) = -u^2 Phi(u) Phi(-u) is
    O(1/sqrt(q)) relative to q): the same bound."""
    A = act(name)
    for q11, q22 in EDGE_VARS:
        e, ed = A.duals(_t(q11), _t(q22), _t(r))
        e1, ed1 = A.duals(_t(q11), _t(q22), _t(1.0))
        ulps = _ulps(name, q11, q22, r)
        with mp.workdps(50):
            E, ED, _ = mp_duals(name, q11, q22, mp.mpf(r) * mp.sqrt(mp.mpf(q11) * mp.mpf(q22)))
            assert abs(mp.mpf(float(e)) - E) <= ulps * EPS * max(abs(E), abs(float(e1)))
            assert abs(mp.mpf(float(ed)) - ED) <= ulps * EPS * max(abs(ED), abs(float(ed1)))


# ----------------------------------------------------------------------------------------------
# the high-precision (mpmath) path of every closed form
# ----------------------------------------------------------------------------------------------
MP_RHOS = ["-1", "-0.9", "-0.3", "0", "0.5", "0.999", "1"]
MP_VARS = [("1", "1"), ("0.3", "2"), ("7", "0.001")]


@pytest.mark.parametrize("name", CLOSED)
@pytest.mark.parametrize("dps", [30, 60])
def test_mp_duals_match_the_independent_reference_at_the_current_precision(name, dps):
    """duals() on mpmath numbers against tests/mpref.py (written from the papers, none of ntklib's
    code), at the caller's precision: agreement to 10^-(dps - 5), impossible for a float64 path."""
    A = act(name)
    with mp.workdps(dps):
        tol = mp.mpf(10) ** (5 - dps)
        for q11, q22 in MP_VARS:
            for r in MP_RHOS:
                a, b, rho = mp.mpf(q11), mp.mpf(q22), mp.mpf(r)
                e, ed = A.duals(a, b, rho)
                E, ED, c = mp_duals(name, a, b, rho * mp.sqrt(a * b))
                assert isinstance(e, mp.mpf) and isinstance(ed, mp.mpf)
                assert abs(e - E) <= tol * (1 + abs(E)), (q11, q22, r)
                assert abs(ed - ED) <= tol * (1 + abs(ED)), (q11, q22, r)
                assert A.duals(a, b, rho, deriv=False) == (e, None)
                assert A.duals(a, b, rho, root=mp.sqrt(a * b)) == (e, ed)
        assert abs(A.c_sigma_mp() - c) <= tol * c


def _mp_sigma(name):
    """sigma and sigma' written for mpmath here, independently of the library."""
    if name == "step":
        return (lambda z: mp.mpf(z > 0)), (lambda z: mp.mpf(0))
    if name.startswith("relu"):
        k = int(name[4:] or 1)
        return (lambda z: max(z, 0) ** k), (lambda z: k * (max(z, 0) ** (k - 1) if k > 1 else mp.mpf(z > 0)))
    return {
        "erf": (mp.erf, lambda z: 2 / mp.sqrt(mp.pi) * mp.exp(-z * z)),
        "sin": (mp.sin, mp.cos),
        "cos": (mp.cos, lambda z: -mp.sin(z)),
        "identity": (lambda z: z, lambda z: mp.mpf(1)),
        "abs": (abs, lambda z: mp.mpf(1) if z > 0 else mp.mpf(-1)),
        "leaky_relu": (lambda z: z if z > 0 else z * mp.mpf(0.01), lambda z: mp.mpf(1) if z > 0 else mp.mpf(0.01)),
        "sign": (mp.sign, lambda z: mp.mpf(0)),
        "gelu": (lambda z: z * mp.ncdf(z), lambda z: mp.ncdf(z) + z * mp.npdf(z)),
    }[name]


@pytest.mark.parametrize("name", CLOSED)
@pytest.mark.parametrize("sign", [1, -1])
def test_mp_duals_at_rho_plus_minus_one_by_one_dimensional_quadrature(name, sign):
    """At rho = +-1, v = +-sqrt(q22 / q11) u, so both duals and c_sigma are one-dimensional Gaussian
    integrals: mpmath's adaptive quadrature (split at the kink z = 0) at 30 digits, an independent
    check of the formulas themselves at the endpoints."""
    A = act(name)
    sig, dsig = _mp_sigma(name)
    with mp.workdps(30):
        a, b = mp.mpf("0.7"), mp.mpf(3)
        density = lambda z: mp.exp(-z * z / 2) / mp.sqrt(2 * mp.pi)  # noqa: E731
        expect = lambda f: mp.quad(lambda z: f(mp.sqrt(a) * z) * f(sign * mp.sqrt(b) * z) * density(z), [-mp.inf, 0, mp.inf])  # noqa: E731
        e, ed = A.duals(a, b, mp.mpf(sign))
        tol = mp.mpf(10) ** -25
        assert abs(e - expect(sig)) <= tol * (1 + abs(e))
        assert abs(ed - expect(dsig)) <= tol * (1 + abs(ed))
        second = mp.quad(lambda z: sig(z) ** 2 * density(z), [-mp.inf, 0, mp.inf])
        assert abs(A.c_sigma_mp() * second - 1) <= tol


@pytest.mark.parametrize("name", CLOSED)
def test_float_c_sigma_is_the_correctly_rounded_mp_value(name):
    A = act(name)
    with mp.workdps(50):
        assert A.c_sigma == float(mp_duals(name, 1, 1, 1)[2])


@pytest.mark.parametrize("name", QUADRATURE)
def test_quadrature_has_no_high_precision_path(name):
    A = act(name)
    with pytest.raises(TypeError, match="no high-precision path"):
        A.duals(mp.mpf(1), mp.mpf(1), mp.mpf("0.5"))
    with pytest.raises(TypeError, match="no high-precision path"):
        A.c_sigma_mp()
    assert isinstance(A.c_sigma, float)  # the float64 path is unaffected


# ----------------------------------------------------------------------------------------------
# duals(): kinds, broadcasting, errors
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", CLOSED + QUADRATURE)
def test_duals_on_tensors_broadcast_keep_dtype_and_agree_with_dual(name):
    A = act(name)
    q11 = torch.tensor([[1.0], [0.5]], dtype=torch.float64)  # (2, 1)
    q22 = torch.tensor([0.8, 1.0, 1.2], dtype=torch.float64)  # (3,)
    rho = torch.tensor([-1.0, 0.2, 1.0], dtype=torch.float64)
    e, ed = A.duals(q11, q22, rho)
    assert e.shape == ed.shape == (2, 3) and e.dtype == ed.dtype == torch.float64
    q12 = rho * torch.sqrt(q11 * q22)
    tol = dict(rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(e, A.dual(q11, q12, q22), **tol)
    torch.testing.assert_close(ed, A.dual_deriv(q11, q12, q22), **tol)
    assert A.duals(q11, q22, rho, deriv=False)[1] is None
    e32, ed32 = A.duals(q11.float(), q22.float(), rho.float())
    assert e32.dtype == ed32.dtype == torch.float32
    torch.testing.assert_close(e32.double(), e, rtol=1e-5, atol=1e-6)
    # a plain number beside a tensor is converted to the tensor's kind
    torch.testing.assert_close(A.duals(1.0, q22, rho)[0], A.duals(torch.ones_like(q22), q22, rho)[0])


def test_duals_root_is_used_and_identity_deriv_broadcasts():
    rho, q = _t([0.3, -0.5]), _t([2.0, 3.0])
    for A in (nk.relu(1), nk.relu(2), nk.erf(), nk.sin(), nk.cos(), nk.identity()):
        torch.testing.assert_close(A.duals(q, q, rho, root=q), A.duals(q, q, rho), rtol=0, atol=0)
    assert nk.identity().duals(_t(1.0), q, rho)[1].tolist() == [1.0, 1.0]
    assert nk.step().duals(_t(1.0), q, rho)[1].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("name", CLOSED + QUADRATURE)
@pytest.mark.parametrize("scale", [1.0, 2.0, 0.75])
def test_duals_scale_is_a_factor_and_results_are_new_tensors(name, scale):
    """scale multiplies both duals (the same bits as multiplying after, for ReLU and the step on
    their fused path too), and the results share no memory with the arguments (callers change them
    in place)."""
    A = act(name)
    rho = _t(np.linspace(-1, 1, 41))
    q11, q22 = _t(np.full(41, 1.5)), _t(np.linspace(0.5, 2.0, 41))
    args = [t.clone() for t in (q11, q22, rho)]
    e, ed = A.duals(q11, q22, rho, scale=scale)
    e1, ed1 = A.duals(q11, q22, rho)
    assert torch.equal(e, scale * e1) and torch.equal(ed, scale * ed1)
    assert all(torch.equal(t, c) for t, c in zip((q11, q22, rho), args))  # the arguments are untouched
    ptrs = {t.untyped_storage().data_ptr() for t in (q11, q22, rho)}
    assert e.untyped_storage().data_ptr() not in ptrs and ed.untyped_storage().data_ptr() not in ptrs
    if A.closed_form:
        with mp.workdps(30):
            got = A.duals(mp.mpf(1), mp.mpf(2), mp.mpf("0.5"), scale=scale)
            ref = A.duals(mp.mpf(1), mp.mpf(2), mp.mpf("0.5"))
            assert got == (scale * ref[0], scale * ref[1])


@pytest.mark.parametrize("k", [0, 1])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_relu_and_step_fused_path_has_the_generic_bits_and_exact_endpoints(k, dtype):
    """The fused torch path of relu(1) and step() (taken when rho has the full shape) gives the bits
    of the generic formula (taken for a broadcasting rho), with or without root, and keeps
    rho = +-1 exact: c sqrt(q11 q22) / 2 and c / 2, and 0."""
    A = nk.relu(k)
    g = torch.Generator().manual_seed(0)
    rho = torch.cat([torch.tensor([-1.0, 1.0]), torch.rand(200, generator=g) * 2 - 1]).to(dtype)
    q = (torch.rand(202, generator=g) * 10).to(dtype)
    for scale in (1.0, 2.0, 3.0):
        fused = A.duals(q[:, None], q[None, :], rho[:, None].expand(202, 202).contiguous(), scale=scale)
        generic = A.duals(q[:, None], q[None, :], rho[:, None], scale=scale)  # (202, 1): not the full shape
        for f, r in zip(fused, generic):
            assert f.shape == (202, 202) and f.dtype == dtype and torch.equal(f, r)
        root = torch.sqrt(q[:, None] * q[None, :])
        e, ed = A.duals(q[:, None], q[None, :], torch.ones(202, 202, dtype=dtype), root=root, scale=scale)
        assert torch.equal(e, scale * (root / 2 if k else torch.full_like(root, 0.5)))
        assert torch.equal(ed, torch.full_like(root, scale / 2 if k else 0.0))
        e, ed = A.duals(q[:, None], q[None, :], -torch.ones(202, 202, dtype=dtype), root=root, scale=scale)
        assert not e.any() and not ed.any()


@pytest.mark.parametrize("bad, arg", [(np.ones(2), "q11"), ("1", "q11"), (mp.mpc(1, 1), "q11")])
def test_duals_rejects_other_kinds_naming_the_argument(bad, arg):
    with pytest.raises(TypeError, match=arg):
        nk.relu(1).duals(bad, 1, mp.mpf("0.5"))


def test_duals_rejects_mixed_mp_and_tensor_and_bad_mp_values():
    with pytest.raises(TypeError, match="q11 is an mpmath number"):
        nk.relu(1).duals(mp.mpf(1), _t(1.0), _t(0.5))
    with pytest.raises(ValueError, match=r"rho must lie in \[-1, 1\]"):
        nk.erf().duals(1, 1, mp.mpf("1.5"))
    with pytest.raises(ValueError, match="q22 must be >= 0"):
        nk.erf().duals(1, -1, mp.mpf("0.5"))
    with pytest.raises(ValueError, match="q11 must be >= 0"):
        nk.erf().duals(mp.nan, 1, mp.mpf("0.5"))


# ----------------------------------------------------------------------------------------------
# names, factories, reprs, equality: every activation round-trips
# ----------------------------------------------------------------------------------------------
EMITTED = [nk.get_activation(n) for n in nk.ACTIVATION_NAMES] + [nk.relu(k) for k in range(0, 8)]
NAMESPACE = {"relu": nk.relu, "step": nk.step, "erf": nk.erf, "sin": nk.sin, "cos": nk.cos,
             "identity": nk.identity, "abrelu": nk.abrelu, "leaky_relu": nk.leaky_relu, "sign": nk.sign,
             "gelu": nk.gelu, "get_activation": nk.get_activation, "Quadrature": nk.Quadrature,
             "torch": torch, "numpy": np, "math": math}


@pytest.mark.parametrize("a", EMITTED, ids=repr)
def test_every_emitted_activation_round_trips(a):
    assert nk.get_activation(a.name) == a
    assert nk.get_activation(a.name.upper()) == a
    b = eval(repr(a), dict(NAMESPACE))
    assert b == a and hash(b) == hash(a) and type(b) is type(a)
    assert pickle.loads(pickle.dumps(a)) == a if a.closed_form else True
    assert nk.get_activation(a) is a


def test_factories_and_classes_agree():
    pairs = [(nk.relu(3), nk.ReLUk(3)), (nk.step(), nk.ReLUk(0)), (nk.relu(), nk.ReLUk(1)), (nk.erf(), nk.Erf()),
             (nk.sin(), nk.Sin()), (nk.cos(), nk.Cos()), (nk.identity(), nk.Identity())]
    for made, cls in pairs:
        assert made == cls and hash(made) == hash(cls) and isinstance(made, ClosedForm)
    assert [repr(a) for a, _ in pairs] == ["relu(3)", "step()", "relu(1)", "erf()", "sin()", "cos()", "identity()"]
    assert nk.get_activation("relu0") == nk.step() and nk.get_activation("relu1") == nk.relu()
    assert nk.get_activation("linear") == nk.identity()


def test_equality_is_on_the_parameters():
    closed = [nk.relu(0), nk.relu(1), nk.relu(2), nk.erf(), nk.sin(), nk.cos(), nk.identity()]
    assert len(set(closed)) == len(closed)
    assert all(a != b for i, a in enumerate(closed) for b in closed[i + 1:])
    base = nk.Quadrature(torch.tanh, nk.activations._tanh_deriv, name="tanh")
    assert base == nk.get_activation("tanh") and hash(base) == hash(nk.get_activation("tanh"))
    variants = [nk.Quadrature(torch.tanh, nk.activations._tanh_deriv, name="tanh", order=32),
                nk.Quadrature(torch.tanh, None, name="tanh"),
                nk.Quadrature(torch.tanh, nk.activations._tanh_deriv, name="my tanh"),
                nk.Quadrature(torch.sigmoid, nk.activations._tanh_deriv, name="tanh")]
    assert all(v != base for v in variants)
    assert nk.Quadrature(torch.special.erf) != nk.erf() and nk.erf() != "erf"


def test_activation_called_with_a_callable_is_a_quadrature():
    """Code written when the quadrature was the base class: nk.Activation(fn, ...) still works."""
    a = nk.Activation(torch.special.erf, name="erf by quadrature", order=32)
    assert type(a) is nk.Quadrature and isinstance(a, nk.Activation)
    assert (a.fn, a.dfn, a.name, a.order, a.tile_cost) == (torch.special.erf, None, "erf by quadrature", 32,
                                                          32**2 + 24**2 + 16**2)  # the rule and its error estimate
    assert a == nk.Quadrature(torch.special.erf, name="erf by quadrature", order=32)
    assert repr(a) == "Quadrature(torch.special.erf, name='erf by quadrature', order=32)"
    assert nk.Quadrature(np.tanh).name == "tanh" and repr(nk.Quadrature(np.tanh)) == "Quadrature(numpy.tanh)"
    with pytest.raises(TypeError, match="abstract"):
        ClosedForm("mine")
    with pytest.raises(TypeError):
        nk.Activation()


def test_tile_cost_and_no_legacy_aliases():
    for name in CLOSED:
        A = act(name)
        assert A.tile_cost == 1 and not hasattr(A, "order")  # the tiling reads tile_cost only
        assert not any(hasattr(A, a) for a in ("_duals", "_mp_duals", "_mp_c_sigma"))
    for name in QUADRATURE:
        assert act(name).order is None and act(name).tile_cost == 3 * 129  # Mehler's series: 129 terms


def test_quadrature_argument_errors():
    with pytest.raises(TypeError, match="dfn must be callable"):
        nk.Quadrature(torch.tanh, 3)
    with pytest.raises(TypeError, match="order must be an int"):
        nk.Quadrature(torch.tanh, order=64.0)
    with pytest.raises(ValueError, match="order must be >= 2"):
        nk.Quadrature(torch.tanh, order=1)
    with pytest.raises(TypeError, match="name must be a non-empty str"):
        nk.Quadrature(torch.tanh, name=3)


def test_every_activation_name_has_its_own_colour():
    """ntklib.style.COLORS is keyed by .name; one colour per activation, none shared."""
    names = {act(n).name for n in nk.ACTIVATION_NAMES}
    assert names <= set(COLORS)
    assert len(set(COLORS.values())) == len(COLORS)
    others = set(COLORS) - names
    assert others == {"laplace", "gaussian", "matern", "exp_power"}  # the classic kernels, by family
    assert all(len(c) == 7 and c[0] == "#" and int(c[1:], 16) >= 0 for c in COLORS.values())


# ----------------------------------------------------------------------------------------------
# quadrature activations
# ----------------------------------------------------------------------------------------------
def test_quadrature_reproduces_closed_forms():
    """The generic path applied to erf and sin reproduces their closed forms.

    At order 128 the rule is accurate to ~1e-15 for these entire functions at q <= 2 (at the
    default order 64 the erf' integrand exp(-u^2), narrower than the weight, is off by 2e-8 at q = 1.5)."""
    for name, fn in [("erf", torch.special.erf), ("sin", torch.sin)]:
        Q = nk.Activation(fn, order=128)
        C = nk.get_activation(name)
        for a, c, b in COVS[:4]:
            assert Q.dual(a, c, b) == pytest.approx(C.dual(a, c, b), rel=1e-13, abs=1e-15)
            assert Q.dual_deriv(a, c, b) == pytest.approx(C.dual_deriv(a, c, b), rel=1e-13, abs=1e-15)
        assert Q.c_sigma == pytest.approx(C.c_sigma, rel=1e-12)


def test_quadrature_accuracy_as_documented_for_tanh():
    """The docstring table's first column: tanh dual at (1, 0.5, 1), order 64, error < 1e-9."""
    L = np.linalg.cholesky(np.array([[1.0, 0.5], [0.5, 1.0]]))
    g = lambda z2, z1: np.tanh(z1) * np.tanh(L[1, 0] * z1 + L[1, 1] * z2) * np.exp(-(z1**2 + z2**2) / 2) / (2 * np.pi)  # noqa: E731
    ref = integrate.dblquad(g, -14, 14, -14, 14, epsabs=1e-14, epsrel=1e-14)[0]
    assert nk.get_activation("tanh").dual(1.0, 0.5, 1.0) == pytest.approx(ref, rel=1e-9)


def test_polynomial_activation_is_exact():
    sq = nk.Activation(lambda z: z**2)
    assert sq.dual(1.0, 0.5, 1.0) == pytest.approx(1.5, rel=1e-13)  # E[u^2 v^2] = ab + 2c^2
    assert sq.dual_deriv(2.0, 0.5, 3.0) == pytest.approx(4 * 0.5, rel=1e-13)  # E[2u 2v] = 4c
    assert sq.c_sigma == pytest.approx(1 / 3, rel=1e-13)


def test_derivative_by_autograd_and_by_finite_differences():
    z = torch.linspace(-3, 3, 13, dtype=torch.float64)
    exact = 1 - torch.tanh(z) ** 2
    by_autograd = nk.Activation(lambda t: torch.tanh(t)).derivative(z)
    by_stencil = nk.Activation(np.tanh).derivative(z)  # numpy ufunc: not differentiable in torch
    torch.testing.assert_close(by_autograd, exact, rtol=0, atol=1e-15)
    torch.testing.assert_close(by_stencil, exact, rtol=0, atol=1e-11)


@pytest.mark.parametrize("name", ["tanh", "softplus", "sigmoid"])
def test_named_quadrature_activations_have_consistent_derivatives(name):
    A = nk.get_activation(name)
    z = torch.linspace(-4, 4, 17, dtype=torch.float64)
    torch.testing.assert_close(A.derivative(z), nk.Activation(A.fn).derivative(z), rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------------------------
def test_unknown_activation_name_lists_the_known_ones():
    known = ", ".join(nk.ACTIVATION_NAMES)
    with pytest.raises(ValueError, match=f"unknown activation 'swish'; known names: {known}, relu<k>"):
        nk.get_activation("swish")
    for bad in ("relu-1", "relu01", "relu2.5"):
        with pytest.raises(ValueError, match="unknown activation"):
            nk.get_activation(bad)


@pytest.mark.parametrize("bad", [3, None, 1.5])
def test_bad_activation_type(bad):
    with pytest.raises(TypeError, match="activation"):
        nk.get_activation(bad)


@pytest.mark.parametrize("k, err", [(-1, ValueError), (1.5, TypeError), (True, TypeError)])
def test_bad_relu_power(k, err):
    with pytest.raises(err, match="power k"):
        nk.relu(k)


def test_dual_rejects_non_psd_covariance_and_nan():
    with pytest.raises(ValueError, match="PSD"):
        nk.relu(1).dual(1.0, 2.0, 1.0)
    with pytest.raises(ValueError, match=">= 0"):
        nk.relu(1).dual(-1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="q12 contains NaN"):
        nk.relu(1).dual(1.0, float("nan"), 1.0)


def test_activation_must_be_elementwise():
    A = nk.Activation(lambda z: z.sum())
    with pytest.raises(ValueError, match="elementwise"):
        A.dual(1.0, 0.5, 1.0)


def test_theta_out_of_range():
    with pytest.raises(ValueError, match="theta"):
        nk.arc_cosine_J(1, 4.0)


def test_step_convention_against_smoothed_steps():
    """The docstring of ReLUk: the step's derivative dual is 0 by convention; the smoothed steps
    (1 + erf(z/s))/2 have derivative duals tending to the Dirac value 1/(2 pi sqrt(1 - rho^2))
    for |rho| < 1 and diverging like 1/(2 pi s) at rho = 1."""
    assert nk.relu(0).dual_deriv(1.0, 0.5, 1.0) == 0.0
    erf = nk.Erf()
    for s in [1e-2, 1e-3]:
        q = 1 / s**2  # erf(z/s) with z ~ N(0, 1) is erf of a N(0, 1/s^2) variable
        for rho in [-0.5, 0.0, 0.7]:
            smooth = erf.dual_deriv(q, rho * q, q) / (4 * s**2)
            dirac = 1 / (2 * math.pi * math.sqrt(1 - rho**2))
            assert smooth == pytest.approx(dirac, rel=s**2)  # relative correction ~ s^2 / (2(1 - rho^2))
        assert erf.dual_deriv(q, q, q) / (4 * s**2) == pytest.approx(1 / (2 * math.pi * s), rel=s**2)


# ----------------------------------------------------------------------------------------------
# Hermite coefficients
# ----------------------------------------------------------------------------------------------
def _odd_double_factorial(k):
    """k!! for odd k >= -1."""
    return math.prod(range(1, k + 1, 2)) if k > 0 else 1


def _hermite_closed_form(name, n):
    """a_i = E[sigma(z) He_i(z)] / sqrt(i!), derived independently of the library:
    ReLU and step by integration by parts (He_i phi = (-1)^i phi^(i)), sin and cos from
    E[exp(itz) He_i(z)] = (it)^i exp(-t^2/2), erf from E[f He_i] = E[f^(i)] and
    E[exp(-z^2) He_k(z)] = k! [t^k] exp(-t^2/3) / sqrt(3)."""
    a = np.zeros(n)
    for i in range(n):
        log_root_factorial = 0.5 * math.lgamma(i + 1)
        if name == "relu":  # a_i = He_{i-2}(0) / sqrt(2 pi i!), He_k(0) = (-1)^(k/2) (k-1)!!
            if i < 2:
                a[i] = [1 / math.sqrt(2 * math.pi), 0.5][i]
            elif i % 2 == 0:
                m = i // 2
                a[i] = (-1) ** (m - 1) * math.exp(math.log(_odd_double_factorial(2 * m - 3)) - log_root_factorial)
                a[i] /= math.sqrt(2 * math.pi)
        elif name == "step":  # a_i = He_{i-1}(0) / sqrt(2 pi i!)
            if i == 0:
                a[i] = 0.5
            elif i % 2 == 1:
                m = (i - 1) // 2
                a[i] = (-1) ** m * math.exp(math.log(_odd_double_factorial(2 * m - 1)) - log_root_factorial)
                a[i] /= math.sqrt(2 * math.pi)
        elif name == "sin" and i % 2 == 1:
            a[i] = (-1) ** ((i - 1) // 2) * math.exp(-0.5 - log_root_factorial)
        elif name == "cos" and i % 2 == 0:
            a[i] = (-1) ** (i // 2) * math.exp(-0.5 - log_root_factorial)
        elif name == "erf" and i % 2 == 1:
            m = (i - 1) // 2
            log_abs = math.lgamma(2 * m + 1) - m * math.log(3) - math.lgamma(m + 1) - log_root_factorial
            a[i] = 2 / math.sqrt(3 * math.pi) * (-1) ** m * math.exp(log_abs)
        elif name == "identity":
            a[i] = float(i == 1)
    return a


@pytest.mark.parametrize("name", ["relu", "step", "sin", "cos", "erf", "identity"])
def test_hermite_coefficients_match_closed_forms(name):
    a = nk.activations.hermite_coefficients(name, 300)
    np.testing.assert_allclose(a, _hermite_closed_form(name, 300), rtol=0, atol=2e-15)


def test_hermite_coefficients_of_a_polynomial_are_exact():
    """z^3 = He_3 + 3 He_1: a_1 = 3, a_3 = sqrt(3!) and nothing else."""
    a = nk.activations.hermite_coefficients(nk.Activation(lambda z: z**3), 8)
    np.testing.assert_allclose(a, [0, 3, 0, math.sqrt(6), 0, 0, 0, 0], rtol=0, atol=1e-13)


@pytest.mark.parametrize("name", ["relu", "relu2", "relu3", "step", "erf", "sin", "cos", "tanh", "gelu", "abs",
                                  "leaky_relu", "abrelu(2.0, -0.5)", "sign"])
def test_mehler_series_reproduce_the_duals(name):
    """sum a_i^2 rho^i = E[s(u)s(v)] and sum i a_i^2 rho^(i-1) = E[s'(u)s'(v)] at unit variances.

    Truncation at n terms: since sum a_i^2 = E[s^2], the kernel series' tail is at most
    |rho|^n E[s^2], the derivative series' at most n |rho|^(n-1) E[s^2] (for |rho|^(n-1) n decreasing)."""
    A = act(name)
    n, rho = 300, np.linspace(-0.9, 0.9, 37)
    a2 = nk.activations.hermite_coefficients(A, n) ** 2
    i = np.arange(n)
    second = 1 / A.c_sigma
    quad_tol = 1e-9 if not A.closed_form else 1e-14  # tanh: the 2-D quadrature's own error
    series = (rho[:, None] ** i) @ a2
    np.testing.assert_allclose(series, A.dual(1.0, rho, 1.0), rtol=0, atol=0.9**n * second + quad_tol)
    if name in ("step", "sign"):  # the series is the Dirac value 1 / (2 pi sqrt(1 - rho^2)), not the convention
        # 0; sign = 2 step - 1 has four times the step's
        expected = (1 if name == "step" else 4) / (2 * np.pi * np.sqrt(1 - rho**2))
    else:
        expected = A.dual_deriv(1.0, rho, 1.0)
    deriv = (rho[:, None] ** i[:-1]) @ (i[1:] * a2[1:])
    np.testing.assert_allclose(deriv, expected, rtol=0, atol=n * 0.9 ** (n - 1) * second + 10 * quad_tol)


@pytest.mark.parametrize("name", ["erf", "sin", "cos"])
def test_hermite_parseval(name):
    """sum a_i^2 = E[sigma(z)^2] = 1/c_sigma for entire activations, whose a_i^2 fall faster than
    geometrically (erf like (2/3)^i, sin and cos like 1/i!): the tail is negligible at n = 100.
    (Not tanh: its poles at +-i pi/2 make a_i^2 fall only like exp(-c sqrt(i)).)"""
    A = act(name)
    a = nk.activations.hermite_coefficients(A, 100)
    assert np.sum(a**2) == pytest.approx(1 / A.c_sigma, rel=1e-12)


def test_hermite_breakpoints_matter_for_a_shifted_kink():
    """relu(z - b): a_0 = phi(b) - b (1 - Phi(b)), a_1 = 1 - Phi(b), a_i = He_{i-2}(b) phi(b) / sqrt(i!)."""
    from scipy.special import eval_hermitenorm, ndtr

    b, n = 0.7, 40
    shifted = nk.Activation(lambda z: torch.clamp(z - b, min=0), name="shifted relu")
    phi = math.exp(-b * b / 2) / math.sqrt(2 * math.pi)
    exact = np.array(
        [phi - b * (1 - ndtr(b)), 1 - ndtr(b)]
        + [eval_hermitenorm(i - 2, b) * phi / math.sqrt(math.factorial(i)) for i in range(2, n)]
    )
    good = nk.activations.hermite_coefficients(shifted, n, breakpoints=[b])
    np.testing.assert_allclose(good, exact, rtol=0, atol=1e-14)
    blind = nk.activations.hermite_coefficients(shifted, n, breakpoints=[])
    assert np.abs(blind - exact).max() > 1e-9  # a panel straddling the kink is off


def test_hermite_coefficients_errors():
    with pytest.raises(ValueError, match="number of coefficients"):
        nk.activations.hermite_coefficients("relu", 0)
    with pytest.raises(TypeError, match="number of coefficients"):
        nk.activations.hermite_coefficients("relu", 2.5)
    with pytest.raises(TypeError, match="breakpoints"):
        nk.activations.hermite_coefficients("relu", 3, breakpoints=["a"])
    with pytest.raises(ValueError, match="finite"):
        nk.activations.hermite_coefficients("relu", 3, breakpoints=[float("nan")])
    with pytest.raises(ValueError, match="not finite"):
        nk.activations.hermite_coefficients(nk.Activation(torch.log, name="log"), 3)
    with pytest.raises(ValueError, match="unknown activation"):
        nk.activations.hermite_coefficients("swish", 3)


# ----------------------------------------------------------------------------------------------
# issue 22: the closed forms of the two-slope ReLUs (leaky ReLU, abs), sign and GELU
# ----------------------------------------------------------------------------------------------
_PHI = lambda z: 0.5 * math.erfc(-z / math.sqrt(2))  # noqa: E731
#: sigma and sigma' written here in plain Python floats, independently of the library
NEW_FORMS = {
    "gelu": (lambda z: z * _PHI(z), lambda z: _PHI(z) + z * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)),
    "abs": (abs, lambda z: 1.0 if z > 0 else -1.0),
    "leaky_relu": (lambda z: z if z > 0 else 0.01 * z, lambda z: 1.0 if z > 0 else 0.01),
    "abrelu(2.0, 0.5)": (lambda z: 2 * z if z > 0 else 0.5 * z, lambda z: 2.0 if z > 0 else 0.5),
    "abrelu(-0.7, 1.3)": (lambda z: -0.7 * z if z > 0 else 1.3 * z, lambda z: -0.7 if z > 0 else 1.3),
    "sign": (lambda z: float(np.sign(z)), None),  # derivative dual 0 by convention
}
NEW_COVS = [(1.0, 0.3, 1.0), (2.0, -0.9, 0.7), (0.3, 0.0, 2.0), (5.0, 4.9, 5.0), (3.0, -2.97, 3.0), (1e-2, 5e-3, 40.0)]


def _expect_2d(f, a, c, b):
    """E[f(u) f(v)] by nested adaptive quadrature (scipy), split at the kinks z1 = 0 and v = 0."""
    L = np.linalg.cholesky(np.array([[a, c], [c, b]]))

    def inner(z1):
        kink = -L[1, 0] * z1 / L[1, 1]
        g = lambda z2: f(L[1, 0] * z1 + L[1, 1] * z2) * math.exp(-z2 * z2 / 2)  # noqa: E731
        val = integrate.quad(g, -14, 14, points=[kink] if abs(kink) < 14 else None, epsabs=1e-15, epsrel=1e-13,
                             limit=400)[0]
        return f(L[0, 0] * z1) * val * math.exp(-z1 * z1 / 2) / (2 * math.pi)

    return integrate.quad(inner, -14, 14, points=[0.0], epsabs=1e-15, epsrel=1e-13, limit=400)[0]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(NEW_FORMS))
def test_new_closed_forms_match_2d_adaptive_quadrature(name):
    """GELU, the two-slope ReLUs and sign against scipy's nested adaptive quadrature to 1e-12
    (measured: 5e-16 and better), at six covariances including correlations 0.98 and -0.99."""
    A, (f, df) = nk.get_activation(name), NEW_FORMS[name]
    for a, c, b in NEW_COVS:
        scale = math.sqrt(a * b)
        assert abs(A.dual(a, c, b) - _expect_2d(f, a, c, b)) <= 1e-12 * scale, (a, c, b)
        ref = 0.0 if df is None else _expect_2d(df, a, c, b)
        assert abs(A.dual_deriv(a, c, b) - ref) <= 1e-12, (a, c, b)


@pytest.mark.parametrize("name", list(NEW_FORMS))
@pytest.mark.parametrize("rho", [1.0, -1.0, 0.6])
def test_new_closed_forms_match_monte_carlo_with_the_endpoints(name, rho):
    """2e5 Monte Carlo samples, 5 standard errors; at rho = +-1, v = +-sqrt(q22 / q11) u exactly."""
    A = nk.get_activation(name)
    q11, q22 = 1.7, 0.4
    g = torch.Generator().manual_seed(1)
    z = torch.randn(200_000, 2, generator=g, dtype=torch.float64)
    u = math.sqrt(q11) * z[:, 0]
    v = math.sqrt(q22) * (rho * z[:, 0] + math.sqrt(max(0.0, 1 - rho * rho)) * z[:, 1])
    e, ed = A.duals(_t(q11), _t(q22), _t(rho))
    for fn, exact in [(A, e), (A.derivative, ed)]:
        s = fn(u) * fn(v)
        se = float(s.std()) / math.sqrt(len(s))
        assert abs(float(s.mean()) - float(exact)) <= 5 * se + 1e-12


@pytest.mark.parametrize("a, b", [(1.0, 0.01), (1.0, -1.0), (2.0, 0.5), (-0.7, 1.3), (1.0, 0.0)])
def test_two_slope_duals_exact_at_rho_plus_minus_one(a, b):
    """u = v: E[sigma(u)^2] = q (a^2 + b^2)/2; u = -v: sigma(u) sigma(-u) = -a b u^2. Derivative
    duals (a^2 + b^2)/2 and a b. And c_sigma = 2 / (a^2 + b^2); abrelu(1, 0) is the ReLU."""
    A, q = nk.abrelu(a, b), 3.0
    assert A.dual(q, q, q) == pytest.approx(q * (a * a + b * b) / 2, rel=2 * EPS)
    assert A.dual(q, -q, q) == pytest.approx(-a * b * q, rel=2 * EPS, abs=0)
    assert A.dual_deriv(q, q, q) == pytest.approx((a * a + b * b) / 2, rel=2 * EPS)
    assert A.dual_deriv(q, -q, q) == pytest.approx(a * b, rel=2 * EPS, abs=0)
    assert A.c_sigma == pytest.approx(2 / (a * a + b * b), rel=EPS)
    if b == 0:
        rho = _t(np.linspace(-1, 1, 9))
        for x, y in zip(A.duals(_t(q), _t(q), rho), nk.relu().duals(_t(q), _t(q), rho)):
            torch.testing.assert_close(x, y, rtol=4 * EPS, atol=4 * EPS)


def test_sign_dual_is_the_arcsine_exactly_at_the_endpoints_and_accurate_near_zero():
    A = nk.sign()
    e, ed = A.duals(_t(2.0), _t(0.5), _t([1.0, -1.0, 1e-300, -1e-20, 0.0]))
    assert e[:2].tolist() == [1.0, -1.0] and ed.tolist() == [0.0] * 5
    assert float(e[2]) == pytest.approx(2e-300 / math.pi, rel=2 * EPS)
    assert float(e[3]) == pytest.approx(-2e-20 / math.pi, rel=2 * EPS)
    assert A.dual(0.0, 0.0, 1.0) == 0.0  # u = 0 surely: sign(0) = 0


@pytest.mark.parametrize("name", ["gelu", "leaky_relu", "abs", "sign", "leaky_relu(0.2)", "abrelu(2.0, -0.5)"])
@pytest.mark.parametrize("depth", [1, 3])
def test_ntk_and_nngp_of_new_closed_forms_match_the_40_digit_recursion(name, depth):
    """Issue 22's done-when: nk.ntk / nk.nngp against tests/mpref.py's independent 40-digit
    recursion, to 1e-12 relative off the diagonal and 1e-9 on it (measured: ~1e-15 on both)."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((5, 4)) * np.array([[0.3], [1.0], [2.0], [1.0], [0.7]])
    X[3] = -0.5 * X[1]  # an antipodal pair: rho = -1 exactly after the first layer
    for ntk in (True, False):
        K = (nk.ntk if ntk else nk.nngp)(X, depth=depth, activation=name, bias_var=0.1)
        ref = np.array([[float(mp_kernel([name] * depth, list(x), list(y), bias_var=0.1, ntk=ntk)) for y in X]
                        for x in X])
        off = ~np.eye(len(X), dtype=bool)
        assert np.all(np.abs(K - ref)[off] <= 1e-12 * np.abs(ref)[off] + 1e-15 * np.abs(np.diag(ref)).max())
        np.testing.assert_allclose(np.diag(K), np.diag(ref), rtol=1e-9, atol=0)


@pytest.mark.parametrize("name", ["gelu", "leaky_relu", "abs", "sign"])
def test_high_precision_kappa_agrees_with_float64_for_new_closed_forms(name):
    k = nk.NTK(depth=2, activation=name)
    u = np.array([-1.0, -0.6, 0.0, 0.3, 0.99, 1.0])
    with mp.workdps(30):
        ref = np.array([float(k.kappa_mp(mp.mpf(t))) for t in u])
    np.testing.assert_allclose(k.kappa(u), ref, rtol=4e-15, atol=4e-15 * abs(ref).max())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gelu", "leaky_relu(0.2)", "abs", "sign"])
def test_wide_network_kernels_tend_to_the_new_closed_forms(name):
    """A width-4096 MLP's empirical NTK (mean of 2 seeds) within 5 % of the closed form (the
    width^-1/2 fluctuation is ~2 %), while a wrong dual (the closed form of the ReLU) is off by more.
    Sign's gradient through the sign is 0 (the convention): its NTK is its NNGP plus the input layer's
    zero contribution, which the empirical NTK shows too."""
    X = nk.data.sphere(6, 5, seed=0)
    emp = np.mean([nk.empirical_ntk(nk.MLP(5, 4096, 1, activation=name, seed=s), X) for s in range(2)], axis=0)
    K = nk.ntk(X, depth=1, activation=name)
    err = np.linalg.norm(emp - K) / np.linalg.norm(K)
    assert err < 0.05
    wrong = nk.ntk(X, depth=1, activation="relu")
    assert np.linalg.norm(emp - wrong) / np.linalg.norm(wrong) > 2 * err


# ----------------------------------------------------------------------------------------------
# issue 10: overflow in the closed forms
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("depth", [1, 2])
def test_sin_kernel_finite_for_large_inputs(dtype, depth):
    """Issue 10 item 2: |x| ~ 32 made exp(-(q11+q22)/2) sinh(q12) = 0 * inf = NaN (float32 from
    |x| ~ 9.5). Against the 40-digit recursion: float64 to 1e-12 (the exponent's argument is
    rounded, ~q/2 ulps), float32 to 1e-4."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 1000))
    X[2] = X[0] + 0.01 * X[1]  # a nearly parallel pair: q12 ~ q11 ~ 1000, both exponentials overflow
    for ntk in (True, False):
        K = (nk.ntk if ntk else nk.nngp)(X, depth=depth, activation="sin", dtype=dtype)
        assert np.all(np.isfinite(K))
        ref = np.array([[float(mp_kernel(["sin"] * depth, list(x), list(y), ntk=ntk)) for y in X] for x in X])
        rtol = 1e-12 if dtype == "float64" else 1e-4
        np.testing.assert_allclose(K, ref, rtol=rtol, atol=rtol * np.abs(ref).max())
    assert nk.cos().dual(1e300, 0.999e300, 1e300) == 0.0  # exp(-1e297) underflows, correctly


@pytest.mark.parametrize("scale", [1e77, 1e100, 1e150])
def test_erf_kernel_finite_for_huge_inputs(scale):
    """Issue 10: erf with |x| >= 1e77 gave NaN: (1 + 2 q11)(1 + 2 q22) overflowed. Against the
    40-digit recursion (erf is bounded: the kernel's off-diagonal entries stay O(1))."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3, 5)) * scale
    for ntk in (True, False):
        K = (nk.ntk if ntk else nk.nngp)(X, depth=2, activation="erf")
        with mp.workdps(400):  # the reference's (1 + 2 q)^2 - 4 q^2 cancels 2 log10(q) digits
            ref = np.array([[float(mp_kernel(["erf"] * 2, list(x), list(y), ntk=ntk)) for y in X] for x in X])
        np.testing.assert_allclose(K, ref, rtol=1e-12)
    for q in (1e160, 1e300):
        with mp.workdps(700):
            E, ED, _ = mp_duals("erf", q, 2 * q, 0.5 * q)
        assert nk.erf().dual(q, 0.5 * q, 2 * q) == pytest.approx(float(E), rel=4 * EPS)
        assert nk.erf().dual_deriv(q, 0.5 * q, 2 * q) == pytest.approx(float(ED), rel=4 * EPS)


def test_erf_and_gelu_float32_duals_finite_at_float32_extremes():
    t = lambda x: torch.tensor(x, dtype=torch.float32)  # noqa: E731
    for name in ("erf", "gelu"):
        A = act(name)
        for q11, q22, rho in [(3e38, 3e38, 0.5), (1e-40, 3e38, 0.5), (1e30, 1e-30, -1.0), (1e20, 1e20, 1.0)]:
            e, ed = A.duals(t(q11), t(q22), t(rho), root=t(math.sqrt(q11) * math.sqrt(q22)))
            with mp.workdps(40):
                E, ED, _ = mp_duals(name, q11, q22, rho * mp.sqrt(mp.mpf(q11)) * mp.sqrt(mp.mpf(q22)))
            for got, ref in ((e, E), (ed, ED)):
                assert abs(float(got) - float(ref)) <= 1e-5 * abs(float(ref)) + 1e-38, (name, q11, q22, rho)


def test_relu_power_past_float64_range_is_a_clear_error():
    """Issue 10: relu(200) overflowed: c_sigma = 2/(2k-1)!! (1e-434) rounds to 0 and J_200(0) to
    inf, so the kernels saw 0 * inf. Now c_sigma (and every float64 kernel using it) refuses with
    the reason and the way out; the high-precision path keeps working."""
    with pytest.raises(ValueError, match=r"relu\(200\) has c_sigma = 3\.958\d*e-434, outside float64"):
        _ = nk.relu(200).c_sigma
    with pytest.raises(ValueError, match="high-precision path"):
        nk.ntk(np.eye(3), depth=1, activation=nk.relu(200))
    with mp.workdps(30):
        assert abs(nk.relu(200).c_sigma_mp() * mp_duals("relu200", 1, 1, 1)[0] - 1) < mp.mpf(10) ** -25
    assert nk.relu(150).c_sigma == pytest.approx(2 / math.prod(range(1, 300, 2)), rel=EPS)


@pytest.mark.parametrize("args, err, match", [
    (("1", 0.1), TypeError, "a must be a real number"),
    ((1.0, True), TypeError, "b must be a real number"),
    ((1.0, math.nan), ValueError, "b must be finite"),
    ((math.inf, 0.1), ValueError, "a must be finite"),
    ((0.0, -0.0), ValueError, "must not both be 0"),
])
def test_two_slope_relu_bad_slopes(args, err, match):
    with pytest.raises(err, match=match):
        nk.abrelu(*args)


def test_two_slope_names_parse_back_and_bad_ones_are_refused():
    assert nk.get_activation("Leaky_ReLU(0.2)") == nk.leaky_relu(0.2)
    assert nk.get_activation("abrelu(2, -0.5)") == nk.abrelu(2.0, -0.5)
    assert nk.get_activation("leaky_relu(0.01)").name == "leaky_relu"
    assert nk.abrelu(-0.0, 1.0) == nk.abrelu(0.0, 1.0) and nk.abrelu(-0.0, 1.0).name == "abrelu(0.0, 1.0)"
    for bad in ("leaky_relu(x)", "abrelu(1)", "leaky_relu()"):
        with pytest.raises(ValueError, match="unknown activation"):
            nk.get_activation(bad)
    with pytest.raises(ValueError, match="b must be finite"):
        nk.get_activation("leaky_relu(inf)")


@pytest.mark.parametrize("name", ["step", "sign"])
def test_step_and_sign_kernels_vanish_at_a_zero_input(name):
    """A zero input without bias: every pre-activation is exactly 0 and step(0) = sign(0) = 0, so the
    network's kernel row is 0. The formula's pi - theta at an undefined angle gave 0.5 in K(X) and
    1 in diag(X) (found by tests/test_invariants.py)."""
    X = np.array([[0.0, 0.0], [1.0, 0.5]])
    for kernel in (nk.nngp, nk.ntk):
        K = kernel(X, depth=1, activation=name)
        assert K[0].tolist() == [0.0, 0.0] and K[:, 0].tolist() == [0.0, 0.0]
        cls = nk.NNGP if kernel is nk.nngp else nk.NTK
        assert cls(depth=1, activation=name).diag(X)[0] == 0.0
        assert K[1, 1] == pytest.approx(1.0, rel=1e-15)  # c_sigma E[sigma(z)^2] = 1
    # the fused path and the generic formula agree at zero variance (q = 0 exactly)
    act = nk.get_activation(name)
    q0, q1 = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    rho = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64)
    assert act.duals(q0, q1, rho, deriv=False)[0].tolist() == [0.0, 0.0, 0.0]
