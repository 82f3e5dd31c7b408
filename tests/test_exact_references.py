"""Exact and independent references for the four bugs that survived the hand-planted mutants (issue 23).

Each test here fails for one of them, and compares against a reference that shares no code with
ntklib:

* the duals of every closed-form activation, in float64 and in mpmath, against a two-dimensional
  Gauss–Legendre quadrature of the Gaussian expectation (using only the activation's elementwise
  ``sigma`` and ``sigma'``) and against tests/mpref.py at 40 digits (a wrong factor in the
  high-precision derivative dual of ReLU^k survived when only ReLU itself was compared);
* the symmetric Gram matrices tiled (``block_size`` 1 to 5 on 7, 8 and 13 points) against the
  untiled ones and the ``(X, Y)`` path (an off-diagonal tile mirrored without its transpose
  survived when every symmetric call fitted in one tile);
* the CNTK against a brute-force loop over all pixel pairs with 3 x 3 filters, written here from
  Arora et al. (2019) (self-variances without the patch mean survived the 1 x 1 filter tests);
* the empirical NTK of a linear model (``depth=0``) with ``bias_var = 0.3``: exactly
  ``X X^T + 0.3`` for any seed, and the output bias adds exactly ``beta^2`` at every depth (a lost
  output bias survived the statistical convergence tests).
"""
import itertools
import math

import mpmath as mp
import numpy as np
import pytest
import torch

import mpref
import ntklib as nk
from ntklib.activations import ClosedForm


# ----------------------------------------------------------------------------------------------
# (a) the duals of every closed form, float64 and mpmath, against independent references
# ----------------------------------------------------------------------------------------------
def _closed_forms():
    """Every closed form the library names, and ReLU^k for k = 0..4: {name: activation}."""
    acts = [nk.get_activation(n) for n in nk.ACTIVATION_NAMES] + [nk.relu(k) for k in range(5)]
    return {a.name: a for a in acts if a.closed_form}


CLOSED = _closed_forms()
#: the closed forms tests/mpref.py also implements (from the papers), for the 40-digit comparison
MPREF = [n for n in CLOSED if n in ("step", "relu", "erf", "sin", "cos", "identity") or n[4:].isdigit()]
VARIANCES = [(1.0, 1.0), (0.3, 2.0), (1.7, 0.45)]
RHOS = [-1.0, -0.9, -0.3, 0.0, 0.5, 0.95, 1.0]


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_closed_form_class_is_covered_here():
    """A new closed-form class of ntklib must be reachable by a name, so the tests below see it."""
    library = {c for c in _subclasses(ClosedForm) if c.__module__.startswith("ntklib") and not c.__abstractmethods__}
    assert library <= {type(a) for a in CLOSED.values()}
    assert {"step", "relu", "relu2", "relu3", "relu4", "erf", "sin", "cos", "identity"} <= set(CLOSED)


def _gauss_legendre_panels(lo, hi, panels, nodes):
    """Nodes and weights of composite Gauss–Legendre on [lo, hi] (tensors broadcasting over lo, hi)."""
    x, w = (torch.from_numpy(a) for a in np.polynomial.legendre.leggauss(nodes))
    t = (torch.arange(panels, dtype=torch.float64)[:, None] + (x + 1) / 2).reshape(-1) / panels  # in [0, 1]
    width = (hi - lo)[..., None]
    return lo[..., None] + width * t, width * (w / (2 * panels)).repeat(panels)


def _gaussian_expectation(f, q11, q22, rho, *, cut=12.0, panels=8, nodes=16):
    """E[f(u) f(v)] for (u, v) ~ N(0, [[q11, r], [r, q22]]), r = rho sqrt(q11 q22), |rho| < 1.

    u = sqrt(q11) z1, v = sqrt(q22) (rho z1 + s z2), s = sqrt(1 - rho^2): nested composite
    Gauss–Legendre quadrature on [-cut, cut]^2, split where u = 0 and where v = 0 (the kinks of
    ReLU^k and the step), so each panel integrates a smooth function. No ntklib code but ``f``.
    """
    s = math.sqrt((1 - rho) * (1 + rho))
    parts = [torch.tensor(v, dtype=torch.float64) for v in ((-cut, 0.0), (0.0, cut))]
    z1, w1 = (torch.cat(a) for a in zip(*(_gauss_legendre_panels(lo, hi, panels, nodes) for lo, hi in parts)))
    kink = (-rho * z1 / s).clamp(-cut, cut)  # v = 0 there
    lo, hi = torch.full_like(z1, -cut), torch.full_like(z1, cut)
    za, wa = _gauss_legendre_panels(lo, kink, panels, nodes)
    zb, wb = _gauss_legendre_panels(kink, hi, panels, nodes)
    z2, w2 = torch.cat([za, zb], dim=1), torch.cat([wa, wb], dim=1)
    density = lambda z: torch.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    inner = (f(math.sqrt(q22) * (rho * z1[:, None] + s * z2)) * density(z2) * w2).sum(1)
    return float((f(math.sqrt(q11) * z1) * inner * density(z1) * w1).sum())


