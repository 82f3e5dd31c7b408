"""Finite networks, empirical NTK/NNGP, kernel regression and gradient flow."""

import numpy as np
import pytest
import torch

import ntklib as nk


def sphere(n, d=5, seed=0):
    return nk.data.sphere(n, d, seed=seed)


# ----------------------------------------------------------------------------------------------
# networks and the empirical NTK
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("param", nk.networks.PARAMETERIZATIONS)
@pytest.mark.parametrize("bias_var", [0.0, 0.3])
@pytest.mark.parametrize("antisymmetric", [False, True])
def test_structured_equals_generic_jacobian(param, bias_var, antisymmetric):
    X, Y = sphere(6), sphere(4, seed=1)
    net = nk.MLP(5, 12, 2, parameterization=param, bias_var=bias_var, antisymmetric=antisymmetric, seed=0)
    for args in ((X,), (X, Y)):
        a = nk.empirical_ntk(net, *args)
        b = nk.empirical_ntk(net, *args, method="jacobian", chunk_size=3)
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.abs(b).max())
    # the generic path's tiles (3 x 3: diagonal, mirrored and partial ones) give an exactly symmetric K(X)
    K = nk.empirical_ntk(net, sphere(7, seed=2), method="jacobian", chunk_size=3)
    np.testing.assert_array_equal(K, K.T)


