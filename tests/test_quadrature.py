"""The quadrature path for arbitrary callables (nk.Quadrature): accuracy against independent references
(scipy's nested adaptive quadrature, closed forms), its error estimate and warning, and its errors.

Issue 10 item 1 and issue 22: the order-64 Gauss-Hermite rule was 1.4 % off for tanh at q = 100 and did
not know it; orders past numpy's node generator failed with "c_sigma is undefined"; a NaN activation
gave a NaN kernel; numpy activations failed on tensors that require grad.
"""
import math
import warnings

import numpy as np
import pytest
import torch
from scipy import integrate

import ntklib as nk
from ntklib.quadrature import QuadratureAccuracyWarning


def _phi(z):
    return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)


def _nested(f, q11, q22, rho, cut=10.0, at=0.0):
    """E[f(u) f(v)] by scipy's nested adaptive quadrature, split where u = at and where v = at."""
    a, b = math.sqrt(q11), math.sqrt(q22)
    opts = {"epsabs": 1e-15, "epsrel": 1e-13, "limit": 200}
    if abs(rho) == 1:
        pts = sorted({at / a, rho * at / b})
        return integrate.quad(lambda z: f(a * z) * f(rho * b * z) * _phi(z), -cut, cut, points=pts, **opts)[0]
    s = math.sqrt((1 - rho) * (1 + rho))

    def inner(z1):
        w0 = (at / b - rho * z1) / s
        pts = [w0] if abs(w0) < cut else None
        return integrate.quad(lambda w: f(b * (rho * z1 + s * w)) * _phi(w), -cut, cut, points=pts, **opts)[0]

    return integrate.quad(lambda z1: f(a * z1) * inner(z1) * _phi(z1), -cut, cut, points=[at / a], **opts)[0]


def _sech2(x):
    return 1 / math.cosh(x) ** 2 if abs(x) < 300 else 0.0


@pytest.mark.parametrize("q", [1e-3, 1.0, 100.0, 1e3])
def test_tanh_dual_accurate_at_large_variance(q):
    """Issue 10 item 1: the tanh dual to 1e-10 relative (to E|tanh u tanh v| <= sqrt(E tanh^2 u E tanh^2 v))
    for q in [1e-3, 1e3] and rho up to the endpoints, against nested adaptive quadrature; the reported
    error bounds the true one and no warning is raised; the derivative dual too."""
    A = nk.get_activation("tanh")
    q11, q22 = q, 0.7 * q
    scale = math.sqrt(_nested(math.tanh, q11, q11, 1.0) * _nested(math.tanh, q22, q22, 1.0))
    for rho in (-1.0, -0.5, 0.3, 0.999, 1.0):
        q12 = rho * math.sqrt(q11 * q22)
        ref = _nested(math.tanh, q11, q22, rho)
        with warnings.catch_warnings():
            warnings.simplefilter("error", QuadratureAccuracyWarning)
            got = float(A.dual(q11, q12, q22))
        assert abs(got - ref) <= 1e-10 * scale, (q, rho, got, ref)
        assert A.accuracy <= 1e-10
        assert abs(got - ref) <= float(A.dual_error(q11, q12, q22)) + 1e-14 * scale
        # the derivative dual, E[sech^2 u sech^2 v], to the same tolerance
        ref = _nested(_sech2, q11, q22, rho)
        got = float(A.dual_deriv(q11, q12, q22))
        assert abs(got - ref) <= 1e-10 * math.sqrt(_nested(_sech2, q11, q11, 1.0) * _nested(_sech2, q22, q22, 1.0))


def test_tanh_dual_accurate_for_unequal_variances_near_rho_one():
    """q11 = 1e3, q22 = 1, |rho| = 0.999: the sharp line u = 0 lies 0.045 rad from the line v = 0, whose own zone
    is wide; the rule grades towards both (it was 2e-10 off, its estimate saying so, before)."""
    A = nk.get_activation("tanh")
    scale = math.sqrt(_nested(math.tanh, 1e3, 1e3, 1.0) * _nested(math.tanh, 1.0, 1.0, 1.0))
    for rho in (0.999, -0.9995):
        q12 = rho * math.sqrt(1e3)
        ref = _nested(math.tanh, 1e3, 1.0, rho)
        assert abs(float(A.dual(1e3, q12, 1.0)) - ref) <= 1e-11 * scale
        assert A.accuracy <= 1e-10


def test_tanh_dual_of_issue_10():
    """nk.Activation(np.tanh).dual(100, 90, 100) was 0.71220; nested quadrature gives 0.70238."""
    ref = _nested(math.tanh, 100.0, 100.0, 0.9)
    assert ref == pytest.approx(0.70238, abs=1e-5)
    assert float(nk.Activation(np.tanh).dual(100.0, 90.0, 100.0)) == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("name", ["softplus", "sigmoid", "gelu"])
