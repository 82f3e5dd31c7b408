"""nk.nngp / nk.ntk / nk.kappa: contract, exactness at the diagonal and u = +-1, properties, errors."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import mpref
import ntklib as nk

ACTS = ["relu", "step", "relu2", "erf", "sin", "cos", "identity", "tanh"]


def act(name):
    return nk.relu(int(name[4:])) if name.startswith("relu") and len(name) > 4 else name


def points(n=7, d=4, seed=0, scale=1.0):
    return scale * np.random.default_rng(seed).standard_normal((n, d))


# ----------------------------------------------------------------------------------------------
# contract, run over every activation (add one to ACTS and it gets all of these)
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [nk.nngp, nk.ntk])
@pytest.mark.parametrize("name", ACTS)
def test_contract(fn, name):
    X, Y = points(7), points(5, seed=1)
    if name == "tanh":  # quadrature: use unit inputs (q = 1), where its accuracy is ~1e-9 (see nk.Activation)
        X, Y = X / np.linalg.norm(X, axis=1, keepdims=True), Y / np.linalg.norm(Y, axis=1, keepdims=True)
    K = fn(X, depth=3, activation=act(name))
    assert isinstance(K, np.ndarray) and K.shape == (7, 7) and K.dtype == np.float64
    assert np.array_equal(K, K.T)
    assert np.linalg.eigvalsh(K).min() >= -1e-12 * np.abs(K).max()
    KXY = fn(X, Y, depth=3, activation=act(name))
    assert KXY.shape == (7, 5)
    # the generic quadrature is symmetric only to its own error (~1e-9 at q = 1)
    tol = 1e-13 if name != "tanh" else 1e-8
    np.testing.assert_allclose(fn(Y, X, depth=3, activation=act(name)), KXY.T, rtol=tol, atol=tol)
    np.testing.assert_allclose(fn(X, X, depth=3, activation=act(name)), K, rtol=1e-13, atol=1e-13)
    # tiling does not change the numbers
    np.testing.assert_allclose(fn(X, Y, depth=3, activation=act(name), block_size=2), KXY, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("fn", [nk.nngp, nk.ntk])
def test_tensor_in_tensor_out_and_float32(fn):
    X = points(6)
    K = fn(X, depth=2)
    Kt = fn(torch.from_numpy(X), depth=2)
    assert isinstance(Kt, torch.Tensor) and Kt.dtype == torch.float64
    np.testing.assert_array_equal(Kt.numpy(), K)
    K32 = fn(X.astype(np.float32), depth=2, dtype=np.float32)
    assert K32.dtype == np.float32
    np.testing.assert_allclose(K32, K, rtol=2e-6, atol=2e-6 * np.abs(K).max())
    # float32 inputs are computed in float64 unless asked
    assert fn(X.astype(np.float32), depth=2).dtype == np.float64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_gpu_tensor_stays_on_gpu():  # pragma: no cover - only where a GPU exists
    X = torch.from_numpy(points(50)).cuda()
    K = nk.ntk(X, depth=3)
    assert K.device == X.device
    np.testing.assert_allclose(K.cpu().numpy(), nk.ntk(X.cpu().numpy(), depth=3), rtol=1e-12)


# ----------------------------------------------------------------------------------------------
# exactness: the diagonal and u = +-1
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("depth", range(0, 7))
@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_relu_ntk_diagonal_is_exact(depth, scale):
    """Theta^(L)(x, x) = (L + 1)|x|^2 and Sigma^(L)(x, x) = |x|^2 for ReLU, to a few ulps."""
    X = points(50, 16, scale=scale)
    sq = np.einsum("ij,ij->i", X, X)
    np.testing.assert_allclose(np.diag(nk.ntk(X, depth=depth)), (depth + 1) * sq, rtol=2e-15, atol=0)
    np.testing.assert_allclose(np.diag(nk.nngp(X, depth=depth)), sq, rtol=2e-15, atol=0)
    # the same through the Y path (X and an identical copy)
    np.testing.assert_allclose(np.diag(nk.ntk(X, X.copy(), depth=depth)), (depth + 1) * sq, rtol=2e-15, atol=0)


@pytest.mark.parametrize("depth", [1, 3, 5])
def test_step_diagonal_is_exact(depth):
    """The step is 0-homogeneous: Sigma^(h)(x, x) = 1 for h >= 1 (a naive code is off by 3e-3 at depth 3)."""
    X = points(40, 8)
    assert np.all(np.diag(nk.nngp(X, depth=depth, activation="step")) == 1.0)
    np.testing.assert_allclose(np.diag(nk.nngp(X, X.copy(), depth=depth, activation="step")), 1.0, rtol=0, atol=1e-15)


@pytest.mark.parametrize("block_size", [256, 3])
def test_thread_count_is_restored(block_size):
    """_run_tiles switches torch's intra-op threads off while it fills tiles (one tile or many)
    and restores the caller's setting, also when a tile fails."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        X = points(10)
        K = nk.ntk(X, depth=3, block_size=block_size)
        assert torch.get_num_threads() == 2
        np.testing.assert_allclose(K, nk.ntk(X, depth=3, block_size=1), rtol=1e-14, atol=1e-14)
        with pytest.raises(RuntimeError):
            nk.kernels._run_tiles(lambda t: (_ for _ in ()).throw(RuntimeError("tile")), [0], torch.device("cpu"))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_naive_rounding_figures_of_the_module_docstring():
    """ntklib.kernels' docstring: a cosine 1 - 2^-52 puts the angle off by ~2e-8, one naive step
    layer off by ~7e-9 (sqrt(2 delta)/pi), three by ~3e-3; ntklib itself is exact there."""
    delta = 2.0**-52
    angle = np.arccos(1 - delta)
    assert angle == pytest.approx(np.sqrt(2 * delta), rel=1e-6) and 1.5e-8 < angle < 2.5e-8
    u = [1 - delta]
    for _ in range(3):
        u.append((np.pi - np.arccos(u[-1])) / np.pi)  # kappa_0, the naive way
    assert 1 - u[1] == pytest.approx(np.sqrt(2 * delta) / np.pi, rel=1e-6)
    assert 6.5e-9 < 1 - u[1] < 7.5e-9
    assert 2.5e-3 < 1 - u[3] < 3.5e-3
    # the same vectors through ntklib: every diagonal entry exactly 1
    X = np.random.default_rng(0).standard_normal((300, 50))
    naive = np.einsum("ij,ij->i", X, X) / np.linalg.norm(X, axis=1) ** 2
    assert np.any(naive < 1)  # some naive cosines are below 1 ...
    assert np.all(np.diag(nk.nngp(X, depth=3, activation="step")) == 1.0)  # ... ntklib's are not