def test_jacobian_path_equals_per_sample_autograd_for_any_module():
    """The generic path on a module that is not an MLP, against a plain loop over samples."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 7), torch.nn.Tanh(), torch.nn.Linear(7, 1)).double()
    X = torch.randn(5, 3, dtype=torch.float64)
    grads = []
    for x in X:
        model.zero_grad()
        model(x[None]).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    G = torch.stack(grads)
    np.testing.assert_allclose(nk.empirical_ntk(model, X).numpy(), (G @ G.T).numpy(), rtol=1e-13)


def test_linear_model_ntk_is_x_xT():
    """depth 0 in the NTK parameterization: f = w.x, gradient x, so Theta = X X^T exactly."""
    X = np.random.default_rng(0).standard_normal((6, 4))
    net = nk.MLP(4, width=1, depth=0, seed=0)
    np.testing.assert_allclose(nk.empirical_ntk(net, X), X @ X.T, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(nk.empirical_ntk(net, X, method="jacobian"), X @ X.T, rtol=1e-14, atol=1e-14)


def test_antisymmetric_net_is_zero_at_init_with_unchanged_kernel():
    X = sphere(5)
    a = nk.MLP(5, 32, 2, seed=3)
    b = nk.MLP(5, 32, 2, seed=3, antisymmetric=True)
    assert torch.all(b(torch.from_numpy(X)) == 0)
    np.testing.assert_allclose(nk.empirical_ntk(b, X), nk.empirical_ntk(a, X), rtol=1e-13)


@pytest.mark.parametrize("depth, bias_var", [(1, 0.0), (2, 0.0), (3, 0.2)])
@pytest.mark.slow
def test_empirical_ntk_converges_to_analytic(depth, bias_var):
    """Relative Frobenius error ~ c width^-1/2: at width 4096 below 0.1 on average over 3 seeds,
    and smaller than at width 256 (ratio ~ 4 expected; asserted > 2)."""
    X = sphere(10)
    exact = nk.ntk(X, depth=depth, bias_var=bias_var)

    def err(width):
        return np.mean([np.linalg.norm(nk.empirical_ntk(nk.MLP(5, width, depth, bias_var=bias_var, seed=s), X) - exact)
                        / np.linalg.norm(exact) for s in range(3)])

    small, large = err(256), err(4096)
    assert large < 0.1 and small / large > 2


def test_empirical_nngp_monte_carlo():
    """E[f(x) f(y)] over initializations = nk.nngp; 400 draws, tolerance 5 standard errors per entry."""
    X = sphere(4)
    exact = nk.nngp(X, depth=2)
    M = 400
    mc = nk.empirical_nngp(lambda s: nk.MLP(5, 256, 2, seed=s), X, n_models=M)
    se = np.sqrt((np.outer(np.diag(exact), np.diag(exact)) + exact**2) / M)
    assert np.all(np.abs(mc - exact) < 5 * se + 0.02 * np.abs(exact))  # + finite-width bias O(1/width)


def test_empirical_ntk_errors():
    net = nk.MLP(3, 4, 1, seed=0)
    with pytest.raises(ValueError, match="same number of features"):
        nk.empirical_ntk(net, np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="scalar output"):
        nk.empirical_ntk(torch.nn.Linear(3, 2).double(), np.ones((2, 3)))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        nk.empirical_ntk(lambda x: x, np.ones((2, 3)))
    with pytest.raises(ValueError, match="method must be one of 'auto', 'structured', 'jacobian'; got 'jvp'"):
        nk.empirical_ntk(net, np.ones((2, 3)), method="jvp")
    with pytest.raises(ValueError, match="same shape"):
        nk.empirical_ntk(nk.CNN(1, 4, 1, image_shape=(5, 5), seed=0), np.ones((2, 1, 5, 5)), np.ones((2, 1, 4, 4)))
    with pytest.raises(ValueError, match="structured"):
        nk.empirical_ntk(torch.nn.Linear(3, 1).double(), np.ones((2, 3)), method="structured")
    with pytest.raises(ValueError, match="parameterization"):
        nk.MLP(3, 4, 1, parameterization="muP", seed=0)
    with pytest.raises(ValueError, match="X contains NaN"):
        nk.empirical_ntk(net, np.array([[np.nan, 0, 0]]))


# ----------------------------------------------------------------------------------------------
# the kernel object
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["auto", "jacobian"])
@pytest.mark.parametrize("bias_var", [0.0, [0.1, 0.0, 0.4]])
def test_empirical_ntk_object_diag_equals_the_diagonal(method, bias_var):
    X = sphere(7)
    k = nk.EmpiricalNTK(nk.MLP(5, 16, 2, bias_var=bias_var, antisymmetric=True, seed=0), method=method,
                        chunk_size=3)
    full = k(X)
    np.testing.assert_allclose(k.diag(X), np.diag(full), rtol=1e-13)
    np.testing.assert_array_equal(full, nk.empirical_ntk(k.model, X, method=method, chunk_size=3))
    np.testing.assert_allclose(k(X, X[:3]), full[:, :3], rtol=1e-13)


def test_empirical_ntk_object_on_a_cnn_with_several_outputs():
    """output= picks one readout; the diagonal of the generic path matches its full matrix, and
    the kernel of output 1 differs from that of output 0 (their readouts differ)."""
    X = np.random.default_rng(0).standard_normal((5, 1, 6, 6))
    net = nk.CNN(1, 4, 2, image_shape=(6, 6), outputs=3, seed=0)
    k0, k1 = nk.EmpiricalNTK(net, output=0), nk.EmpiricalNTK(net, output=1)
    np.testing.assert_allclose(k0.diag(X), np.diag(k0(X)), rtol=1e-13)
    assert not np.allclose(k0(X), k1(X))
    single = nk.CNN(1, 4, 2, image_shape=(6, 6), seed=0)  # its readout is the first row of net's
    with pytest.raises(ValueError, match="scalar output"):
        nk.empirical_ntk(net, X)
    assert single(torch.from_numpy(X)).shape == (5,)


def test_empirical_ntk_object_keeps_kind_and_dtype():
    k = nk.EmpiricalNTK(nk.MLP(5, 8, 1, seed=0))
    X = sphere(4)
    assert isinstance(k(X), np.ndarray) and isinstance(k.diag(X), np.ndarray)
    t = torch.from_numpy(X)
    assert isinstance(k(t), torch.Tensor) and k(t).dtype == torch.float64
    assert isinstance(k.diag(t), torch.Tensor) and k.diag(t).shape == (4,)


def test_empirical_ntk_object_repr_and_equality():
    env = {"EmpiricalNTK": nk.EmpiricalNTK, "MLP": nk.MLP, "CNN": nk.CNN, "torch": torch}
    kernels = [nk.EmpiricalNTK(nk.MLP(5, 8, 2, bias_var=[0.1, 0.2, 0.0], seed=1), method="jacobian"),
               nk.EmpiricalNTK(nk.CNN(1, 4, 2, image_shape=(6, 6), outputs=2, seed=0), output=1, chunk_size=4)]
    for k in kernels:
        again = eval(repr(k), env)
        assert again == k and hash(again) == hash(k)
    assert kernels[0] != kernels[1]
    assert nk.EmpiricalNTK(nk.MLP(5, 8, 2, seed=1)) != nk.EmpiricalNTK(nk.MLP(5, 8, 2, seed=2))
    assert nk.EmpiricalNTK(kernels[0].model) != kernels[0]  # method differs
    # a trained (here: moved) network is another kernel, and no longer what its repr builds
    k = kernels[0]
    with torch.no_grad():
        k.model.layers[0].weight[0, 0] += 1e-9
    assert eval(repr(k), env) != k


def test_empirical_ntk_object_errors():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        nk.EmpiricalNTK(lambda x: x)
    with pytest.raises(ValueError, match="method must be one of 'auto', 'structured', 'jacobian'"):
        nk.EmpiricalNTK(nk.MLP(3, 4, 1, seed=0), method="fast")
    with pytest.raises(ValueError, match="structured"):
        nk.EmpiricalNTK(torch.nn.Linear(3, 1).double(), method="structured")
    with pytest.raises(ValueError, match="output must be >= 0"):
        nk.EmpiricalNTK(nk.MLP(3, 4, 1, seed=0), output=-1)


# ----------------------------------------------------------------------------------------------
# regression and gradient flow
# ----------------------------------------------------------------------------------------------
def test_regression_interpolates_and_ridge_shrinks():
    X = sphere(20, 3)
    y = np.sin(3 * X[:, 0]) + X[:, 1]
    K = nk.ntk(X, depth=2)
    np.testing.assert_allclose(nk.kernel_regression(K, y), y, atol=1e-9)
    pred_ridge = nk.kernel_regression(K, y, ridge=10.0)
    assert np.linalg.norm(pred_ridge) < np.linalg.norm(y)
    Y2 = np.stack([y, -y], axis=1)
    np.testing.assert_allclose(nk.kernel_regression(K, Y2), Y2, atol=1e-9)


def test_gradient_flow_limits():
    X, Xt = sphere(15, 3), sphere(5, 3, seed=1)
    y = X[:, 0] ** 2
    K, Kt = nk.ntk(X, depth=2), nk.ntk(Xt, X, depth=2)
    np.testing.assert_allclose(nk.gradient_flow(K, y, Kt, t=0.0), 0.0, atol=1e-15)
    np.testing.assert_allclose(nk.gradient_flow(K, y, Kt, t=1e9), nk.kernel_regression(K, y, Kt), rtol=1e-8, atol=1e-10)
    # along an eigenvector the training residual decays exactly like exp(-lambda t)
    lam, V = np.linalg.eigh(K)
    r = nk.gradient_flow(K, V[:, -1], t=np.array([0.5, 1.0]))
    np.testing.assert_allclose(V[:, -1] - r[1], np.exp(-lam[-1] * 1.0) * V[:, -1], atol=1e-12)


def test_gradient_flow_with_a_duplicated_point_converges_to_the_projection():
    """A singular PSD K (a duplicated point): the gain along the null space grows like t, but K
    annihilates that direction, so f_t stays bounded and converges to the projection of y onto the
    range of K: the two copies get the mean of their targets, the other points their own."""
    X = sphere(4, 3)
    X = np.vstack([X, X[:1]])
    K = nk.ntk(X, depth=1)
    y = np.arange(5.0)
    out = nk.gradient_flow(K, y, t=np.array([1.0, 1e4, 1e8]))
    assert np.all(np.isfinite(out))
    projection = y.copy()
    projection[[0, 4]] = (y[0] + y[4]) / 2
    np.testing.assert_allclose(out[1], projection, atol=1e-8)
    np.testing.assert_allclose(out[2], projection, atol=1e-8)  # no growth, linear or other
    assert np.abs(out[0] - projection).max() > 1e-3  # not there yet at t = 1


def test_regression_errors():
    K = nk.ntk(sphere(5, 3), depth=1)
    with pytest.raises(ValueError, match="symmetric"):
        nk.kernel_regression(K + np.triu(np.ones((5, 5)), 1), np.ones(5))
    with pytest.raises(ValueError, match="not positive definite"):
        nk.kernel_regression(K - 10 * np.eye(5), np.ones(5))
    with pytest.raises(ValueError, match="y must have shape"):
        nk.kernel_regression(K, np.ones(4))
    with pytest.raises(ValueError, match="K_test must have shape"):
        nk.kernel_regression(K, np.ones(5), np.ones((3, 4)))
    with pytest.raises(ValueError, match="square"):
        nk.kernel_regression(np.ones((2, 3)), np.ones(2))
    with pytest.raises(ValueError, match="NaN"):
        nk.kernel_regression(K * np.nan, np.ones(5))
    with pytest.raises(ValueError, match="not positive semidefinite"):
        nk.gradient_flow(K - 10 * np.eye(5), np.ones(5), t=1.0)
    with pytest.raises(ValueError, match="ridge"):
        nk.kernel_regression(K, np.ones(5), ridge=-1)


def test_ill_conditioned_warning_names_condition_number():
    X = sphere(3, 3)
    X = np.vstack([X, X[:1] + 1e-9])
    K = nk.ntk(X, depth=1)
    with pytest.warns(nk.IllConditionedWarning, match="condition number"):
        nk.kernel_regression(K, np.ones(4))


# ----------------------------------------------------------------------------------------------
# the mean-field parameterization
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("depth, bias_var", [(1, 0.0), (2, 0.0), (2, 0.3)])
def test_mean_field_is_ntk_scaled_by_width(depth, bias_var):
    """Same seed, same weights: f_mf = f_ntk / sqrt(m) and Theta_mf = Theta_ntk / m without biases;
    with biases the output bias beta*b is not rescaled, the rest of f is."""
    X = sphere(6)
    m = 50
    ntk = nk.MLP(5, m, depth, bias_var=bias_var, seed=4)
    mf = nk.MLP(5, m, depth, bias_var=bias_var, parameterization="mean_field", seed=4)
    for p, q in zip(ntk.parameters(), mf.parameters()):
        assert torch.equal(p, q)
    x = torch.from_numpy(X)
    out_bias = 0.0 if not bias_var else float(ntk.layers[-1].bias_scale * ntk.layers[-1].bias.detach())
    with torch.no_grad():
        np.testing.assert_allclose(mf(x).numpy() - out_bias, (ntk(x).numpy() - out_bias) / np.sqrt(m),
                                   rtol=1e-13)
    if not bias_var:
        np.testing.assert_allclose(nk.empirical_ntk(mf, X), nk.empirical_ntk(ntk, X) / m, rtol=1e-12)


def test_mean_field_depth_zero_is_the_linear_model():
    X = sphere(4)
    a = nk.MLP(5, 3, 0, seed=1)
    b = nk.MLP(5, 3, 0, parameterization="mean_field", seed=1)
    np.testing.assert_array_equal(nk.empirical_ntk(a, X), nk.empirical_ntk(b, X))


def _relative_first_layer_move(parameterization, width, steps=5):
    """Full-batch GD on 1/2 |f - y|^2 with lr = 1 (ntk) or width (mean-field)."""
    X = torch.from_numpy(sphere(10, 3))
    y = X[:, 0] ** 2 - X[:, 1]
    net = nk.MLP(3, width, 1, parameterization=parameterization, antisymmetric=True, seed=0)
    W0 = net.layers[0].weight.detach().clone()
    lr = 0.05 * (width if parameterization == "mean_field" else 1)
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * ((net(X) - y) ** 2).sum()).backward()
        opt.step()
    return float((net.layers[0].weight.detach() - W0).norm() / W0.norm())


def test_mean_field_neurons_move_order_one_ntk_neurons_vanish():
    """With lr proportional to the width, the relative movement of the hidden weights does not
    depend on the width (mean-field); with a fixed lr it falls like width^-1/2 (NTK). Width 256 ->
    4096 (16x): the NTK movement shrinks about 4x (each neuron's gradient is O(m^-1/2) and the
    neurons are independent, so the ratio fluctuates by O(m^-1/2): asserted within 3.2..5), the
    mean-field movement by a factor within 0.8..1.25."""
    ntk = _relative_first_layer_move("ntk", 256) / _relative_first_layer_move("ntk", 4096)
    mf = _relative_first_layer_move("mean_field", 256) / _relative_first_layer_move("mean_field", 4096)
    assert 3.2 < ntk < 5.0, ntk
    assert 0.8 < mf < 1.25, mf


def test_structured_ntk_of_a_step_network_matches_autograd():
    """Below a step activation autograd sees no dependence; the structured path counts it as 0."""
    X = np.random.default_rng(3).standard_normal((6, 4))
    net = nk.MLP(4, width=32, depth=3, activation="step", seed=1)
    structured = nk.empirical_ntk(net, X, method="structured")
    np.testing.assert_allclose(structured, nk.empirical_ntk(net, X, method="jacobian"), atol=1e-13)
    # only the output layer has a gradient: the NTK is the last hidden layer's Gram matrix
    with torch.no_grad():
        h = torch.as_tensor(X)
        for layer in net.layers[:-1]:
            h = net.activation(layer(h))
        gram = (net.layers[-1].weight_scale ** 2 * h @ h.T).numpy()
    np.testing.assert_allclose(structured, gram, atol=1e-13)


def _autograd_ntk(model, X):
    """Independent reference: per-sample backward passes, the gradient over trainable parameters only."""
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    for x in torch.as_tensor(X):
        grads = torch.autograd.grad(model(x[None]).sum(), params, allow_unused=True)
        rows.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(params, grads)]))
    J = torch.stack(rows)
    return (J @ J.T).detach().numpy()


def test_empirical_ntk_jacobian_method_excludes_frozen_parameters():
    """A frozen first-layer weight and a frozen hidden bias: both methods (and diag) agree with the
    trainable-parameter reference, which differs from the kernel over every parameter."""
    X = sphere(5, d=3)
    net = nk.MLP(3, 8, 2, bias_var=0.3, seed=0)
    everything = nk.empirical_ntk(net, X)
    net.layers[0].weight.requires_grad_(False)
    net.layers[1].bias.requires_grad_(False)
    ref = _autograd_ntk(net, X)
    assert np.abs(ref - everything).max() > 0.1 * np.abs(everything).max()
    for method in ("structured", "jacobian"):
        np.testing.assert_allclose(nk.empirical_ntk(net, X, method=method), ref, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(nk.EmpiricalNTK(net, method=method).diag(X), np.diag(ref), rtol=1e-12)


def test_empirical_ntk_with_a_frozen_first_layer_without_bias_does_not_need_its_grad():
    """The structured path used to differentiate the frozen layer's output ("does not require grad")."""
    X = sphere(4, d=3)
    net = nk.MLP(3, 6, 1, seed=1)
    net.layers[0].weight.requires_grad_(False)
    np.testing.assert_allclose(nk.empirical_ntk(net, X), _autograd_ntk(net, X), rtol=1e-12, atol=1e-12)


