"""nk.train: determinism, the rates gradient descent predicts, the two gradient paths, the history."""

import numpy as np
import pytest
import torch

import ntklib as nk


def sphere(n, d=3, seed=0):
    return nk.data.sphere(n, d, seed=seed)


def fields(h):
    """A History as a tuple of arrays, for exact comparison."""
    per = tuple(h.movement_by_parameter[k] for k in sorted(h.movement_by_parameter))
    return (h.steps, h.loss, h.test_loss, h.movement, h.ntk_steps, h.ntk_drift) + per


def assert_same_history(a, b):
    for x, y in zip(fields(a), fields(b), strict=True):
        if x is None:
            assert y is None
        else:
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("optimizer, batch_size", [("gd", None), ("sgd", 3), ("adam", None), ("adam", 4)])
@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_same_seed_same_history(optimizer, batch_size, model):
    """Two runs with the same seeds are identical, bit for bit, on either gradient path."""
    if model == "mlp":
        X, y = sphere(10), sphere(10, seed=1)[:, 0]

        def make():
            return nk.MLP(3, 16, 2, bias_var=0.1, seed=5)
    else:
        X = np.random.default_rng(0).standard_normal((10, 1, 5, 5))
        y = X[:, 0, 2, 2]

        def make():
            return nk.CNN(1, 4, 1, image_shape=(5, 5), seed=5)
    runs = [nk.train(make(), X, y, optimizer=optimizer, lr=0.01, steps=12, batch_size=batch_size, seed=3,
                     record_every=4, X_test=X[:4], y_test=y[:4], ntk_points=X[:5], ntk_steps=[0, 6, 12],
                     progress=False) for _ in range(2)]
    assert_same_history(*runs)
    assert runs[0].loss.shape == (4,) and runs[0].ntk_drift.shape == (3,)


def test_minibatch_seed_matters_and_global_state_is_untouched():
    X, y = sphere(12), sphere(12, seed=1)[:, 0]
    state = torch.random.get_rng_state()
    a, b = (nk.train(nk.MLP(3, 16, 1, seed=0), X, y, optimizer="sgd", lr=0.1, steps=6, batch_size=2, seed=s,
                     progress=False) for s in (0, 1))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert not np.array_equal(a.loss, b.loss)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("method", ["structured", "autograd"])
def test_gd_on_a_linear_model_follows_the_residual_recursion(reduction, method):
    """f(x) = w.x: one GD step maps the residual r to (I - eta X X^T / b) r (b = 1 for "sum", n for
    "mean"), so L_t = 1/2 |(I - eta X X^T / b)^t r_0|^2 / b at every step; along the top
    eigenvector the loss falls by (1 - eta lambda)^2 per step."""
    X = sphere(8, 4)
    net = nk.MLP(4, 1, 0, seed=0)
    with torch.no_grad():
        f0 = net(torch.from_numpy(X)).numpy()
    b = 1 if reduction == "sum" else len(X)
    lam, V = np.linalg.eigh(X @ X.T / b)
    eta = 0.5 / lam[-1]
    y = f0 - V[:, -1]  # r_0 is the top eigenvector
    h = nk.train(net, X, y, lr=eta, steps=10, reduction=reduction, method=method, progress=False)
    np.testing.assert_allclose(h.loss, 0.5 / b * (1 - eta * lam[-1]) ** (2 * np.arange(11)), rtol=1e-12)

    y = f0 + np.arange(8.0)  # a generic residual
    net = nk.MLP(4, 1, 0, seed=0)
    h = nk.train(net, X, y, lr=eta, steps=10, reduction=reduction, method=method, progress=False)
    A = np.eye(8) - eta * X @ X.T / b
    expected = [0.5 / b * np.sum((np.linalg.matrix_power(A, t) @ (f0 - y)) ** 2) for t in range(11)]
    np.testing.assert_allclose(h.loss, expected, rtol=1e-12)