def test_smooth_quadrature_activations_accurate_at_large_variance(name):
    """softplus, sigmoid, GELU by callable: the dual to 1e-10 at q = 1e3 against nested quadrature, no warning."""
    fn, f = {"softplus": (torch.nn.functional.softplus, lambda x: float(np.logaddexp(0.0, x))),
             "sigmoid": (torch.sigmoid, lambda x: 1 / (1 + math.exp(-x)) if x > -700 else 0.0),
             "gelu": (torch.nn.functional.gelu, lambda x: 0.5 * x * math.erfc(-x / math.sqrt(2)))}[name]
    A = nk.Quadrature(fn)
    q11, q22, rho = 1e3, 300.0, 0.6
    scale = math.sqrt(_nested(f, q11, q11, 1.0) * _nested(f, q22, q22, 1.0))
    ref = _nested(f, q11, q22, rho)
    assert abs(float(A.dual(q11, rho * math.sqrt(q11 * q22), q22)) - ref) <= 1e-10 * scale


COVARIANCES = [(q, 0.7 * q, rho) for q in (1e-3, 1.0, 10.0, 1e3) for rho in (-1.0, -0.5, 0.0, 0.999, 1.0)]


@pytest.mark.parametrize("fn, closed", [(torch.special.erf, nk.erf()), (torch.sin, nk.sin()),
                                        (lambda z: torch.clamp(z, min=0), nk.relu())],
                         ids=["erf", "sin", "relu-lambda"])
def test_closed_forms_through_the_callable_path(fn, closed):
    """nk.Quadrature(torch.special.erf), (torch.sin), a ReLU lambda equal nk.erf(), nk.sin(), nk.relu() to 1e-10
    relative to the kernel's scale, dual and derivative dual, also at rho = +-1 and 0.999 (sin up to q = 10:
    beyond, its oscillations defeat the rule, which then warns, see the next test). The ReLU's kink at 0 is
    on the rule's breakpoints, so it is integrated exactly."""
    Q = nk.Quadrature(fn, name="by quadrature")
    for q11, q22, rho in COVARIANCES:
        if closed == nk.sin() and q11 > 10:
            continue
        q12 = rho * math.sqrt(q11 * q22)
        for method in ("dual", "dual_deriv"):
            exact = getattr(closed, method)
            scale = math.sqrt(float(exact(q11, q11, q11)) * float(exact(q22, q22, q22)))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", QuadratureAccuracyWarning)  # relu at q = 1e3: 4e-10 estimated
                got = float(getattr(Q, method)(q11, q12, q22))
            assert got == pytest.approx(float(exact(q11, q12, q22)), abs=1e-10 * scale), (q11, rho, method)
    assert Q.c_sigma == pytest.approx(closed.c_sigma, rel=1e-12)


def test_oscillating_activation_beyond_the_rule_warns_with_its_accuracy():
    """sin at q = 1e3 (45 periods along each ray) is beyond the rule: it warns, and its estimate bounds the error."""
    Q = nk.Quadrature(torch.sin)
    q11, q22, rho = 1e3, 700.0, 0.999
    q12 = rho * math.sqrt(q11 * q22)
    with pytest.warns(QuadratureAccuracyWarning, match=r"relative accuracy of \S+ only"):
        got = float(Q.dual(q11, q12, q22))
    assert abs(got - float(nk.sin().dual(q11, q12, q22))) <= float(Q.dual_error(q11, q12, q22))


@pytest.mark.parametrize("shift", [0.5, -1.0])
def test_kinked_lambda_warns_and_its_accuracy_bounds_the_error(shift):
    """A ReLU with its kink away from 0 (relu(z - c)) converges only algebraically (rho = 0 and 0.999):
    a QuadratureAccuracyWarning giving the accuracy, and the reported error bounds the true one (reference:
    nested adaptive quadrature split at the kinks). At rho = 0 (Mehler's series, 1-D integrals) the dual is
    the square of E[relu(u - c)] = sqrt(q) phi(c / sqrt(q)) - c (1 - Phi(c / sqrt(q)))."""
    Q = nk.Quadrature(lambda z: torch.clamp(z - shift, min=0), name="shifted relu")
    q = 2.0
    t = shift / math.sqrt(q)
    mean = math.sqrt(q) * _phi(t) - shift * 0.5 * math.erfc(t / math.sqrt(2))
    for rho, ref in ((0.0, mean**2), (0.999, _nested(lambda x: max(x - shift, 0.0), q, q, 0.999, at=shift))):
        with pytest.warns(QuadratureAccuracyWarning, match="shifted relu.*relative accuracy of"):
            got = float(Q.dual(q, rho * q, q))
        err = abs(got - ref)
        assert err > 1e-10 * ref  # the kink is really missed, and
        assert err <= float(Q.dual_error(q, rho * q, q))  # the estimate says so
        assert Q.accuracy > Q.rtol


def test_step_lambda_at_zero_is_exact_but_shifted_jump_warns():
    """A jump at 0 lies on the breakpoints (exact: E[step u step v] = (pi - acos rho) / (2 pi)); one at 0.3 warns."""
    step = nk.Quadrature(lambda z: (z > 0).to(z.dtype), name="step lambda")
    assert float(step.dual(1.0, 0.5, 1.0)) == pytest.approx((math.pi - math.acos(0.5)) / (2 * math.pi), abs=1e-12)
    shifted = nk.Quadrature(lambda z: (z > 0.3).to(z.dtype), name="jump")
    with pytest.warns(QuadratureAccuracyWarning):
        shifted.dual(1.0, 0.5, 1.0)


