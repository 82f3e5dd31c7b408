"""nk.nngp / nk.ntk / nk.kappa: contract, exactness at the diagonal and u = +-1, properties, errors."""
import math
import threading
import time

import mpmath as mp
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


def test_a_thread_started_during_a_call_sees_the_thread_setting_unchanged():
    """No global state: while nk.ntk fills many tiles on its own pool, a thread started meanwhile
    (and the caller's thread) still see torch.get_num_threads() as it was."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        X = points(1500, 8)
        done, seen = threading.Event(), []

        def call():
            try:
                nk.ntk(X, depth=6, block_size=64)
            finally:
                done.set()

        worker = threading.Thread(target=call)
        worker.start()
        while not done.is_set():
            t = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
            t.start()
            t.join()
            seen.append(torch.get_num_threads())
            time.sleep(0.001)
        worker.join()
        assert len(seen) >= 2 and set(seen) == {2}, seen
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_two_concurrent_calls_are_correct_and_leave_the_setting_unchanged():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        X, Y = points(300, 5, seed=1), points(200, 5, seed=2)
        ref = {"ntk": nk.ntk(X, depth=3, block_size=32), "nngp": nk.nngp(X, Y, depth=2, block_size=32)}
        got, errors = {}, []

        def run(name, fn):
            try:
                for _ in range(3):
                    got[name] = fn()
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=("ntk", lambda: nk.ntk(X, depth=3, block_size=32))),
                   threading.Thread(target=run, args=("nngp", lambda: nk.nngp(X, Y, depth=2, block_size=32)))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        for name in ref:
            np.testing.assert_array_equal(got[name], ref[name])
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_pool_threads_run_one_intra_op_thread_and_the_caller_keeps_its_own():
    """ntklib._tiles.one_thread_here limits only the thread that calls it."""
    from ntklib import _tiles

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        inside = []
        t = threading.Thread(target=lambda: inside.append((_tiles.one_thread_here(), torch.get_num_threads())))
        t.start()
        t.join()
        if _tiles._thread_limiters():
            assert inside == [(True, 1)]
        assert torch.get_num_threads() == 2
        later = []
        t = threading.Thread(target=lambda: later.append(torch.get_num_threads()))
        t.start()
        t.join()
        assert later == [2]
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("threads", [None, 2])
def test_a_failing_tile_propagates(threads):
    from ntklib._tiles import tiled_gram

    def tile(rows, cols, diagonal):
        raise RuntimeError("tile")

    with pytest.raises(RuntimeError, match="tile"):
        tiled_gram(tile, 5, block=2, out=torch.empty(5, 5), threads=threads)


# ----------------------------------------------------------------------------------------------
# the tiled Gram loop: every branch (one tile, several, diagonal and off-diagonal mirrors, (X, Y))
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n, m", [(1, None), (9, None), (10, None), (9, 4), (4, 9), (7, 7)])
@pytest.mark.parametrize("block", [1, 2, 3, 4, 9, 10])
@pytest.mark.parametrize("threads", [None, 2])
def test_tiled_gram_fills_every_entry(n, m, block, threads):
    """A symmetric call reads only the upper triangle of diagonal tiles: the callback writes garbage
    below it, and the result must still be the symmetric reference, off-diagonal mirrors included;
    leading dimensions are carried along."""
    from ntklib._tiles import tiled_gram

    rng = np.random.default_rng(n * 100 + block)
    A = rng.standard_normal((2, n, m or n))
    if m is None:
        A = A + A.transpose(0, 2, 1)
    At = torch.from_numpy(A)
    calls = []

    def tile(rows, cols, diagonal):
        calls.append((rows.start, cols.start))
        t = At[:, rows, cols].clone()
        if diagonal:
            assert rows == cols
            t = t + torch.tril(torch.full_like(t, np.nan), -1)
        return t

    out = tiled_gram(tile, n, m, block=block, out=torch.empty(A.shape, dtype=torch.float64), threads=threads)
    np.testing.assert_array_equal(out.numpy(), A)
    k = -(-n // block)
    expected = k * (k + 1) // 2 if m is None else k * -(-m // block)
    assert len(calls) == len(set(calls)) == expected


@pytest.mark.parametrize("fn", [nk.nngp, nk.ntk])
def test_several_tiles_equal_one_tile_and_the_xy_path(fn):
    """9 points in tiles of 2 (diagonal, off-diagonal and ragged tiles, mirrored) = one tile = (X, X)."""
    X = points(9, 4, seed=3)
    X /= np.linalg.norm(X, axis=1, keepdims=True)  # tanh's quadrature: ~1e-9 at q = 1 (see test_contract)
    for activation in ("relu", "erf", "tanh"):
        tol = 1e-13 if activation != "tanh" else 1e-8
        one = fn(X, depth=3, activation=activation, block_size=256)
        tiled = fn(X, depth=3, activation=activation, block_size=2)
        assert np.array_equal(tiled, tiled.T)
        # a closed form is the same arithmetic in every tile; the quadrature picks its rule per tile
        # (Mehler's series where its bound allows, else the 1-D or 2-D rule), each within its rtol of
        # 1e-10 relative to the kernel's scale (the diagonal differs by 7e-13 between tilings)
        if activation == "tanh":
            rtol = nk.Quadrature(np.tanh).rtol
            np.testing.assert_allclose(tiled, one, rtol=rtol, atol=rtol * np.abs(one).max())
        else:
            np.testing.assert_allclose(tiled, one, rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(fn(X, X, depth=3, activation=activation, block_size=2), one, rtol=tol, atol=tol)


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


def test_weight_var_per_layer():
    X = points(4)
    K = nk.nngp(X, depth=2, activation=["relu", "erf"], weight_var=[2.0, None])
    K2 = nk.nngp(X, depth=2, activation=["relu", "erf"])
    np.testing.assert_array_equal(K, K2)
    assert not np.allclose(nk.nngp(X, depth=2, weight_var=1.0), K2)
    # relu with weight_var w scales Sigma^(1) by w/2 (c_sigma = 2)
    np.testing.assert_allclose(nk.nngp(X, depth=1, weight_var=1.0), nk.nngp(X, depth=1) / 2, rtol=1e-14)


def plain_recursion(names, x, y, biases, weights, ntk=True):
    """Theta^(L) (or Sigma^(L)) by a plain 40-digit loop over layers with per-layer biases: bias h
    is added to Sigma^(h) (the covariance that weight layer h + 1 produces), using mpref's duals."""
    sxy = mp.fsum(mp.mpf(a) * mp.mpf(c) for a, c in zip(x, y)) + biases[0]
    sxx = mp.fsum(mp.mpf(a) ** 2 for a in x) + biases[0]
    syy = mp.fsum(mp.mpf(c) ** 2 for c in y) + biases[0]
    theta = sxy
    for h, name in enumerate(names):
        c = mpref.duals(name, sxx, syy, sxy)[2] if weights[h] is None else mp.mpf(weights[h])
        e, ed, _ = mpref.duals(name, sxx, syy, sxy)
        sxx_next = c * mpref.duals(name, sxx, sxx, sxx)[0] + biases[h + 1]
        syy_next = c * mpref.duals(name, syy, syy, syy)[0] + biases[h + 1]
        sxy = c * e + biases[h + 1]
        theta = theta * c * ed + sxy
        sxx, syy = sxx_next, syy_next
    return theta if ntk else sxy