def _hidden_move(parameterization, width, seed, steps=100):
    X = sphere(10)
    y = X[:, 0] ** 2 - X[:, 1]
    net = nk.MLP(3, width, 1, parameterization=parameterization, antisymmetric=True, seed=seed)
    lr = 0.05 * (width if parameterization == "mean_field" else 1)
    h = nk.train(net, X, y, lr=lr, steps=steps, record_every=steps, progress=False)
    return h.movement_by_parameter["layers.0.weight"][-1]


@pytest.mark.slow
def test_parameter_movement_shrinks_like_width_to_minus_one_half_in_the_ntk_parameterization():
    """Chizat et al.'s lazy scaling: with a fixed lr the hidden weights move by O(width^-1/2),
    with the mean-field scaling (lr times width) by O(1). Fitted log-log slope over widths 256 to
    16384 of the mean over 4 seeds; tolerance: 4 standard errors of the per-seed slopes plus 0.03
    for the finite-width curvature (measured slopes: about -0.50 and 0.00, standard errors about
    0.01)."""
    widths = np.array([256, 1024, 4096, 16384])
    for param, target in (("ntk", -0.5), ("mean_field", 0.0)):
        M = np.array([[_hidden_move(param, w, s) for w in widths] for s in range(4)])
        slope = np.polyfit(np.log(widths), np.log(M.mean(0)), 1)[0]
        per_seed = [np.polyfit(np.log(widths), np.log(m), 1)[0] for m in M]
        se = np.std(per_seed, ddof=1) / np.sqrt(len(per_seed))
        assert abs(slope - target) < 4 * se + 0.03, (param, slope, se)