MIXES = [["relu"], ["step"] * 3, ["relu"] * 5, ["relu2", "relu"], ["erf", "step"], ["sin", "relu", "step"],
         ["cos", "relu3"], ["identity", "step", "relu"]]


def _acts(names):
    return [act(n) for n in names]


@pytest.mark.parametrize("names", MIXES, ids=["-".join(m) for m in MIXES])
@pytest.mark.parametrize("kernel", ["ntk", "nngp"])
def test_kappa_at_endpoints_matches_40_digits(names, kernel):
    for u in (-1.0, 1.0):
        ref = float(mpref.kappa(names, u, ntk=kernel == "ntk"))
        scale = float(mpref.kappa(names, 1.0, ntk=kernel == "ntk"))
        got = nk.kappa(u, depth=len(names), activation=_acts(names), kernel=kernel)
        assert abs(got - ref) <= 1e-14 * scale


@pytest.mark.parametrize("names", MIXES, ids=["-".join(m) for m in MIXES])
def test_kappa_everywhere_matches_40_digits(names):
    """Across [-1, 1], near-endpoint points included.

    Tolerance: a layer output rho = 1 - delta can only be stored to 1e-16 absolute; the next
    step layer (a square root in 1 - rho) multiplies a relative error by 1/2 and adds
    1e-16/delta. With delta >= 1e-6 here that is < 1e-12 relative, which we allow.
    """
    us = np.concatenate([np.linspace(-1, 1, 41), 1 - np.logspace(-6, -1, 6), -1 + np.logspace(-6, -1, 6)])
    got = nk.kappa(us, depth=len(names), activation=_acts(names))
    scale = float(mpref.kappa(names, 1.0))
    for u, g in zip(us, got):
        assert abs(g - float(mpref.kappa(names, u))) <= 1e-12 * scale