@pytest.mark.parametrize("names, biases, weights", [
    (["relu", "relu", "relu"], [0.0, 0.5, 0.0, 2.0], [None] * 3),
    (["relu", "erf", "step"], [0.3, 0.0, 1.5, 0.1], [None, 0.7, None]),
    (["sin", "relu2"], [0.0, 0.0, 0.4], [None, 1.0]),
])
@pytest.mark.parametrize("kernel", ["ntk", "nngp"])
def test_bias_var_per_layer_against_a_plain_recursion(names, biases, weights, kernel):
    """Every bias sits in its own layer: each differs from the others, so a bias in the wrong layer,
    or the scalar broadcast, gives other numbers (checked below, and against the 40-digit loop)."""
    X, Y = points(4, 3, seed=7), points(3, 3, seed=8)
    fn = nk.ntk if kernel == "ntk" else nk.nngp
    K = fn(X, Y, depth=len(names), activation=_acts(names), weight_var=weights, bias_var=biases)
    with mp.workdps(40):
        ref = np.array([[float(plain_recursion(names, x.tolist(), y.tolist(), [mp.mpf(b) for b in biases],
                                               weights, ntk=kernel == "ntk")) for y in Y] for x in X])
    np.testing.assert_allclose(K, ref, rtol=1e-13)
    shifted = fn(X, Y, depth=len(names), activation=_acts(names), weight_var=weights, bias_var=biases[::-1])
    assert not np.allclose(shifted, K, rtol=1e-6)
    # a scalar is every layer the same
    np.testing.assert_array_equal(fn(X, Y, depth=len(names), activation=_acts(names), bias_var=0.2),
                                  fn(X, Y, depth=len(names), activation=_acts(names), bias_var=[0.2] * (len(names) + 1)))


@pytest.mark.slow
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