@pytest.mark.parametrize("optimizer, batch_size", [("gd", None), ("sgd", 3), ("adam", None)])
@pytest.mark.parametrize("depth, bias_var, antisymmetric, param, activation", [
    (0, 0.0, True, "ntk", "relu"),
    (1, 0.0, True, "mean_field", "relu"),
    (2, [0.2, 0.0, 0.5], False, "ntk", "relu"),
    (3, 0.1, True, "standard", "erf"),
    (2, 0.3, True, "ntk", "tanh"),
])
def test_structured_gradient_equals_autograd(optimizer, batch_size, depth, bias_var, antisymmetric, param,
                                             activation):
    X, y = sphere(9), sphere(9, seed=2)[:, 1]
    nets = [nk.MLP(3, 6, depth, bias_var=bias_var, antisymmetric=antisymmetric, parameterization=param,
                   activation=activation, output_scale=0.8, seed=1) for _ in range(2)]
    hs = [nk.train(net, X, y, optimizer=optimizer, lr=0.05, steps=20, batch_size=batch_size, seed=2,
                   reduction="mean", method=method, ntk_points=X[:4], progress=False)
          for net, method in zip(nets, ("structured", "autograd"))]
    for p, q in zip(*(net.parameters() for net in nets)):
        torch.testing.assert_close(p, q, rtol=1e-11, atol=1e-12)
    for a, b in zip(fields(hs[0]), fields(hs[1])):
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("pooling", ["vanilla", "gap"])
def test_adam_equals_the_torch_loop_it_replaces(pooling):
    """The inline Adam loop of the CNTK chapter (float32, mean over images of 1/2 |s f - y|^2 over
    classes, s = 1/8 for the vanilla readout) against nk.train(optimizer="adam", reduction="mean")
    on the CNN with output_scale=s: the same parameters, bit for bit, and the same kernel drift."""
    rng = np.random.default_rng(0)
    X = torch.from_numpy(rng.standard_normal((12, 1, 6, 6))).float()
    Y = torch.from_numpy(rng.standard_normal((12, 3))).float()
    s = 1 / 6 if pooling == "vanilla" else 1.0
    opts = {"image_shape": (6, 6), "pooling": pooling, "outputs": 3, "seed": 0, "dtype": torch.float32}
    ref, mine = nk.CNN(1, 4, 2, **opts), nk.CNN(1, 4, 2, output_scale=s, **opts)
    K0 = nk.empirical_ntk(ref, X[:4], output=0)
    opt = torch.optim.Adam(ref.parameters(), lr=1e-2)
    for _ in range(15):
        opt.zero_grad()
        loss = 0.5 * ((s * ref(X) - Y) ** 2).sum(1).mean()
        loss.backward()
        opt.step()
    h = nk.train(mine, X, Y, optimizer="adam", lr=1e-2, steps=15, reduction="mean", ntk_points=X[:4],
                 ntk_output=0, progress=False)
    for p, q in zip(ref.parameters(), mine.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    with torch.no_grad():
        assert np.isclose(h.loss[-1], float(0.5 * ((s * ref(X) - Y) ** 2).sum(1).mean()), rtol=1e-6)
    K1 = nk.empirical_ntk(ref, X[:4], output=0)
    assert np.isclose(h.ntk_drift[-1], np.linalg.norm(K1 - K0) / np.linalg.norm(K0), rtol=1e-6)


def test_history_measures_what_it_says():
    """loss and test loss against direct evaluation, movement against the parameters, and the
    NTK drift against empirical_ntk before and after."""
    X, y = sphere(10), sphere(10, seed=1)[:, 0]
    Xs, ys = sphere(4, seed=3), sphere(4, seed=4)[:, 0]
    net = nk.MLP(3, 32, 2, bias_var=0.2, seed=0)
    init = [p.detach().clone() for p in net.parameters()]
    K0 = nk.empirical_ntk(net, X[:6])
    h = nk.train(net, X, y, lr=0.02, steps=7, record_every=3, X_test=Xs, y_test=ys, ntk_points=X[:6],
                 progress=False)
    np.testing.assert_array_equal(h.steps, [0, 3, 6, 7])
    np.testing.assert_array_equal(h.ntk_steps, [0, 7])
    with torch.no_grad():
        f, fs = net(torch.from_numpy(X)).numpy(), net(torch.from_numpy(Xs)).numpy()
    assert np.isclose(h.loss[-1], 0.5 * np.sum((f - y) ** 2), rtol=1e-13)
    assert np.isclose(h.test_loss[-1], 0.5 * np.sum((fs - ys) ** 2), rtol=1e-13)
    assert h.loss[0] > h.loss[-1]
    flat = torch.cat([(p.detach() - q).flatten() for p, q in zip(net.parameters(), init)])
    norm0 = torch.cat([q.flatten() for q in init]).norm()
    assert np.isclose(h.movement[-1], float(flat.norm() / norm0), rtol=1e-13)
    assert h.movement[0] == 0 and h.ntk_drift[0] == 0
    first = net.layers[0].weight.detach()
    assert np.isclose(h.movement_by_parameter["layers.0.weight"][-1],
                      float((first - init[0]).norm() / init[0].norm()), rtol=1e-13)
    K1 = nk.empirical_ntk(net, X[:6])
    assert np.isclose(h.ntk_drift[-1], np.linalg.norm(K1 - K0) / np.linalg.norm(K0), rtol=1e-12)


def test_zero_steps_records_the_initialization():
    X, y = sphere(5), np.zeros(5)
    net = nk.MLP(3, 8, 1, seed=0)
    h = nk.train(net, X, y, lr=1.0, steps=0, ntk_points=X, progress=False)
    np.testing.assert_array_equal(h.steps, [0])
    np.testing.assert_array_equal(h.ntk_drift, [0.0])
    with torch.no_grad():
        assert np.isclose(h.loss[0], 0.5 * float((net(torch.from_numpy(X)) ** 2).sum()))


def test_progress_bar_runs(monkeypatch):
    monkeypatch.setenv("NTK_PROGRESS", "off")
    X = sphere(5)
    h = nk.train(nk.MLP(3, 8, 1, seed=0), X, X[:, 0], lr=0.1, steps=3, progress=True, desc="fit")
    assert len(h.loss) == 4


def test_train_errors():
    X, y = sphere(6), np.zeros(6)
    net = nk.MLP(3, 4, 1, seed=0)
    with pytest.raises(ValueError, match="optimizer must be one of 'gd', 'sgd', 'adam'"):
        nk.train(net, X, y, optimizer="lbfgs", lr=0.1, steps=1)
    with pytest.raises(ValueError, match="reduction must be one of 'sum', 'mean'"):
        nk.train(net, X, y, reduction="max", lr=0.1, steps=1)
    with pytest.raises(ValueError, match="method must be one of"):
        nk.train(net, X, y, method="jacobian", lr=0.1, steps=1)
    with pytest.raises(ValueError, match="lr must be finite and > 0"):
        nk.train(net, X, y, lr=0.0, steps=1)
    with pytest.raises(TypeError, match="lr must be a real number"):
        nk.train(net, X, y, lr="fast", steps=1)
    with pytest.raises(TypeError, match="steps must be an int"):
        nk.train(net, X, y, lr=0.1, steps=2.0)
    with pytest.raises(ValueError, match="full-batch"):
        nk.train(net, X, y, lr=0.1, steps=1, batch_size=2)
    with pytest.raises(ValueError, match="needs a batch_size"):
        nk.train(net, X, y, optimizer="sgd", lr=0.1, steps=1)
    with pytest.raises(ValueError, match="batch_size must be at most"):
        nk.train(net, X, y, optimizer="sgd", lr=0.1, steps=1, batch_size=7)
    with pytest.raises(ValueError, match="ntk_steps must lie in"):
        nk.train(net, X, y, lr=0.1, steps=1, ntk_points=X, ntk_steps=[2])
    with pytest.raises(ValueError, match="ntk_steps needs ntk_points"):
        nk.train(net, X, y, lr=0.1, steps=1, ntk_steps=[0])
    with pytest.raises(ValueError, match="X_test and y_test together"):
        nk.train(net, X, y, lr=0.1, steps=1, X_test=X)
    with pytest.raises(ValueError, match="one target per input"):
        nk.train(net, X, y[:5], lr=0.1, steps=1)
    with pytest.raises(ValueError, match="outputs have shape"):
        nk.train(net, X, np.zeros((6, 2)), lr=0.1, steps=1, method="autograd")
    with pytest.raises(ValueError, match="structured"):
        nk.train(torch.nn.Linear(3, 1).double(), X, y, lr=0.1, steps=1, method="structured")
    with pytest.raises(TypeError, match="torch.nn.Module"):
        nk.train(lambda x: x, X, y, lr=0.1, steps=1)


def test_diverging_training_raises_instead_of_recording_nan():
    """Issue 10 item 5 (training): lr=1e6 made the loss inf, then NaN, silently. On a linear model the
    loss is 1/2 |(I - eta X X^T)^t r_0|^2: the error names the first step where that overflows."""
    X = sphere(8, 3)
    y = X[:, 0] + 1.0
    net = nk.MLP(3, 1, 0, seed=0)
    with torch.no_grad():
        r = net(torch.from_numpy(X)).numpy() - y
    A = np.eye(8) - 1e6 * X @ X.T
    step = 0
    with np.errstate(over="ignore", invalid="ignore"):
        while np.isfinite(0.5 * r @ r):
            r, step = A @ r, step + 1
    for method in ("structured", "autograd"):
        with pytest.raises(ValueError, match=rf"training diverged: the loss is (inf|nan) at step {step} \(lr=1000000.0"):
            nk.train(nk.MLP(3, 1, 0, seed=0), X, y, lr=1e6, steps=50, method=method, progress=False)


def test_training_refuses_inputs_that_used_to_give_nan_or_crash():
    X = sphere(6)
    y = X[:, 0]
    with pytest.raises(ValueError, match="at least one training point"):  # "mean" divided 0 by 0
        nk.train(nk.MLP(3, 8, 1, seed=0), X[:0], y[:0], lr=0.1, steps=1, reduction="mean", progress=False)
    with pytest.raises(ValueError, match="no parameters to train"):  # was StopIteration
        nk.train(torch.nn.Identity(), X, y, lr=0.1, steps=1, progress=False)
    with pytest.raises(TypeError, match="progress must be True or False"):  # "no" meant a bar
        nk.train(nk.MLP(3, 8, 1, seed=0), X, y, lr=0.1, steps=1, progress="no")
    frozen = nk.MLP(3, 8, 1, seed=0)
    for p in frozen.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="every one has requires_grad=False"):
        nk.train(frozen, X, y, lr=0.1, steps=1, progress=False)
    for bad in (np.nan, np.inf, 0.0, -1.0):
        with pytest.raises(ValueError, match="lr must be finite and > 0"):
            nk.train(nk.MLP(3, 8, 1, seed=0), X, y, lr=bad, steps=1, progress=False)
    with pytest.raises(ValueError, match="X contains NaN"):
        nk.train(nk.MLP(3, 8, 1, seed=0), X * np.nan, y, lr=0.1, steps=1, progress=False)
    with pytest.raises(ValueError, match="y_test contains NaN"):
        nk.train(nk.MLP(3, 8, 1, seed=0), X, y, X_test=X, y_test=y * np.nan, lr=0.1, steps=1, progress=False)


