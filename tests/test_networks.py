"""Finite networks: parameterizations, per-layer biases, validation, reprs."""

import math

import numpy as np
import pytest
import torch

import ntklib as nk
from ntklib.networks import CNN, MLP, PARAMETERIZATIONS


def sphere(n, d=5, seed=0):
    return nk.data.sphere(n, d, seed=seed)


def images(n, seed=0, shape=(1, 6, 6)):
    return torch.from_numpy(np.random.default_rng(seed).standard_normal((n, *shape)))


# ----------------------------------------------------------------------------------------------
# MLP
# ----------------------------------------------------------------------------------------------
def _ntk_with_layer_biases(X, depth, bias_vars):
    """Independent reference: the ReLU NTK recursion with one bias variance per weight layer
    (entry h for the layer producing f^(h+1)), written from the closed forms kappa_0, kappa_1."""
    sigma = X @ X.T + bias_vars[0]
    theta = sigma.copy()
    for h in range(1, depth + 1):
        d = np.sqrt(np.diag(sigma))
        u = np.clip(sigma / np.outer(d, d), -1, 1)
        k0 = (np.pi - np.arccos(u)) / np.pi
        k1 = (u * (np.pi - np.arccos(u)) + np.sqrt(1 - u**2)) / np.pi
        sigma = np.outer(d, d) * k1 + bias_vars[h]  # c_sigma = 2 cancels the 1/2 of E[relu^2]
        theta = theta * k0 + sigma
    return theta


@pytest.mark.parametrize("bias_vars", [(0.5, 0.0, 0.0), (0.0, 0.0, 0.7), (0.2, 1.0, 0.3)])
@pytest.mark.slow
def test_per_layer_bias_empirical_ntk_tends_to_the_per_layer_recursion(bias_vars):
    """Each entry of bias_var sits in its own layer: the wide network's NTK matches the recursion
    with that layer's bias (5 % at width 4096, mean of 3 seeds; width^-1/2 error ~ 2 %), while the
    same biases shifted by one layer are off by much more."""
    X = sphere(8)
    exact = _ntk_with_layer_biases(X, 2, bias_vars)
    shifted = _ntk_with_layer_biases(X, 2, bias_vars[1:] + bias_vars[:1])
    emp = np.mean([nk.empirical_ntk(MLP(5, 4096, 2, bias_var=list(bias_vars), seed=s), X) for s in range(3)], axis=0)
    err = np.linalg.norm(emp - exact) / np.linalg.norm(exact)
    assert err < 0.05, err
    assert np.linalg.norm(shifted - exact) / np.linalg.norm(exact) > 3 * err


def test_scalar_bias_is_the_same_bias_in_every_layer():
    X = torch.from_numpy(sphere(4))
    a = MLP(5, 7, 2, bias_var=0.3, seed=1)
    b = MLP(5, 7, 2, bias_var=[0.3, 0.3, 0.3], seed=1)
    with torch.no_grad():
        assert torch.equal(a(X), b(X))
    assert [layer.bias_scale for layer in b.layers] == [math.sqrt(0.3)] * 3
    c = MLP(5, 7, 2, bias_var=np.array([0.3, 0.3, 0.3]), seed=1)  # an array is a sequence too
    with torch.no_grad():
        assert torch.equal(a(X), c(X))


def test_per_layer_bias_zero_entry_means_no_bias_parameter():
    net = MLP(5, 7, 2, bias_var=(0.0, 0.4, 0.0), seed=0)
    assert [layer.bias is not None for layer in net.layers] == [False, True, False]
    std = MLP(5, 7, 2, bias_var=(0.0, 0.4, 0.0), parameterization="standard", seed=0)
    assert [layer.bias is not None for layer in std.layers] == [False, True, False]