@given(X=mats, Y=mats, a=st.floats(0.01, 100), b=st.floats(0.01, 100), depth=st.integers(0, 4))
def test_bias_free_relu_is_positively_homogeneous(X, Y, a, b, depth):
    """K(aX, bY) = a b K(X, Y) for the bias-free ReLU NTK and NNGP, with Y a different set of points
    (a kernel that is homogeneous only in a common scale of x and y, K(aX, aY) = a^2 K, fails)."""
    for fn in (nk.ntk, nk.nngp):
        K = fn(X, Y, depth=depth)
        scale = a * b * max(np.sqrt(np.abs(fn(X, depth=depth)).max() * np.abs(fn(Y, depth=depth)).max()), 1e-300)
        np.testing.assert_allclose(fn(a * X, b * Y, depth=depth), a * b * K, rtol=1e-11, atol=1e-11 * scale)


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
        (lambda: nk.ntk(X0, depth=2, activation="swish"), ValueError,
         "unknown activation 'swish'; known names: relu, step, relu2, relu3, erf, .*tanh, .*relu<k>"),
        (lambda: nk.ntk(X0, depth=0, activation="swish"), ValueError, "unknown activation 'swish'; known names: relu"),
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
        (lambda: nk.ntk(np.array([[1e200, 1e200]]), depth=2), ValueError, "X is too large for torch.float64"),
        (lambda: nk.ntk(X0, depth=2, bias_var=[0.1, 0.2]), ValueError, "bias_var has 2 entries but depth=2.*3"),
        (lambda: nk.ntk(X0, depth=2, bias_var=[0.1, -0.2, 0.0]), ValueError, "bias_var must be >= 0"),
        (lambda: nk.NTK(depth=2, activation="swish"), ValueError, "unknown activation 'swish'; known names: relu"),
        (lambda: nk.NTK(depth=1).kappa_mp(1.5), ValueError, "u must lie in"),
        (lambda: nk.kappa(0.5, depth=1, kernel="cntk"), ValueError, "kernel must be one of 'ntk', 'nngp'; got 'cntk'"),
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


# ----------------------------------------------------------------------------------------------
# overflow: values are computed up to where the result itself overflows
# ----------------------------------------------------------------------------------------------
def test_large_inputs_are_exact_until_the_kernel_itself_overflows():
    """|x| ~ 1e100 used to be refused (sqrt(q11 * q22) overflowed at |x| ~ 1e77); the kernels are
    homogeneous, so K(1e100 X) = 1e200 K(X) to rounding."""
    X, Y = points(5, 3), points(4, 3, seed=1)
    for s in (1e78, 1e100, 1e150):
        for fn in (nk.ntk, nk.nngp):
            np.testing.assert_allclose(fn(s * X, depth=3) / s**2, fn(X, depth=3), rtol=1e-14)
            np.testing.assert_allclose(fn(s * X, Y / s, depth=3), fn(X, Y, depth=3), rtol=1e-14)
        np.testing.assert_allclose(nk.NTK(depth=3).diag(s * X) / s**2, nk.NTK(depth=3).diag(X), rtol=1e-14)
    # with a bias, non-homogeneous activations and mixed sizes too (the ReLU diagonal stays exact)
    x = np.array([[1e150, 0.0], [0.0, 3e150]])
    np.testing.assert_allclose(np.diag(nk.nngp(x, depth=3, bias_var=1.0)), [1e300, 9e300], rtol=1e-15)


def test_overflow_boundary():
    """|x|^2 <= 1.8e308: the NNGP (= |x|^2 on the diagonal) is finite; the NTK, 3|x|^2, overflows and
    says so; |x| = 1.5e154 makes |x|^2 itself overflow."""
    x = np.array([[1.3e154, 0.0]])
    np.testing.assert_allclose(nk.nngp(x, depth=2), [[1.3e154**2]], rtol=1e-15)
    with pytest.raises(ValueError, match="kernel values overflow"):
        nk.ntk(x, depth=2)
    with pytest.raises(ValueError, match="K\\(x, x\\) overflow"):
        nk.NTK(depth=2).diag(x)
    with pytest.raises(ValueError, match="kernel values overflow"):
        nk.ntk(x, x.copy(), depth=2)
    # K(x, x) overflows, K(x, y) for a small y does not: it is returned, and right
    y = np.array([[1e-10, 1e-10]])
    np.testing.assert_allclose(nk.ntk(x, y, depth=2), nk.ntk(x / 1e10, y * 1e10, depth=2), rtol=1e-14)
    np.testing.assert_allclose(nk.ntk(x / 2, depth=2), [[3 * (0.65e154) ** 2]], rtol=1e-15)
    with pytest.raises(ValueError, match="max \\|x\\| = 1.5e\\+154 makes \\|x\\|\\^2 overflow"):
        nk.nngp(np.array([[1.5e154, 0.0]]), depth=2)
    with pytest.raises(ValueError, match="Y is too large"):
        nk.nngp(x, np.array([[0.0, 1.5e154]]), depth=2)


# ----------------------------------------------------------------------------------------------
# the one layer step, in torch and in mpmath
# ----------------------------------------------------------------------------------------------
STEP_ACTS = ["relu", "step", "relu2", "erf", "sin", "cos", "identity"]