@pytest.mark.parametrize("method", ["auto", "autograd"])
def test_frozen_parameters_stay_put_and_the_rest_follows_its_kernel(method):
    """A frozen hidden layer (requires_grad=False) crashed autograd ("does not require grad") and the
    structured path trained it anyway. Now only the output layer moves: a linear model in its
    features J = df/dw_out (from autograd), so r_t = (I - eta J J^T)^t r_0."""
    X = sphere(8, 3)
    y = X[:, 0]
    net = nk.MLP(3, 16, 1, seed=0)
    net.layers[0].weight.requires_grad_(False)
    W0 = net.layers[0].weight.detach().clone()
    x = torch.from_numpy(X)
    J = torch.stack([torch.autograd.grad(net(x[i:i + 1]).sum(), net.layers[1].weight)[0].reshape(-1)
                     for i in range(8)]).numpy()
    with torch.no_grad():
        r = net(x).numpy() - y
    eta = 0.5 / np.linalg.eigvalsh(J @ J.T)[-1]
    h = nk.train(net, X, y, lr=eta, steps=5, method=method, progress=False)
    A = np.eye(8) - eta * J @ J.T
    expected = [0.5 * np.sum((np.linalg.matrix_power(A, t) @ r) ** 2) for t in range(6)]
    np.testing.assert_allclose(h.loss, expected, rtol=1e-10)
    assert torch.equal(net.layers[0].weight, W0)
    np.testing.assert_array_equal(h.movement_by_parameter["layers.0.weight"], 0.0)
    with pytest.raises(ValueError, match="frozen"):
        nk.train(net, X, y, lr=eta, steps=1, method="structured", progress=False)


def test_movement_of_a_zero_initialized_parameter_is_not_nan():
    """||theta_t - theta_0|| / ||theta_0|| was 0/0 = NaN for a parameter initialized at 0."""
    X = sphere(6)
    net = nk.MLP(3, 1, 0, seed=0)
    with torch.no_grad():
        net.layers[0].weight.zero_()
    h = nk.train(net, X, X[:, 0], lr=0.1, steps=2, progress=False)
    np.testing.assert_array_equal(h.movement, [0.0, np.inf, np.inf])
    still = nk.MLP(3, 4, 1, seed=0)  # all zero: no gradient reaches any parameter
    with torch.no_grad():
        for p in still.parameters():
            p.zero_()
    h = nk.train(still, X, X[:, 0], lr=0.1, steps=2, progress=False)
    assert np.all(h.movement == 0) and all(np.all(v == 0) for v in h.movement_by_parameter.values())