@pytest.mark.parametrize("param", PARAMETERIZATIONS)
def test_parameterization_scales(param):
    """ntk: first layer 1, then sqrt(c/m); mean_field: output sqrt(c)/m; standard: no scales and
    PyTorch's U(+-1/sqrt(fan_in)) initialization."""
    m = 64
    net = MLP(5, m, 2, parameterization=param, seed=0)
    scales = [layer.weight_scale for layer in net.layers]
    if param == "standard":
        assert scales == [1.0, 1.0, 1.0]
        for layer in net.layers:
            bound = 1 / math.sqrt(layer.weight.shape[1])
            largest = float(layer.weight.detach().abs().max())
            assert 0.9 * bound < largest <= bound  # uniform, not shrunk
    else:
        last = math.sqrt(2) / m if param == "mean_field" else math.sqrt(2 / m)
        assert scales == [1.0, math.sqrt(2 / m), last]
        assert abs(float(net.layers[1].weight.detach().std()) - 1) < 0.05  # N(0, 1) entries


def test_standard_ntk_grows_with_width_ntk_does_not():
    X = sphere(6)

    def trace(param, m):
        return np.trace(nk.empirical_ntk(MLP(5, m, 1, parameterization=param, seed=0), X))

    assert 3.5 < trace("standard", 1024) / trace("standard", 256) < 4.5
    assert 0.9 < trace("ntk", 1024) / trace("ntk", 256) < 1.1


def test_output_scale_multiplies_output_and_squares_into_the_ntk():
    X = sphere(5)
    a, b = MLP(5, 16, 2, seed=0), MLP(5, 16, 2, output_scale=0.25, seed=0)
    with torch.no_grad():
        torch.testing.assert_close(b(torch.from_numpy(X)), 0.25 * a(torch.from_numpy(X)), rtol=1e-15, atol=0)
    np.testing.assert_allclose(nk.empirical_ntk(b, X), nk.empirical_ntk(a, X) / 16, rtol=1e-13)


def test_seed_reproduces_and_does_not_touch_global_state():
    state = torch.random.get_rng_state()
    a, b = MLP(5, 8, 2, seed=3), MLP(5, 8, 2, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.layers[0].weight, MLP(5, 8, 2, seed=4).layers[0].weight)


@pytest.mark.parametrize("kwargs", [
    {}, {"activation": "erf", "parameterization": "mean_field", "bias_var": (0.0, 0.5, 0.1)},
    {"output_scale": 0.5, "antisymmetric": True, "dtype": torch.float32},
])
def test_mlp_repr_is_the_constructor_call(kwargs):
    net = MLP(5, 8, 2, seed=2, **kwargs)
    again = eval(repr(net), {"MLP": MLP, "torch": torch, "Erf": nk.Erf})
    assert repr(again) == repr(net)
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), again.parameters()))


def test_mlp_validation():
    with pytest.raises(ValueError, match="parameterization must be one of 'ntk', 'standard', 'mean_field'"):
        MLP(3, 4, 1, parameterization="muP", seed=0)
    with pytest.raises(ValueError, match="bias_var has 2 entries but depth=2"):
        MLP(3, 4, 2, bias_var=[0.1, 0.2], seed=0)
    with pytest.raises(ValueError, match=r"bias_var\[1\] must be >= 0"):
        MLP(3, 4, 1, bias_var=[0.1, -0.2], seed=0)
    for bad in (0.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="output_scale must be finite and nonzero"):
            MLP(3, 4, 1, output_scale=bad, seed=0)
    with pytest.raises(TypeError, match="output_scale must be a real number"):
        MLP(3, 4, 1, output_scale="big", seed=0)
    with pytest.raises(TypeError, match="width must be an int"):
        MLP(3, 4.0, 1, seed=0)
    with pytest.raises(ValueError, match="depth must be >= 0"):
        MLP(3, 4, -1, seed=0)


# ----------------------------------------------------------------------------------------------
# CNN
# ----------------------------------------------------------------------------------------------
def test_cnn_depth_counts_convolutional_layers():
    for depth in (1, 2, 4):
        assert len(CNN(1, 4, depth, image_shape=(6, 6), seed=0).convs) == depth