@pytest.mark.parametrize("name", STEP_ACTS)
def test_layer_step_torch_and_mpmath_agree_with_the_reference(name):
    from ntklib.kernels import Layer, layer_step

    activation = nk.get_activation(act(name))
    layer = Layer(activation, activation.c_sigma, 0.3, True)
    q11, q22 = 1.7, 0.6
    # (at r = +-1 the float q12 = +-sqrt(q11 q22) is off by an ulp, beyond +-1 in mpmath, where the
    # step clips the correlation and mpref does not: the endpoints are checked with an exact q12)
    for r in (-0.999, -0.4, 0.0, 0.5, 0.999):
        q12 = r * math.sqrt(q11 * q22)
        t = [torch.tensor(v, dtype=torch.float64) for v in (q11, q12, q22, 0.9)]
        s_t, th_t = layer_step(layer, t[0], t[1], t[2], t[3])
        with mp.workdps(40):
            s_m, th_m = layer_step(layer, mp.mpf(q11), mp.mpf(q12), mp.mpf(q22), mp.mpf(0.9))
            e, ed, c = mpref.duals(name, q11, q22, q12)
            ref_s, ref_th = c * e + mp.mpf(0.3), mp.mpf(0.9) * c * ed + c * e + mp.mpf(0.3)
            assert abs(s_m - ref_s) < mp.mpf(10) ** -35 and abs(th_m - ref_th) < mp.mpf(10) ** -35
        assert float(s_t) == pytest.approx(float(ref_s), rel=1e-14, abs=1e-15)
        assert float(th_t) == pytest.approx(float(ref_th), rel=1e-14, abs=1e-15)
    s, th = layer_step(layer, t[0], t[1], t[2])
    assert th is None and float(s) == pytest.approx(float(ref_s), rel=1e-14)
    with mp.workdps(40):
        for sign in (-1, 1):
            q12 = sign * mp.sqrt(mp.mpf(q11) * mp.mpf(q22))
            s_m, th_m = layer_step(layer, mp.mpf(q11), q12, mp.mpf(q22), mp.mpf(0.9))
            e, ed, c = mpref.duals(name, q11, q22, q12)
            assert abs(s_m - (c * e + mp.mpf(0.3))) < mp.mpf(10) ** -35
            assert abs(th_m - (mp.mpf(0.9) * c * ed + c * e + mp.mpf(0.3))) < mp.mpf(10) ** -35


# ----------------------------------------------------------------------------------------------
# the kernel objects
# ----------------------------------------------------------------------------------------------
OBJECTS = [nk.NTK(depth=3), nk.NNGP(depth=2, activation="erf"),
           nk.NTK(depth=2, activation=["relu", "step"], weight_var=[1.5, None], bias_var=[0.1, 0.0, 0.3]),
           nk.NNGP(depth=0, bias_var=0.2), nk.NTK(depth=1, activation=nk.relu(2))]


@pytest.mark.parametrize("k", OBJECTS, ids=repr)
def test_kernel_objects_follow_the_contract(k):
    X, Y = points(7, 4), points(5, 4, seed=1)
    fn = nk.ntk if isinstance(k, nk.NTK) else nk.nngp
    params = dict(depth=k.depth, activation=k.activation, weight_var=k.weight_var, bias_var=k.bias_var)
    np.testing.assert_array_equal(k(X), fn(X, **params))
    np.testing.assert_array_equal(k(X, Y), fn(X, Y, **params))
    d = k.diag(X)
    assert isinstance(d, np.ndarray) and d.shape == (7,)
    np.testing.assert_allclose(d, np.diag(k(X)), rtol=1e-14, atol=0)
    dt = k.diag(torch.from_numpy(X))
    assert isinstance(dt, torch.Tensor) and dt.dtype == torch.float64
    np.testing.assert_array_equal(dt.numpy(), d)
    assert k.diag(X.astype(np.float32), dtype=np.float32).dtype == np.float32
    assert eval(repr(k), vars(nk)) == k and hash(eval(repr(k), vars(nk))) == hash(k)
    u = np.linspace(-1, 1, 9)
    np.testing.assert_array_equal(k.kappa(u), nk.kappa(u, kernel="ntk" if fn is nk.ntk else "nngp", **params))


def test_kernel_objects_equality_is_on_the_parameters():
    assert nk.NTK(depth=3) == nk.NTK(depth=3, activation="relu", bias_var=[0.0] * 4)
    assert nk.NTK(depth=3) != nk.NNGP(depth=3)
    assert nk.NTK(depth=3) != nk.NTK(depth=2)
    assert nk.NTK(depth=3) != nk.NTK(depth=3, bias_var=0.1)
    assert len({nk.NTK(depth=3), nk.NTK(depth=3), nk.NNGP(depth=3)}) == 2


def test_diag_is_linear_work():
    """diag never builds the Gram matrix: 20000 points take no (n, n) buffer (3.2 GB)."""
    X = points(20000, 3)
    d = nk.NTK(depth=3).diag(X)
    np.testing.assert_allclose(d, 4 * np.einsum("ij,ij->i", X, X), rtol=1e-14)