@pytest.mark.parametrize("name", list(CLOSED))
def test_float64_duals_of_every_closed_form_match_two_dimensional_quadrature(name):
    """Both duals in float64 against the Gaussian expectation of sigma(u) sigma(v) and of
    sigma'(u) sigma'(v) by quadrature (the activation's elementwise functions only), 1e-12."""
    a = CLOSED[name]
    for (q11, q22), rho in itertools.product(VARIANCES, [r for r in RHOS if abs(r) < 1]):
        t = [torch.tensor(v, dtype=torch.float64) for v in (q11, q22, rho)]
        e, ed = (float(v) for v in a.duals(*t))
        ref = _gaussian_expectation(a, q11, q22, rho)
        ref_d = _gaussian_expectation(a.derivative, q11, q22, rho)
        assert abs(e - ref) <= 1e-12 * (1 + abs(ref)), (name, q11, q22, rho, e, ref)
        assert abs(ed - ref_d) <= 1e-12 * (1 + abs(ref_d)), (name, q11, q22, rho, ed, ref_d)


@pytest.mark.parametrize("name", list(CLOSED))
def test_high_precision_duals_of_every_closed_form_match_float64(name):
    """The mpmath duals (40 digits) rounded to float64 against the float64 path, at the same
    arguments, rho = +-1 included: 1e-14 relative to the kernel's scale (the dual at rho = 1)."""
    a = CLOSED[name]
    with mp.workdps(40):
        for (q11, q22), rho in itertools.product(VARIANCES, RHOS):
            t = [torch.tensor(v, dtype=torch.float64) for v in (q11, q22, rho)]
            e, ed = (float(v) for v in a.duals(*t))
            m, md = a.duals(mp.mpf(q11), mp.mpf(q22), mp.mpf(rho))
            scale, dscale = (abs(float(v)) for v in a.duals(mp.mpf(q11), mp.mpf(q22), mp.mpf(1)))
            assert isinstance(m, mp.mpf) and isinstance(md, mp.mpf)
            assert abs(e - float(m)) <= 1e-14 * (abs(e) + scale), (name, q11, q22, rho)
            assert abs(ed - float(md)) <= 1e-14 * (abs(ed) + dscale), (name, q11, q22, rho)


@pytest.mark.parametrize("name", MPREF)
def test_high_precision_duals_match_the_40_digit_reference(name):
    """The mpmath duals against tests/mpref.py's closed forms at 40 digits: agreement to 1e-35."""
    a = CLOSED[name]
    with mp.workdps(40):
        tol = mp.mpf(10) ** -35
        for (q11, q22), rho in itertools.product(VARIANCES, RHOS):
            q1, q2, r = mp.mpf(q11), mp.mpf(q22), mp.mpf(rho)
            e, ed = a.duals(q1, q2, r)
            ref, ref_d, c = mpref.duals(name, q1, q2, r * mp.sqrt(q1 * q2))
            assert abs(e - ref) <= tol * (1 + abs(ref)), (name, q11, q22, rho)
            assert abs(ed - ref_d) <= tol * (1 + abs(ref_d)), (name, q11, q22, rho)
        assert abs(a.c_sigma_mp() - c) <= tol * c


@pytest.mark.parametrize("name", list(CLOSED))
@pytest.mark.parametrize("cls", [nk.NTK, nk.NNGP])
def test_kappa_mp_of_every_closed_form_matches_float64_and_the_40_digit_reference(cls, name):
    """kappa_mp (the high-precision recursion behind the spectra) against float64 kappa (1e-14 of
    kappa(1)) for every closed form, and against mpref's recursion at 40 digits where it has one."""
    k = cls(depth=2, activation=name)
    us = [-1.0, -0.7, 0.0, 0.3, 0.9, 1.0]
    values = k.kappa(np.array(us))
    with mp.workdps(40):
        scale = abs(k.kappa_mp(1))
        for u, value in zip(us, values):
            got = k.kappa_mp(mp.mpf(u))
            assert abs(float(got) - value) <= 1e-14 * (abs(value) + float(scale)), (name, u)
            if name in MPREF:
                ref = mpref.kappa([name] * 2, u, ntk=cls is nk.NTK)
                assert abs(got - ref) <= mp.mpf(10) ** -35 * (abs(ref) + scale), (name, u)