def test_empirical_ntk_of_a_step_network_with_a_frozen_readout_is_zero():
    """Every trainable parameter sits below the step, whose derivative is 0: the kernel is exactly 0."""
    X = sphere(4, d=3)
    net = nk.MLP(3, 6, 2, activation="step", seed=0)
    net.layers[-1].weight.requires_grad_(False)
    for method in ("structured", "jacobian"):
        np.testing.assert_array_equal(nk.empirical_ntk(net, X, method=method), np.zeros((4, 4)))


@pytest.mark.parametrize("model", [torch.nn.Identity(), torch.nn.Sequential(), "frozen MLP"])
def test_empirical_ntk_of_a_model_without_trainable_parameters_is_refused(model):
    """It raised StopIteration (no parameters) or "does not require grad" (all frozen)."""
    if model == "frozen MLP":
        model = nk.MLP(3, 4, 1, seed=0).requires_grad_(False)
    with pytest.raises(ValueError, match="has no trainable parameters"):
        nk.empirical_ntk(model, np.ones((2, 3)))
    with pytest.raises(ValueError, match="has no trainable parameters"):
        nk.EmpiricalNTK(model, method="jacobian").diag(np.ones((2, 3)))


def test_empirical_ntk_wrong_number_of_features_names_the_argument():
    """It was torch's "mat1 and mat2 shapes cannot be multiplied"."""
    net = nk.MLP(3, 4, 1, seed=0)
    for method in ("structured", "jacobian"):
        with pytest.raises(ValueError, match="X has 5 features but the MLP takes d_in=3"):
            nk.empirical_ntk(net, np.ones((2, 5)), method=method)
        with pytest.raises(ValueError, match="X and Y must have the same number of features; got X with 3 and Y with"):
            nk.empirical_ntk(net, np.ones((2, 3)), np.ones((2, 4)), method=method)
    with pytest.raises(ValueError, match="X has 5 features"):
        nk.EmpiricalNTK(net).diag(np.ones((2, 5)))
    with pytest.raises(ValueError, match=r"model Linear cannot be applied to X of shape \(2, 5\).*mat1 and mat2"):
        nk.empirical_ntk(torch.nn.Linear(3, 1).double(), np.ones((2, 5)))
    cnn = nk.CNN(1, 4, 1, image_shape=(5, 5), seed=0)
    with pytest.raises(ValueError, match=r"model CNN cannot be applied to X of shape \(2, 1, 6, 6\)"):
        nk.empirical_ntk(cnn, np.ones((2, 1, 6, 6)))


def test_empirical_nngp_of_frozen_networks_needs_no_trainable_parameters():
    """The NNGP is a forward-pass average: frozen networks give the same Monte Carlo estimate."""
    X = sphere(3, d=3)

    def make(s):
        return nk.MLP(3, 8, 1, seed=s)

    frozen = nk.empirical_nngp(lambda s: make(s).requires_grad_(False), X, n_models=3)
    np.testing.assert_array_equal(frozen, nk.empirical_nngp(make, X, n_models=3))