@pytest.mark.parametrize("pooling", ["gap", "vanilla"])
def test_cnn_depth_one_is_the_formula(pooling):
    """One convolutional layer, written out: sqrt(2/C) <V, relu(conv(x, W) / q)> (mean over pixels
    for GAP)."""
    net = CNN(1, 5, 1, image_shape=(6, 6), pooling=pooling, seed=0)
    x = images(3)
    a = torch.relu(torch.nn.functional.conv2d(x, net.convs[0], padding=1) / 3)
    feats = a.mean(dim=(2, 3)) if pooling == "gap" else a.flatten(1)
    ref = math.sqrt(2 / 5) * feats @ net.readout.reshape(1, -1).T
    with torch.no_grad():
        torch.testing.assert_close(net(x), ref[:, 0], rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("pooling", ["gap", "vanilla"])
def test_cnn_even_filter_sizes_are_refused(pooling):
    with pytest.raises(ValueError, match="filter_size must be odd"):
        CNN(1, 4, 1, image_shape=(5, 5), filter_size=2, pooling=pooling, seed=0)


@pytest.mark.parametrize("pooling", ["gap", "vanilla"])
@pytest.mark.parametrize("q", [1, 5])
def test_cnn_odd_filter_sizes_keep_the_image_size(pooling, q):
    net = CNN(2, 3, 2, image_shape=(5, 7), filter_size=q, pooling=pooling, outputs=2, seed=0)
    assert net(images(4, shape=(2, 5, 7))).shape == (4, 2)


@pytest.mark.parametrize("pooling", ["gap", "vanilla"])
def test_cnn_mean_field_is_ntk_over_sqrt_width(pooling):
    """Same seed, same parameters; the readout scale sqrt(2)/C instead of sqrt(2/C)."""
    x = images(3)
    a = CNN(1, 9, 2, image_shape=(6, 6), pooling=pooling, seed=1)
    b = CNN(1, 9, 2, image_shape=(6, 6), pooling=pooling, parameterization="mean_field", seed=1)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    with torch.no_grad():
        torch.testing.assert_close(b(x), a(x) / 3, rtol=1e-13, atol=0)


def test_cnn_standard_is_pytorch_default_initialization():
    """The standard CNN equals nn.Conv2d / nn.Linear layers (no bias) holding its parameters, and
    its parameters are U(+-1/sqrt(fan_in))."""
    net = CNN(2, 6, 2, image_shape=(5, 5), parameterization="standard", seed=0)
    for w in list(net.convs) + [net.readout]:
        bound = 1 / math.sqrt(w[0].numel())
        assert 0.8 * bound < float(w.detach().abs().max()) <= bound
    x = images(3, shape=(2, 5, 5))
    z = torch.relu(torch.nn.functional.conv2d(x, net.convs[0], padding=1))
    z = torch.relu(torch.nn.functional.conv2d(z, net.convs[1], padding=1))
    with torch.no_grad():
        torch.testing.assert_close(net(x), (z.mean(dim=(2, 3)) @ net.readout.T)[:, 0], rtol=1e-13, atol=1e-13)


def test_cnn_output_scale():
    x = images(3)
    a = CNN(1, 4, 1, image_shape=(6, 6), pooling="vanilla", seed=0)
    b = CNN(1, 4, 1, image_shape=(6, 6), pooling="vanilla", output_scale=1 / 6, seed=0)
    with torch.no_grad():
        torch.testing.assert_close(b(x), a(x) / 6, rtol=1e-14, atol=0)


def test_cnn_repr_is_the_constructor_call():
    net = CNN(1, 4, 2, image_shape=(6, 6), pooling="vanilla", filter_size=5, parameterization="standard",
              output_scale=0.5, outputs=3, seed=4, dtype=torch.float32)
    again = eval(repr(net), {"CNN": CNN, "torch": torch})
    assert repr(again) == repr(net)
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), again.parameters()))


@pytest.mark.parametrize("shape", [(6,), (6, 0), (0, 0), (6, 6, 6), (6.0, 6), "66", (True, 6), 6])
def test_cnn_image_shape_must_be_a_pair_of_positive_ints(shape):
    with pytest.raises(ValueError, match="image_shape must be a pair of positive ints"):
        CNN(1, 4, 1, image_shape=shape, seed=0)