# ----------------------------------------------------------------------------------------------
# (b) symmetric Gram matrices: tiled = untiled = the (X, Y) path
# ----------------------------------------------------------------------------------------------
def _assert_same_gram(tiled, untiled, xy, what):
    tiled, untiled, xy = (np.asarray(a) for a in (tiled, untiled, xy))
    tol = 1e-14 * np.abs(untiled).max()
    assert np.array_equal(tiled, tiled.T), f"{what}: not exactly symmetric"
    assert np.abs(tiled - untiled).max() <= tol, what
    assert np.abs(tiled - xy).max() <= tol, what


@pytest.mark.parametrize("n", [7, 8, 13])
@pytest.mark.parametrize("fn", [nk.ntk, nk.nngp])
def test_symmetric_gram_tiled_in_small_blocks_equals_the_untiled_one(fn, n):
    """block_size 1..5 on 7, 8 and 13 points makes square, ragged and single-row tiles, on and off
    the diagonal: each mirrored tile must be transposed."""
    X = np.random.default_rng(n).standard_normal((n, 3))
    kw = {"depth": 2, "bias_var": 0.1}
    untiled = fn(X, block_size=256, **kw)
    xy = fn(X, X, block_size=256, **kw)
    for block in range(1, 6):
        _assert_same_gram(fn(X, block_size=block, **kw), untiled, xy, f"{fn.__name__} n={n} block={block}")
    ragged = fn(X, X[: n - 2], block_size=3, **kw)  # the (X, Y) path with ragged tiles too
    assert np.abs(ragged - untiled[:, : n - 2]).max() <= 1e-14 * np.abs(untiled).max()


@pytest.mark.parametrize("pooling", ["gap", "vanilla"])
def test_symmetric_cntk_tiled_in_small_blocks_equals_the_untiled_one(pooling):
    """pairs_per_block 1, 4, 9 make tiles of 1, 2, 3 image pairs a side on 5 images."""
    X = np.random.default_rng(2).standard_normal((5, 1, 3, 3))
    untiled = nk.cntk(X, depth=2, pooling=pooling)
    xy = nk.cntk(X, X, depth=2, pooling=pooling)
    for ppb in (1, 4, 9):
        tiled = nk.cntk(X, depth=2, pooling=pooling, pairs_per_block=ppb)
        _assert_same_gram(tiled, untiled, xy, f"cntk {pooling} pairs_per_block={ppb}")


def test_symmetric_empirical_ntk_tiled_in_small_chunks_equals_the_untiled_one():
    """chunk_size 1..3 on 7 points, both methods."""
    net = nk.MLP(3, 8, 2, bias_var=0.2, seed=0)
    X = np.random.default_rng(3).standard_normal((7, 3))
    for method in ("structured", "jacobian"):
        untiled = nk.empirical_ntk(net, X, method=method, chunk_size=64)
        xy = nk.empirical_ntk(net, X, X, method=method, chunk_size=64)
        for chunk in (1, 2, 3):
            tiled = nk.empirical_ntk(net, X, method=method, chunk_size=chunk)
            _assert_same_gram(tiled, untiled, xy, f"empirical_ntk {method} chunk_size={chunk}")


# ----------------------------------------------------------------------------------------------
# (c) the CNTK against a brute-force loop over pixel pairs
# ----------------------------------------------------------------------------------------------
def _patch_mean(A, H, W, q):
    """(1/q^2) sum over the q x q offsets of A[(i+a, j+b), (k+a, l+b)], pixels outside dropped."""
    r = q // 2
    out = np.zeros_like(A)
    for i, j, k, l in itertools.product(range(H), range(W), range(H), range(W)):
        total = 0.0
        for a, b in itertools.product(range(-r, r + 1), repeat=2):
            if 0 <= i + a < H and 0 <= j + b < W and 0 <= k + a < H and 0 <= l + b < W:
                total += A[i + a, j + b, k + a, l + b]
        out[i, j, k, l] = total / (q * q)
    return out