@pytest.mark.parametrize("names", MIXES, ids=["-".join(m) for m in MIXES])
def test_parallel_and_antiparallel_inputs_are_exact(names):
    """ntk(x, c x): the first-layer cosine is exactly +-1, so nothing is lost in the layers after.

    c is a power of two so that c * x is exactly parallel to x in float64. (For c = 3 the rounded
    vector 3 * x has a cosine 1 - 1e-33 with x; three step layers turn that into 2e-5, the
    kernel's own sensitivity. ntklib returns the kernel at the correctly rounded cosine, 1.)"""
    x = points(1, 6)
    for c in (2.0, -0.5, 0.125):
        ref = float(mpref.kernel(names, x[0].tolist(), (c * x[0]).tolist()))
        scale = float(mpref.kernel(names, x[0].tolist(), x[0].tolist()))
        got = nk.ntk(x, c * x, depth=len(names), activation=_acts(names))[0, 0]
        assert abs(got - ref) <= 1e-14 * max(scale, abs(ref))


@pytest.mark.parametrize("bias_var", [0.0, 0.1, 2.0])
def test_matrix_entries_match_40_digits_with_bias(bias_var):
    X = points(4, 3, seed=5)
    names = ["relu", "erf", "step"]
    K = nk.ntk(X, depth=3, activation=_acts(names), bias_var=bias_var)
    for i in range(4):
        for j in range(4):
            ref = float(mpref.kernel(names, X[i].tolist(), X[j].tolist(), bias_var=bias_var))
            assert K[i, j] == pytest.approx(ref, rel=1e-13)


def test_duplicated_points_give_identical_rows():
    X = points(6, 5)
    X = np.vstack([X, X[2:3]])
    for act_name in ("relu", "step"):
        K = nk.ntk(X, depth=3, activation=act_name)
        np.testing.assert_allclose(K[6], K[2], rtol=1e-15, atol=0)
        assert K[6, 2] == K[2, 2] == K[6, 6]