def test_legacy_order_warns_where_it_is_wrong():
    """order=64 (the old rule) at q = 100 is 1.4 % off: now it says so."""
    with pytest.warns(QuadratureAccuracyWarning, match="relative accuracy"):
        got = float(nk.Quadrature(torch.tanh, order=64).dual(100.0, 90.0, 100.0))
    assert abs(got - 0.70238) > 1e-3


def test_nan_activation_raises_naming_it():
    """A callable returning NaN gave a NaN kernel (also with an explicit weight_var): now a ValueError naming it."""
    bad = nk.Quadrature(lambda z: torch.where(z > 2, torch.nan, z), name="nan above 2")
    with pytest.raises(ValueError, match="nan above 2.*NaN or inf"):
        bad.dual(1.0, 0.5, 1.0)
    X = np.random.default_rng(0).standard_normal((4, 3))
    with pytest.raises(ValueError, match="nan above 2.*NaN or inf"):
        nk.ntk(X, depth=1, activation=bad, weight_var=1.0)
    with pytest.raises(ValueError, match="nan above 2.*NaN or inf"):
        nk.nngp(X, depth=2, activation=bad)


def test_order_past_the_node_generator_raises_clearly_and_at_once():
    """order >= 371 overflowed numpy's hermegauss ("c_sigma is undefined"); order=5000 took 30 s."""
    import time

    start = time.perf_counter()
    for order in (371, 5000):
        with pytest.raises(ValueError, match=f"order={order} is past the range of the Gauss-Hermite node generator"):
            nk.Quadrature(torch.tanh, order=order)
    assert time.perf_counter() - start < 0.5
    assert nk.Quadrature(torch.tanh, order=370).order == 370


def test_scalar_only_function_raises_a_clear_type_error():
    """math.tanh cannot take a tensor: a TypeError saying what an activation must be, not torch's message."""
    with pytest.raises(TypeError, match="cannot be applied to a torch tensor.*must act elementwise"):
        nk.Quadrature(math.tanh).dual(1.0, 0.5, 1.0)


def test_argument_errors():
    with pytest.raises(TypeError, match="rtol must be a real number"):
        nk.Quadrature(torch.tanh, rtol="1e-10")
    with pytest.raises(ValueError, match=r"rtol must lie in \(0, 1\)"):
        nk.Quadrature(torch.tanh, rtol=0.0)
    with pytest.raises(TypeError, match="deriv must be True or False"):
        nk.Quadrature(torch.tanh).dual_error(1.0, 0.5, 1.0, deriv="no")
    assert nk.Quadrature(torch.tanh, rtol=1e-6) != nk.Quadrature(torch.tanh)
    assert repr(nk.Quadrature(torch.tanh, rtol=1e-6)) == "Quadrature(torch.tanh, rtol=1e-06)"


def test_numpy_lambda_in_ntk():
    """nk.ntk(X, activation=lambda z: np.tanh(z)) failed with "Can't call numpy() on Tensor that requires grad"."""
    X = np.random.default_rng(1).standard_normal((5, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch's __array_wrap__, called by numpy
        K = nk.ntk(X, depth=1, activation=lambda z: np.tanh(z))
    np.testing.assert_allclose(K, nk.ntk(X, depth=1, activation="tanh"), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("activation", [np.tanh, lambda z: np.tanh(z)], ids=["ufunc", "numpy-lambda"])
def test_mlp_with_numpy_activation_trains(activation):
    """MLP(activation=np.tanh) failed forward and backward; now it matches torch.tanh, gradients included."""
    X = torch.tensor(np.random.default_rng(2).standard_normal((4, 3)))
    grads = []
    for act in (activation, torch.tanh):
        net = nk.MLP(3, 8, 2, activation=act, seed=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            out = net(X)
            out.sum().backward()
        grads.append((out.detach(), [p.grad.clone() for p in net.parameters()]))
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=1e-12, atol=1e-12)
    for g, h in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(g, h, rtol=1e-8, atol=1e-9)  # finite differences for the numpy lambda


def test_kernel_tiles_agree_with_entrywise_duals():
    """The kernels' tiles go through Mehler's series (and 1-D integrals on the diagonal): they agree with
    the entry-by-entry polar rule, and K(X) stays exactly symmetric."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((12, 4)) * np.array([[0.1], [1.0], [3.0], [10.0]] * 3)
    A = nk.get_activation("tanh")
    K = nk.nngp(X, depth=1, activation=A)
    assert np.array_equal(K, K.T)
    q = np.sum(X * X, axis=1)
    c = A.c_sigma
    for i in range(12):
        for j in range(12):
            entry = c * float(A.dual(q[i], X[i] @ X[j], q[j]))
            assert K[i, j] == pytest.approx(entry, rel=1e-10, abs=1e-12)