def _relu_step(sigma, vx, vy):
    """K = 2 E[relu(u) relu(v)] and Kdot = 2 E[1(u>0) 1(v>0)] for every pixel pair (Cho & Saul)."""
    root = np.sqrt(vx[:, :, None, None] * vy[None, None, :, :])
    rho = np.clip(sigma / root, -1.0, 1.0)
    theta = np.arccos(rho)
    return root * (np.sin(theta) + (np.pi - theta) * rho) / np.pi, (np.pi - theta) / np.pi


def _brute_cntk(X, Y, depth, q, pooling, fix, kernel):
    """Arora et al.'s CNTK (our depth counts convolutional layers) by full (H, W, H, W) arrays."""
    H, W = X.shape[2:]

    def diagonal(A):
        return np.einsum("ijij->ij", A)

    def self_variances(x):  # diag Sigma^(h)(x, x), h = 1..depth, from x's own full recursion
        sigma = _patch_mean(np.einsum("cij,ckl->ijkl", x, x), H, W, q)
        out = [diagonal(sigma)]
        for _ in range(2, depth + 1):
            sigma = _patch_mean(_relu_step(sigma, out[-1], out[-1])[0], H, W, q)
            out.append(diagonal(sigma))
        return out

    vX, vY = [self_variances(x) for x in X], [self_variances(y) for y in Y]
    K = np.zeros((len(X), len(Y)))
    for a, b in itertools.product(range(len(X)), range(len(Y))):
        sigma = _patch_mean(np.einsum("cij,ckl->ijkl", X[a], Y[b]), H, W, q)
        theta = np.zeros_like(sigma) if fix else sigma
        for h in range(2, depth + 1):
            k, kdot = _relu_step(sigma, vX[a][h - 2], vY[b][h - 2])
            theta = _patch_mean(theta * kdot + k, H, W, q)
            sigma = _patch_mean(k, H, W, q)
        k, kdot = _relu_step(sigma, vX[a][depth - 1], vY[b][depth - 1])
        final = k if kernel == "nngp" else (theta * kdot if fix else theta * kdot + k)
        K[a, b] = diagonal(final).sum() if pooling == "vanilla" else final.mean()
    return K


@pytest.mark.parametrize("pooling", ["vanilla", "gap"])
@pytest.mark.parametrize("depth", [1, 2])
def test_cntk_with_3x3_filters_matches_a_brute_force_pixel_loop(depth, pooling):
    """nk.cntk with 3 x 3 filters on 4 x 4 x 2 images (and a 3 x 5 Y) against the brute force, 1e-12
    relative: NTK with and without fix, and the NNGP; symmetric and (X, Y) calls."""
    rng = np.random.default_rng(10 * depth + len(pooling))
    X = rng.standard_normal((3, 2, 4, 4))
    Y = rng.standard_normal((2, 2, 4, 4))
    for kernel, fix in (("ntk", False), ("ntk", True), ("nngp", False)):
        kw = {"depth": depth, "pooling": pooling, "fix": fix, "filter_size": 3, "kernel": kernel}
        for A, B in ((X, None), (X, Y)):
            ref = _brute_cntk(A, A if B is None else B, depth, 3, pooling, fix, kernel)
            got = nk.cntk(A, B, **kw)
            scale = max(np.abs(ref).max(), 1e-300)
            assert np.abs(got - ref).max() <= 1e-12 * scale, (kernel, fix, B is None)
    Z = rng.standard_normal((2, 1, 3, 5))  # rows and columns not interchangeable
    ref = _brute_cntk(Z, Z, depth, 3, pooling, False, "ntk")
    assert np.abs(nk.cntk(Z, depth=depth, pooling=pooling) - ref).max() <= 1e-12 * np.abs(ref).max()