@pytest.mark.parametrize("names", MIXES, ids=["-".join(m) for m in MIXES])
@pytest.mark.parametrize("cls", [nk.NTK, nk.NNGP])
def test_kappa_mp_matches_the_40_digit_reference(names, cls):
    k = cls(depth=len(names), activation=_acts(names))
    with mp.workdps(40):
        for u in ("-1", "-0.3", "0", "0.7", "1"):
            got = k.kappa_mp(mp.mpf(u))
            ref = mpref.kappa(names, mp.mpf(u), ntk=cls is nk.NTK)
            assert abs(got - ref) <= mp.mpf(10) ** -35 * max(1, abs(ref))
    assert float(k.kappa_mp(0.25)) == pytest.approx(float(k.kappa(0.25)), rel=1e-13)


def _mp_kappa_per_layer_bias(names, u, biases, *, ntk):
    """The unit-sphere kernel with bias variance biases[h] added to Sigma^(h), from tests/mpref.py's
    duals (an independent recursion: its own J_n, its own c_sigma), at the caller's precision."""
    b = [mp.mpf(v) for v in biases]
    q, s = 1 + b[0], mp.mpf(u) + b[0]  # Sigma(x, x) = Sigma(y, y) on the sphere, and Sigma(x, y)
    theta = s
    for h, name in enumerate(names, start=1):
        e, ed, c = mpref.duals(name, q, q, s)
        s, q = c * e + b[h], c * mpref.duals(name, q, q, q)[0] + b[h]
        theta = theta * c * ed + s
    return theta if ntk else s


@pytest.mark.parametrize("names", [["relu", "step", "erf"], ["sin", "relu2"]], ids="-".join)
@pytest.mark.parametrize("cls", [nk.NTK, nk.NNGP])
def test_kappa_mp_with_per_layer_bias_matches_the_40_digit_reference(names, cls):
    """kappa_mp runs layer_step in mpmath with each layer's own bias variance (bias_var[h] on
    Sigma^(h), the output layer's last), the exact c_sigma, and agrees with float64 kappa."""
    biases = [0.25, 0.0, 0.5, 0.125][: len(names) + 1]
    k = cls(depth=len(names), activation=_acts(names), bias_var=biases)
    with mp.workdps(40):
        for u in ("-1", "-0.3", "0", "0.7", "1"):
            got = k.kappa_mp(mp.mpf(u))
            ref = _mp_kappa_per_layer_bias(names, mp.mpf(u), biases, ntk=cls is nk.NTK)
            assert abs(got - ref) <= mp.mpf(10) ** -35 * max(1, abs(ref)), (u, got, ref)
    assert float(k.kappa_mp(0.25)) == pytest.approx(float(k.kappa(0.25)), rel=1e-13)


def test_high_precision_layer_duals_refuse_invalid_covariances():
    """The mpmath layer step checks its own inputs once (it skips the duals' checks for speed)."""
    import mpmath as mp

    layer = nk.kernels.Layer(nk.relu(), 2.0, 0.0)
    with pytest.raises(ValueError, match="q11 and q22 must be >= 0"):
        nk.kernels.layer_duals(layer, mp.mpf(-1), mp.mpf(0), mp.mpf(1))
    with pytest.raises(ValueError, match="q11 and q22 must be >= 0"):
        nk.kernels.layer_duals(layer, mp.mpf(1), mp.mpf(0), mp.mpf(-2))
    with pytest.raises(ValueError, match="rho must lie in"):
        nk.kernels.layer_duals(layer, mp.mpf(1), mp.mpf(0), mp.mpf(1), rho=mp.mpf("1.5"))
    # a covariance that rounds just past |rho| = 1 is clipped, not turned complex
    with mp.workdps(30):
        s, sd = nk.kernels.layer_duals(layer, mp.mpf(1), mp.mpf(1) + mp.mpf(10) ** -29, mp.mpf(1))
    assert isinstance(s, mp.mpf) and s == 1 and sd == 1
    with pytest.raises(ValueError, match="rho must lie"):
        nk.relu().duals(mp.mpf(1), mp.mpf(1), mp.mpf(2))  # the public duals still check