# ----------------------------------------------------------------------------------------------
# identities and special cases
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("depth", range(0, 5))
def test_linear_network(depth):
    """Identity activation: Sigma^(L) = x.y and Theta^(L) = (L + 1) x.y."""
    X, Y = points(5), points(3, seed=1)
    np.testing.assert_allclose(nk.ntk(X, Y, depth=depth, activation="identity"), (depth + 1) * X @ Y.T, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(nk.nngp(X, Y, depth=depth, activation="identity"), X @ Y.T, rtol=1e-13, atol=1e-13)


def test_depth_zero_is_linear_kernel_plus_bias():
    X, Y = points(5), points(3, seed=1)
    np.testing.assert_allclose(nk.ntk(X, Y, depth=0, bias_var=0.3), X @ Y.T + 0.3, rtol=1e-14, atol=1e-14)


def test_tiny_inputs_do_not_underflow_to_nan():
    """|x| = 7e-209: |x|^2 underflows (the kernel is 0 to float64), but nothing becomes NaN
    (a plain sum of squares made the norm 0 and the direction inf; hypothesis found it)."""
    X = np.array([[7.46158324e-209, 0.0, 0.0]])
    for depth in range(4):
        assert nk.ntk(X, 2 * X, depth=depth)[0, 0] == 0.0
    np.testing.assert_allclose(nk.ntk(X * 1e200, depth=2)[0, 0], 3 * (7.46158324e-9) ** 2, rtol=1e-14)


def test_zero_vectors():
    X = np.vstack([np.zeros(3), points(3, 3)])
    K = nk.ntk(X, depth=3)
    assert np.all(np.isfinite(K)) and np.all(K[0] == 0)
    Kb = nk.ntk(X, depth=3, bias_var=0.5)
    assert np.all(np.isfinite(Kb)) and np.linalg.eigvalsh(Kb).min() > 0


def test_ntk_equals_sum_formula():
    """Arora et al. eq. (9): Theta^(L) = sum_h Sigma^(h-1) prod_{h' >= h} Sigmadot^(h'), built from nngp."""
    X = points(6, 3)
    L = 3
    # Sigmadot^(h) for ReLU at depth h is the step NNGP of the ReLU covariance: build it from kappa_0
    sig = [nk.nngp(X, depth=h) for h in range(L + 1)]
    q = [np.sqrt(np.outer(np.diag(s), np.diag(s))) for s in sig]
    dots = [(np.pi - np.arccos(np.clip(sig[h] / q[h], -1, 1))) / np.pi for h in range(L)]
    theta = sum(sig[h] * np.prod(dots[h:], axis=0) for h in range(L + 1))
    np.testing.assert_allclose(nk.ntk(X, depth=L), theta, rtol=1e-12)


def test_weight_var_and_bias_var_per_layer():
    X = points(4)
    K = nk.nngp(X, depth=2, activation=["relu", "erf"], weight_var=[2.0, None])
    K2 = nk.nngp(X, depth=2, activation=["relu", "erf"])
    np.testing.assert_array_equal(K, K2)
    assert not np.allclose(nk.nngp(X, depth=2, weight_var=1.0), K2)
    # relu with weight_var w scales Sigma^(1) by w/2 (c_sigma = 2)
    np.testing.assert_allclose(nk.nngp(X, depth=1, weight_var=1.0), nk.nngp(X, depth=1) / 2, rtol=1e-14)


def test_finite_network_agrees_with_ntk():
    """A wide finite ReLU net in the Arora parameterization: gradient inner products vs nk.ntk.

    Width 2048, 8 points on the sphere, depth 2, three seeds averaged: the relative Frobenius error
    of the empirical NTK is O(width^-1/2) ~ 0.03 per seed; we allow 0.1.
    """
    X = torch.from_numpy(points(8, 5))
    X = X / X.norm(dim=1, keepdim=True)
    width, depth = 2048, 2
    errs = []
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        dims = [5] + [width] * depth + [1]
        Ws = [torch.randn(dims[i + 1], dims[i], generator=g, dtype=torch.float64, requires_grad=True) for i in range(depth + 1)]

        def f(x):
            h = x
            for W in Ws[:-1]:
                h = math.sqrt(2.0 / W.shape[0]) * torch.relu(h @ W.T)
            return (h @ Ws[-1].T).squeeze(-1)

        J = torch.stack([torch.cat([g_.flatten() for g_ in torch.autograd.grad(f(x[None])[0], Ws)]) for x in X])
        emp = (J @ J.T).detach().numpy()
        exact = nk.ntk(X.numpy(), depth=depth)
        errs.append(np.linalg.norm(emp - exact) / np.linalg.norm(exact))
    assert np.mean(errs) < 0.1


# ----------------------------------------------------------------------------------------------
# properties (hypothesis)
# ----------------------------------------------------------------------------------------------
finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False, width=64)
mats = st.integers(1, 6).flatmap(lambda n: arrays(np.float64, (n, 3), elements=finite))
acts = st.sampled_from(["relu", "step", "erf", "sin", nk.relu(2)])


@given(X=mats, depth=st.integers(0, 4), activation=acts, bias=st.sampled_from([0.0, 0.3]))
def test_symmetric_and_psd(X, depth, activation, bias):
    K = nk.ntk(X, depth=depth, activation=activation, bias_var=bias)
    assert np.array_equal(K, K.T)
    scale = max(np.abs(K).max(), 1e-300)
    assert np.linalg.eigvalsh(K).min() >= -1e-10 * scale


@given(X=mats, depth=st.integers(0, 4), activation=acts, seed=st.integers(0, 2**31))
def test_rotation_invariance(X, depth, activation, seed):
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((3, 3)))
    K, KR = nk.ntk(X, depth=depth, activation=activation), nk.ntk(X @ Q, depth=depth, activation=activation)
    np.testing.assert_allclose(KR, K, rtol=1e-8, atol=1e-8 * max(np.abs(K).max(), 1.0))