def test_cnn_validation():
    with pytest.raises(ValueError, match="depth must be >= 1"):
        CNN(1, 4, 0, image_shape=(5, 5), seed=0)
    with pytest.raises(ValueError, match="pooling must be one of 'gap', 'vanilla'"):
        CNN(1, 4, 1, image_shape=(5, 5), pooling="max", seed=0)
    with pytest.raises(ValueError, match="parameterization must be one of"):
        CNN(1, 4, 1, image_shape=(5, 5), parameterization="muP", seed=0)
    with pytest.raises(ValueError, match="output_scale must be finite and nonzero"):
        CNN(1, 4, 1, image_shape=(5, 5), output_scale=0, seed=0)


@pytest.mark.parametrize("pooling", ["gap", "vanilla"])
@pytest.mark.parametrize("shape", [(1, 6, 6), (3, 5, 5), (1, 5)])
def test_cnn_mismatched_image_shape_is_refused(pooling, shape):
    """GAP ignored another image size (vanilla failed in einsum): both refuse images not of image_shape."""
    net = CNN(1, 4, 1, image_shape=(5, 5), pooling=pooling, seed=0)
    with pytest.raises(ValueError, match=r"x must have shape \(n, in_channels, H, W\) = \(n, 1, 5, 5\)"):
        net(torch.ones(2, *shape, dtype=torch.float64))


@pytest.mark.parametrize("pooling", ["gap", "vanilla"])
@pytest.mark.parametrize("q", [2, 4])
def test_cnn_even_filter_size_is_refused_not_another_architecture(pooling, q):
    with pytest.raises(ValueError, match=f"filter_size must be odd .*got {q}"):
        CNN(1, 4, 1, image_shape=(6, 6), filter_size=q, pooling=pooling, seed=0)


def test_mlp_wrong_number_of_features_is_refused():
    """It was torch's "mat1 and mat2 shapes cannot be multiplied"."""
    net = MLP(3, 4, 1, seed=0)
    for x in (torch.ones(2, 5, dtype=torch.float64), torch.ones(3, dtype=torch.float64)):
        with pytest.raises(ValueError, match=r"x must have shape \(n, d_in=3\)"):
            net(x)


@pytest.mark.parametrize("bad", [float("nan"), np.float32("nan"), float("inf"), -float("inf")])
def test_output_scale_nan_is_refused(bad):
    with pytest.raises(ValueError, match="output_scale must be finite and nonzero"):
        MLP(3, 4, 1, output_scale=bad, seed=0)
    with pytest.raises(ValueError, match="output_scale must be finite and nonzero"):
        CNN(1, 4, 1, image_shape=(5, 5), output_scale=bad, seed=0)


def test_mlp_calls_its_activation_through_the_public_call():
    """A numpy ufunc is wrapped in an Activation; the network calls activation(z), its __call__ (which
    handles tensors that require grad), never a numpy path of its own."""
    calls = []

    class Spy(nk.Quadrature):
        def __call__(self, z):
            calls.append(z.requires_grad)
            return super().__call__(z)

    net = MLP(3, 4, 2, activation=Spy(torch.tanh), seed=0)
    x = torch.ones(2, 3, dtype=torch.float64)
    net(x).sum().backward()
    assert calls == [True, True]


def test_mlp_with_a_numpy_ufunc_activation_trains_like_torch_tanh():
    """MLP(activation=np.tanh) failed with "Can't call numpy() on Tensor that requires grad"; its output
    and gradients must be those of the same network with torch.tanh."""
    x = torch.from_numpy(sphere(3, d=3))
    grads = []
    for act in (np.tanh, torch.tanh):
        net = MLP(3, 5, 2, activation=act, seed=0)
        out = net(x)
        out.sum().backward()
        grads.append((out.detach(), [p.grad for p in net.parameters()]))
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=1e-12, atol=1e-12)
    for a, b in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