def test_kernel_objects_are_read_only_and_keyed_by_the_activation_not_its_name():
    """Attributes cannot drift from the layers resolved at construction; two closed forms with one
    name but different parameters are different kernels with different exact c_sigma."""
    import mpmath as mp

    from ntklib.activations import ClosedForm

    class Lin(ClosedForm):
        def __init__(self, a):
            self.a = a
            super().__init__("lin")

        def _sigma(self, z):
            return self.a * z

        def _dsigma(self, z):
            return self.a * torch.ones_like(z)

        def _formula(self, M, q11, q22, rho, deriv, root):
            s = M.sqrt(q11 * q22) if root is None else root
            return self.a**2 * s * rho, (M.full(self.a**2, q11, q22, rho) if deriv else None)

        def _key(self):
            return (self.a,)

    k1, k3 = nk.NTK(depth=2, activation=Lin(1.0), bias_var=0.5), nk.NTK(depth=2, activation=Lin(3.0), bias_var=0.5)
    assert k1 != k3
    with mp.workdps(30):
        v1, v3 = k1.kappa_mp(mp.mpf("0.3")), k3.kappa_mp(mp.mpf("0.3"))
    # c_sigma = 1/a^2 cancels a^2: both kernels are the identity network's, in float64 and mpmath
    assert float(v1) == pytest.approx(float(k1.kappa(0.3)), rel=1e-14)
    assert float(v3) == pytest.approx(float(k3.kappa(0.3)), rel=1e-14)
    assert float(v3) == pytest.approx(float(v1), rel=1e-14)
    with pytest.raises(AttributeError):
        k1.depth = 3
    with pytest.raises(AttributeError):
        nk.SphereKernel(2).depth = 3
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        nk.NTK(depth=2).kappa_mp(float("nan"))


# ----------------------------------------------------------------------------------------------
# issue 10: hostile inputs (tiny and huge norms, flags, dtypes, strides, cosines past 1)
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [2, 3])
@pytest.mark.parametrize("fn, ntk", [(nk.ntk, True), (nk.nngp, False)])
def test_tiny_norms_do_not_force_rho_to_one(depth, fn, ntk):
    """|x| ~ 1e-100: sqrt(qx * qy) of the second layer underflowed to 0 and forced rho = 1 (33 % off at
    depth 2, 75 % at depth 3). Against the 40-digit recursion at the tiny scale itself, the exact
    homogeneity K(2^-k X) = 2^-2k K(X) of the bias-free ReLU kernels, and with the two inputs of
    opposite scales (K(aX, Y/a) = K(X, Y))."""
    X, Y = points(4, 3), points(3, 3, seed=1)
    s = 1e-100
    K = fn(s * X, depth=depth)
    for i in range(4):
        for j in range(4):
            ref = float(mpref.kernel(["relu"] * depth, (s * X[i]).tolist(), (s * X[j]).tolist(), ntk=ntk))
            assert K[i, j] == pytest.approx(ref, rel=1e-13)
    np.testing.assert_allclose(fn(X * 2.0**-340, depth=depth), fn(X, depth=depth) * 2.0**-680, rtol=1e-14)
    np.testing.assert_allclose(fn(s * X, Y / s, depth=depth), fn(X, Y, depth=depth), rtol=1e-14)
    np.testing.assert_allclose(nk.NTK(depth=depth).diag(s * X), nk.NTK(depth=depth).diag(X) * s**2, rtol=1e-14)


def test_tiny_float32_norms_do_not_force_rho_to_one():
    """float32 |x| ~ 1e-12: qx qy ~ 1e-48 is below float32's smallest normal number (1.2e-38)."""
    X = points(5, 3)
    K32 = nk.ntk((X * 2.0**-40).astype(np.float32), depth=3, dtype=np.float32).astype(np.float64) * 2.0**80
    np.testing.assert_allclose(K32, nk.ntk(X.astype(np.float32).astype(np.float64), depth=3), rtol=2e-6)


def test_layer_duals_root_does_not_underflow():
    """The public step computes sqrt(q11 q22) itself when no root is given: 1e-200 * 1e-200 underflows."""
    layer = nk.kernels.Layer(nk.relu(), 2.0, 0.0)
    q = torch.tensor(1e-200, dtype=torch.float64)
    s, sd = nk.kernels.layer_duals(layer, q, q / 2, q)  # rho = 1/2
    e, ed, _ = mpref.duals("relu", 1e-200, 1e-200, 0.5e-200)
    assert float(s) == pytest.approx(2 * float(e), rel=1e-14) and float(sd) == pytest.approx(2 * float(ed), rel=1e-14)


def test_zero_vectors_beside_tiny_ones_stay_zero_and_finite():
    X = np.vstack([np.zeros(3), points(3, 3, scale=1e-100)])
    for fn in (nk.ntk, nk.nngp):
        K = fn(X, depth=3)
        assert np.all(K[0] == 0) and np.all(K[:, 0] == 0)
        np.testing.assert_allclose(K[1:, 1:], fn(X[1:] * 1e100, depth=3) * 1e-200, rtol=1e-14)