# ----------------------------------------------------------------------------------------------
# (d) the linear model and the output bias, exactly
# ----------------------------------------------------------------------------------------------
def test_empirical_ntk_of_a_depth_0_mlp_is_exactly_x_xt_plus_bias_var():
    """f(x) = w . x + beta b with every parameter N(0, 1) ("ntk" parameterization): the gradient is
    (x, beta), so the empirical NTK is X X^T + beta^2 for every seed, exactly; the infinite-width
    kernel nk.ntk(depth=0) is the same matrix, and the function is the parameters' linear form."""
    beta2 = 0.3
    X = np.random.default_rng(0).standard_normal((5, 3))
    Y = np.random.default_rng(1).standard_normal((4, 3))
    net = nk.MLP(3, 7, 0, bias_var=beta2, seed=4)
    (layer,) = net.layers
    assert layer.bias is not None
    for method in ("structured", "jacobian"):
        for A, B in ((X, None), (X, Y)):
            exact = A @ (A if B is None else B).T + beta2
            got = nk.empirical_ntk(net, A, B, method=method)
            assert np.abs(got - exact).max() <= 1e-12 * np.abs(exact).max(), method
    assert np.abs(nk.ntk(X, depth=0, bias_var=beta2) - (X @ X.T + beta2)).max() <= 1e-12 * np.abs(X @ X.T).max()
    x = torch.from_numpy(X)
    f = x @ layer.weight.detach()[0] + math.sqrt(beta2) * layer.bias.detach()[0]
    assert torch.allclose(net(x), f, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize("method", ["structured", "jacobian"])
def test_output_bias_adds_exactly_bias_var_to_the_empirical_ntk(depth, method):
    """The output bias is drawn last, so with bias_var = [0, ..., 0, beta^2] the other parameters are
    those of the bias-free net of the same seed; d f / d b_out = beta, so the empirical NTK grows by
    exactly beta^2 everywhere (and the output by beta b_out)."""
    X = np.random.default_rng(5).standard_normal((6, 3))
    plain = nk.MLP(3, 9, depth, seed=1)
    biased = nk.MLP(3, 9, depth, bias_var=[0.0] * depth + [0.3], seed=1)
    diff = nk.empirical_ntk(biased, X, method=method) - nk.empirical_ntk(plain, X, method=method)
    assert np.abs(diff - 0.3).max() <= 1e-12
    x = torch.from_numpy(X)
    shift = biased(x) - plain(x)
    assert torch.allclose(shift, math.sqrt(0.3) * biased.layers[-1].bias.detach()[0].expand(6), atol=1e-13)


# ----------------------------------------------------------------------------------------------
# (e) ntklib.decay: what the trial mutation run (issue 23) found untested
# ----------------------------------------------------------------------------------------------
def test_fit_decay_of_an_exact_power_law_on_a_two_point_window():
    """A window of two values is the smallest fit: slope and intercept of v = 3 i^-2.5 exactly."""
    i = np.arange(1.0, 6.0)
    slope, intercept = nk.fit_decay(3 * i**-2.5, (2, 4), index=i)
    assert abs(slope + 2.5) <= 1e-12 and abs(intercept - math.log(3)) <= 1e-12


def test_fit_decay_refuses_values_at_the_floor_relative_to_the_largest():
    """floor is relative to the largest |value| (4 here): a value equal to floor * 4, or between
    floor and floor * 4, is round-off and refused."""
    floor = 1e-13
    for tiny in (floor * 4.0, 1e-13):
        with pytest.raises(ValueError, match=r"values\[1\]"):
            nk.fit_decay([4.0, tiny, 1e-14], (0, 2), floor=floor)
    assert nk.fit_decay([4.0, floor * 4.0 * 1.5], (0, 2), floor=floor)[0] < 0  # just above: accepted


def test_local_exponents_refuses_a_repeated_index():
    with pytest.raises(ValueError, match=r"^index must be strictly increasing"):
        nk.local_exponents([1.0, 0.5, 0.25, 0.125], [1.0, 2.0, 2.0, 3.0])


@pytest.mark.parametrize("call, error, message", [
    (lambda: nk.fit_decay("abc", (0, 2)), TypeError, r"^values\b"),
    (lambda: nk.fit_decay([1.0, 0.5, 0.25], (0, 2), index="abc"), TypeError, r"^index\b"),
    (lambda: nk.fit_decay([1.0, 0.5, 0.25], (0, "a")), TypeError, r"^window stop\b"),
    (lambda: nk.fit_decay([1.0, 0.5, 0.25], (0, -1)), ValueError, r"^window stop must be >= 0"),
    (lambda: nk.fit_decay([1.0, 0.5, 0.25], (0, 2), index=[0.0, 1.0, 2.0]), ValueError, r"^index must be positive"),
    (lambda: nk.local_exponents("abc", [1.0, 2.0]), TypeError, r"^values\b"),
    (lambda: nk.local_exponents([1.0, 0.5], "abc"), TypeError, r"^index\b"),
    (lambda: nk.local_exponents([1.0, -0.5], [1.0, 2.0]), ValueError, r"^values and index must be positive"),
    (lambda: nk.aliased_eigenvalues("abc", 2), TypeError, r"^mu\b"),
    (lambda: nk.aliased_eigenvalues([1.0, 0.5], 2.5), TypeError, r"^n must be an int \(the number of points\)"),
])
def test_decay_errors_name_the_argument(call, error, message):
    """Each refusal names the argument at fault (case and spelling as in the signature)."""
    with pytest.raises(error, match=message):
        call()