@given(X=mats, a=st.floats(0.01, 100), b=st.floats(0.01, 100), depth=st.integers(0, 4))
def test_bias_free_relu_is_positively_homogeneous(X, a, b, depth):
    """K(aX, bY) = a b K(X, Y) for the bias-free ReLU NTK and NNGP."""
    for fn in (nk.ntk, nk.nngp):
        K = fn(X, X, depth=depth)
        np.testing.assert_allclose(fn(a * X, b * X, depth=depth), a * b * K, rtol=1e-11, atol=1e-11 * a * b * max(np.abs(K).max(), 1e-300))


# ----------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------
X0 = np.ones((3, 2))


@pytest.mark.parametrize(
    "call, err, match",
    [
        (lambda: nk.ntk(np.array([[np.nan, 1.0]]), depth=1), ValueError, "X contains NaN or inf"),
        (lambda: nk.ntk(X0, np.array([[np.inf, 1.0]]), depth=1), ValueError, "Y contains NaN or inf"),
        (lambda: nk.ntk(np.ones(3), depth=1), ValueError, "X must be a 2-D array.*reshape"),
        (lambda: nk.ntk(np.ones((2, 2, 2)), depth=1), ValueError, "X must be a 2-D array"),
        (lambda: nk.ntk(X0, np.ones((2, 3)), depth=1), ValueError, "same number of features"),
        (lambda: nk.ntk(X0, depth=-1), ValueError, "depth must be >= 0"),
        (lambda: nk.ntk(X0, depth=2.0), TypeError, "depth must be an int"),
        (lambda: nk.ntk(X0, depth=True), TypeError, "depth must be an int"),
        (lambda: nk.ntk(X0, depth=2, activation="relu6"), ValueError, "unknown activation 'relu6'"),
        (lambda: nk.ntk(X0, depth=0, activation="relu6"), ValueError, "unknown activation"),
        (lambda: nk.ntk(X0, depth=3, activation=["relu", "erf"]), ValueError, "activation has 2 entries but depth=3"),
        (lambda: nk.ntk(X0, depth=2, weight_var=-1.0), ValueError, "weight_var must be > 0"),
        (lambda: nk.ntk(X0, depth=2, weight_var=[1.0]), ValueError, "weight_var has 1 entries"),
        (lambda: nk.ntk(X0, depth=2, bias_var=-0.1), ValueError, "bias_var must be >= 0"),
        (lambda: nk.ntk(X0, depth=2, bias_var=float("nan")), ValueError, "bias_var must be finite"),
        (lambda: nk.ntk(X0, depth=2, bias_var="0.1"), TypeError, "bias_var must be a real number"),
        (lambda: nk.ntk(X0.astype(complex), depth=1), TypeError, "X must be a real numeric array"),
        (lambda: nk.ntk([["a", "b"]], depth=1), TypeError, "X must be a real numeric array"),
        (lambda: nk.ntk(X0, depth=1, dtype=np.int32), TypeError, "dtype must be float64 or float32"),
        (lambda: nk.ntk(X0, depth=1, block_size=0), ValueError, "block_size"),
        (lambda: nk.ntk(X0, depth=1, block_size=2.0), TypeError, "block_size must be a positive int"),
        (lambda: nk.kappa(1.5, depth=1), ValueError, "u must lie in"),
        (lambda: nk.ntk(np.array([[1e200, 1e200]]), depth=2), ValueError, "X is too large for float64"),
        (lambda: nk.kappa(0.5, depth=1, kernel="cntk"), ValueError, "kernel must be"),
    ],
)
def test_bad_input_errors(call, err, match):
    with pytest.raises(err, match=match):
        call()


def test_kappa_keeps_shape_and_chunks_quadrature():
    """kappa works on any shape, and a long quadrature evaluation (chunked) equals short ones."""
    u = np.linspace(-1, 1, 3001)
    full = nk.kappa(u, depth=2, activation="tanh")
    for i in (0, 1500, 3000):
        assert full[i] == pytest.approx(nk.kappa(u[i : i + 1], depth=2, activation="tanh")[0], rel=1e-14)  # BLAS order
    assert nk.kappa(u.reshape(3001, 1), depth=2).shape == (3001, 1)
    assert isinstance(nk.kappa(torch.tensor([0.2, 0.4], dtype=torch.float64), depth=1), torch.Tensor)