def test_overflow_guard_lets_float32_inputs_through_until_the_kernel_overflows():
    """float32 |x| ~ 1e18 (|x|^2 ~ 1e36 < 3.4e38): computed, and homogeneous; 1e20 makes |x|^2 overflow:
    the message names the input, the activation and float32, and points to float64."""
    X = points(4, 3)
    s = 2.0**60
    K = nk.ntk((X * s).astype(np.float32), depth=2, dtype=np.float32)
    np.testing.assert_allclose(K / s**2, nk.ntk(X.astype(np.float32), depth=2, dtype=np.float32), rtol=1e-6)
    with pytest.raises(ValueError, match=r"X is too large for torch.float32 kernels with activation 'relu'.*"
                                         r"\|x\|\^2 overflow.*pass dtype=torch.float64.*homogeneous"):
        nk.ntk((X * 1e20).astype(np.float32), depth=2, dtype=np.float32)
    with pytest.raises(ValueError, match=r"X has entries too large for torch.float32 .*max \|entry\| = 1e\+39"):
        nk.ntk(np.array([[1e39, 0.0]]), depth=2, dtype=np.float32)


def test_overflow_message_names_the_activation_and_blames_relu_only_for_relu():
    """The guard's message blamed ReLU (and its homogeneity) for sin inputs too."""
    x = np.array([[1.5e154, 0.0]])
    with pytest.raises(ValueError, match=r"kernels with activation 'sin': max \|x\| = 1.5e\+154") as info:
        nk.nngp(x, depth=2, activation="sin")
    assert "homogeneous" not in str(info.value)
    with pytest.raises(ValueError, match=r"with activation 'relu', 'erf'") as info:
        nk.ntk(x, depth=2, activation=["relu", "erf"])
    assert "homogeneous" not in str(info.value)
    with pytest.raises(ValueError, match="homogeneous"):
        nk.ntk(x, depth=2)
    with pytest.raises(ValueError) as info:
        nk.ntk(x, depth=2, bias_var=0.1)  # a bias breaks the homogeneity: no hint
    assert "homogeneous" not in str(info.value)


def test_erf_kernel_finite_for_huge_inputs():
    """|x| ~ 1e77: (1 + 2 q11)(1 + 2 q22) overflowed inside the erf dual (NaN); the guard must let the
    input through (x.x ~ 1e154 is representable) and the value is the 40-digit one."""
    X = points(3, 3, scale=1e77)
    K = nk.nngp(X, depth=1, activation="erf")
    with mp.workdps(60):  # Williams (1997): c (2/pi) asin(2 x.y / sqrt((1 + 2|x|^2)(1 + 2|y|^2)))
        c = mp.pi / (2 * mp.asin(mp.mpf(2) / 3))
        x = [[mp.mpf(v) for v in row] for row in X]
        sq = [1 + 2 * mp.fsum(v * v for v in row) for row in x]
        for i in range(3):
            for j in range(3):
                dot = mp.fsum(a * b for a, b in zip(x[i], x[j]))
                ref = c * 2 / mp.pi * mp.asin(2 * dot / mp.sqrt(sq[i] * sq[j]))
                assert K[i, j] == pytest.approx(float(ref), rel=1e-13)


def test_nan_from_a_dual_is_an_error_naming_the_activation():
    """A dual that returns NaN gives an error naming it, never a silent NaN kernel."""
    class Broken(nk.activations.Identity):
        def duals(self, q11, q22, rho, *, deriv=True, root=None, scale=1.0, check=True):
            e, ed = super().duals(q11, q22, rho, deriv=deriv, root=root, scale=scale, check=check)
            return e * float("nan"), ed

    X = points(3, 2)
    with pytest.raises(ValueError, match="the dual of activation 'identity' returned NaN"):
        nk.nngp(X, depth=1, activation=Broken(), weight_var=1.0)
    with pytest.raises(ValueError, match="returned NaN for the variance"):
        nk.nngp(X, depth=2, activation=Broken(), weight_var=1.0)


def test_kappa_accepts_cosines_a_few_ulps_past_one():
    """A dot product of unit vectors lands a few ulps above 1 (1 + 2.3e-16); kappa refused it. Up to 8
    ulps of the argument's precision is taken as +-1 (exactly: same value), past that refused."""
    for depth in (1, 3):
        k = nk.NTK(depth=depth)
        assert nk.kappa(1 + 2.3e-16, depth=depth) == nk.kappa(1.0, depth=depth) == depth + 1
        assert nk.kappa(-1 - 2.3e-16, depth=depth) == nk.kappa(-1.0, depth=depth)
        assert k.kappa_mp(1 + 2.3e-16) == k.kappa_mp(1.0)
    u32 = np.array([1 + 2 * np.finfo(np.float32).eps], dtype=np.float32)
    assert nk.kappa(u32, depth=2)[0] == 3.0
    assert float(nk.kappa(torch.from_numpy(u32), depth=2)[0]) == 3.0
    for bad in (1 + 1e-10, np.float32(1.00001), -1.5):
        with pytest.raises(ValueError, match="u must lie in \\[-1, 1\\].*got \\|u\\| = "):
            nk.kappa(bad, depth=2)
    with pytest.raises(ValueError, match="u must lie in"):
        nk.NTK(depth=2).kappa_mp(1 + 1e-10)


def test_block_size_accepts_numpy_integers():
    X = points(9, 3)
    for fn in (nk.ntk, nk.nngp):
        np.testing.assert_array_equal(fn(X, depth=2, block_size=np.int64(4)), fn(X, depth=2, block_size=4))
    np.testing.assert_array_equal(nk.NTK(depth=2)(X, block_size=np.int32(2)), nk.ntk(X, depth=2, block_size=2))


def test_negative_stride_views_give_the_contiguous_result():
    """np.eye(3)[::-1] and np.flip crashed every torch-backed function ("negative strides")."""
    X, Y = np.flip(points(5, 3), axis=0), points(4, 3, seed=1)[::-1, ::-1]
    Xc, Yc = np.ascontiguousarray(X), np.ascontiguousarray(Y)
    for fn in (nk.ntk, nk.nngp):
        np.testing.assert_array_equal(fn(X, depth=2), fn(Xc, depth=2))
        np.testing.assert_array_equal(fn(X, Y, depth=2), fn(Xc, Yc, depth=2))
    np.testing.assert_array_equal(nk.ntk(np.eye(3)[::-1], depth=1), nk.ntk(np.eye(3)[[2, 1, 0]], depth=1))
    np.testing.assert_array_equal(nk.NTK(depth=2).diag(X), nk.NTK(depth=2).diag(Xc))
    np.testing.assert_array_equal(nk.NNGP(depth=2)(X, Y), nk.NNGP(depth=2)(Xc, Yc))
    u = np.linspace(-1, 1, 7)[::-2]
    np.testing.assert_array_equal(nk.kappa(u, depth=2), nk.kappa(u.copy(), depth=2))


def test_requires_grad_and_bfloat16_inputs_are_computed_on_their_values():
    """A tensor that requires grad is computed on its detached values (the result requires no grad);
    bfloat16/float16 inputs are converted exactly to ``dtype`` (float64 by default) first."""
    X = torch.tensor(points(4, 3))
    Xg = X.clone().requires_grad_(True)
    for fn in (nk.ntk, nk.nngp):
        K = fn(Xg, depth=2)
        assert not K.requires_grad
        torch.testing.assert_close(K, fn(X, depth=2), rtol=0, atol=0)
        Xb = X.to(torch.bfloat16)
        Kb = fn(Xb, depth=2)
        assert Kb.dtype == torch.float64
        torch.testing.assert_close(Kb, fn(Xb.double(), depth=2), rtol=0, atol=0)
        assert fn(Xb, depth=2, dtype=torch.float32).dtype == torch.float32
        np.testing.assert_array_equal(fn(points(3, 2).astype(np.float16), depth=1),
                                      fn(points(3, 2).astype(np.float16).astype(np.float64), depth=1))
    assert not nk.NTK(depth=1).diag(Xg).requires_grad


def test_layer_flags_no_is_not_true():
    """Flags are bools: deriv="no" computed the derivative, weight_is_c_sigma="no" used the exact c_sigma."""
    layer = nk.kernels.Layer(nk.relu(), 2.0, 0.0)
    one = torch.ones((), dtype=torch.float64)
    with pytest.raises(TypeError, match="deriv must be True or False; got 'no'"):
        nk.kernels.layer_duals(layer, one, one, one, deriv="no")
    with pytest.raises(TypeError, match="weight_is_c_sigma must be True or False; got 'no'"):
        nk.kernels.Layer(nk.relu(), 2.0, 0.0, "no")
    assert nk.kernels.layer_duals(layer, one, one, one, deriv=np.False_)[1] is None
    assert nk.kernels.Layer(nk.relu(), 2.0, 0.0, np.True_).weight_is_c_sigma is True


@pytest.mark.parametrize("kernel", ["ntk", "nngp"])
def test_kappa_with_a_tiny_weight_var_does_not_lose_rho(kernel):
    """weight_var = 2^-300: the unit-sphere variances reach 2^-602, their product underflowed and kappa
    was 0 (NNGP) or wrong (NTK). Each bias-free ReLU layer scales the kernel by weight_var / 2 exactly."""
    u = np.array([0.3, -0.9, 1.0])
    np.testing.assert_allclose(nk.kappa(u, depth=3, kernel=kernel, weight_var=2.0**-300),
                               nk.kappa(u, depth=3, kernel=kernel) * 2.0**-903, rtol=1e-15)


def test_no_points_give_an_empty_gram_matrix():
    """X with no rows crashed building the overflow message (max() of an empty tensor)."""
    for fn in (nk.ntk, nk.nngp):
        assert fn(np.ones((0, 3)), depth=2).shape == (0, 0)
        assert fn(np.ones((0, 3)), np.ones((2, 3)), depth=2).shape == (0, 2)
        assert fn(np.ones((2, 3)), np.ones((0, 3)), depth=2).shape == (2, 0)
    assert nk.NTK(depth=2).diag(np.ones((0, 3))).shape == (0,)
