"""One kernel contract, one list of checks run over every kernel (scikit-learn's kernel tests, our way).

Every kernel of ntklib takes ``(X, Y=None)`` (``None`` meaning X, then exactly symmetric), keeps the
input's kind and device (numpy in, numpy out; a tensor in, a tensor out on its device), computes in
float64 unless asked (``dtype=``), and gives a PSD matrix with ``K(Y, X) = K(X, Y)^T`` that does not
depend on how it is tiled. Kernel *objects* also have ``diag(X)`` and a repr that reads back as code;
dot-product kernels on the sphere have ``kappa(u)`` (and ``kappa_mp(u)`` for the high-precision path).

Add a kernel to ``KERNELS`` and it gets every check. Plain functions (``nk.ntk`` ...) are wrapped;
the object-only checks skip them with the reason; their kernel objects (``nk.NTK`` ...) are listed too.
"""
import inspect
from dataclasses import dataclass
from functools import partial

import mpmath
import numpy as np
import pytest
import torch

import ntklib as nk

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@dataclass
class Case:
    """A kernel under test: ``kernel(X, Y=None, **kw)`` and what it takes."""

    id: str
    kernel: object
    inputs: str = "points"        # "points" (n, 3) or "images" (n, 1, 4, 4)
    tile_arg: str | None = None   # the keyword that sets its tile size, if it tiles
    tile_sizes: tuple = ()        # tile sizes to compare with the default (small ones: many partial tiles)
    cpu_only: bool = False        # computes where its parameters live (a network on the CPU)

    def __call__(self, X, Y=None, **kw):
        return self.kernel(X, Y, **kw)

    @property
    def takes_dtype(self):
        return "dtype" in inspect.signature(self.kernel).parameters

    def __repr__(self):
        return self.id


def wrap(fn, **params):
    """A kernel function with its parameters bound; it takes ``dtype=`` exactly when ``fn`` does."""
    if "dtype" in inspect.signature(fn).parameters:
        return lambda X, Y=None, dtype=None, **kw: fn(X, Y, dtype=dtype, **params, **kw)
    return lambda X, Y=None, **kw: fn(X, Y, **params, **kw)


NET = nk.MLP(3, width=16, depth=2, seed=0)

KERNELS = [
    Case("ntk", wrap(nk.ntk, depth=2), tile_arg="block_size", tile_sizes=(4, 7)),
    Case("nngp", wrap(nk.nngp, depth=2), tile_arg="block_size", tile_sizes=(4, 7)),
    Case("ntk-erf-bias", wrap(nk.ntk, depth=1, activation="erf", bias_var=0.3), tile_arg="block_size",
         tile_sizes=(5,)),
    Case("cntk-gap", wrap(nk.cntk, depth=2), inputs="images", tile_arg="pairs_per_block", tile_sizes=(1, 4)),
    Case("cntk-vanilla", wrap(nk.cntk, depth=2, pooling="vanilla"), inputs="images",
         tile_arg="pairs_per_block", tile_sizes=(1, 4)),
    Case("empirical_ntk", wrap(partial(nk.empirical_ntk, NET)), cpu_only=True),
    Case("empirical_ntk-jacobian", wrap(partial(nk.empirical_ntk, NET), method="jacobian"), tile_arg="chunk_size",
         tile_sizes=(2, 3), cpu_only=True),
    *[Case(repr(k), k) for k in (nk.Laplace(), nk.Gaussian(scale=0.7), nk.Matern(nu=1.5),
                                 nk.Matern(nu=2.5, scale=2.0), nk.ExpPower(gamma=0.5))],
    # the kernel objects, one line each
    Case("NTK", nk.NTK(depth=2), tile_arg="block_size", tile_sizes=(4, 7)),
    Case("NNGP", nk.NNGP(depth=2), tile_arg="block_size", tile_sizes=(4, 7)),
    Case("NTK-per-layer-bias", nk.NTK(depth=2, activation=["erf", "relu"], bias_var=[0.1, 0.0, 0.4]),
         tile_arg="block_size", tile_sizes=(5,)),
    Case("CNTK", nk.CNTK(depth=1), inputs="images", tile_arg="pairs_per_block", tile_sizes=(1, 4)),
    Case("CNTK-vanilla", nk.CNTK(depth=2, pooling="vanilla"), inputs="images", tile_arg="pairs_per_block",
         tile_sizes=(1, 4)),
    # the closed forms of issue 22, each in one layer of a mix (the NTK object runs the object checks)
    Case("NTK-gelu-leaky-abs-sign", nk.NTK(depth=4, activation=["gelu", nk.leaky_relu(0.2), "abs", "sign"],
                                           bias_var=0.1), tile_arg="block_size", tile_sizes=(4,)),
    Case("nngp-gelu", wrap(nk.nngp, depth=2, activation="gelu"), tile_arg="block_size", tile_sizes=(5,)),
    Case("EmpiricalNTK", nk.EmpiricalNTK(NET), cpu_only=True),
    Case("EmpiricalNTK-jacobian", nk.EmpiricalNTK(NET, method="jacobian", chunk_size=2), cpu_only=True),
]


def inputs(case, seed=0):
    """X (with a repeated row: a singular, still PSD Gram matrix) and Y, numpy float64."""
    rng = np.random.default_rng(seed)
    shape = (3,) if case.inputs == "points" else (1, 4, 4)
    X = rng.standard_normal((9, *shape))
    X[-1] = X[0]
    return X, rng.standard_normal((4, *shape))


def needs(case, attr, what):
    if not hasattr(case.kernel, attr):
        hint = ("a plain function: list its kernel object in KERNELS" if isinstance(case.kernel, type(lambda: 0))
                else "not part of its contract")
        pytest.skip(f"{case.id} has no {attr} ({what}); {hint}")
    return getattr(case.kernel, attr)


# ------------------------------------------------------------------------------------------------
# every kernel
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", KERNELS, ids=repr)
def test_symmetric_exactly(case):
    X, _ = inputs(case)
    K = case(X)
    assert K.shape == (len(X), len(X))
    assert np.array_equal(K, K.T)


@pytest.mark.parametrize("case", KERNELS, ids=repr)
def test_swapping_arguments_transposes(case):
    X, Y = inputs(case)
    KXY, KYX = case(X, Y), case(Y, X)
    assert KXY.shape == (len(X), len(Y))
    np.testing.assert_allclose(KYX, KXY.T, rtol=1e-12, atol=1e-14 * np.abs(KXY).max())


@pytest.mark.parametrize("case", KERNELS, ids=repr)
def test_positive_semidefinite(case):
    X, Y = inputs(case)
    lam = np.linalg.eigvalsh(case(np.concatenate([X, Y])))
    assert lam[0] >= -1e-12 * lam[-1]


@pytest.mark.parametrize("case", KERNELS, ids=repr)
def test_cross_kernel_is_the_block_of_the_joint_kernel(case):
    X, Y = inputs(case)
    K = case(np.concatenate([X, Y]))
    np.testing.assert_allclose(case(X, Y), K[:len(X), len(X):], rtol=1e-12, atol=1e-14 * np.abs(K).max())


@pytest.mark.parametrize("case", KERNELS, ids=repr)
def test_numpy_in_numpy_out(case):
    X, Y = inputs(case)
    for K in (case(X), case(X, Y), case(X.tolist())):
        assert isinstance(K, np.ndarray) and K.dtype == np.float64


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", KERNELS, ids=repr)
def test_tensor_in_tensor_out_on_its_device(case, device):
    X, Y = inputs(case)
    ref = case(X, Y)
    if case.cpu_only and device != "cpu":
        pytest.skip(f"{case.id} computes where its parameters live, the CPU")
    K = case(torch.from_numpy(X).to(device), torch.from_numpy(Y).to(device))
    assert isinstance(K, torch.Tensor) and K.device.type == device and K.dtype == torch.float64
    np.testing.assert_allclose(K.cpu().numpy(), ref, rtol=1e-12, atol=1e-14 * np.abs(ref).max())


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
@pytest.mark.parametrize("case", KERNELS, ids=repr)
def test_dtype_float64_unless_asked(case, dtype):
    """A float32 input is computed in float64 by default; asking for a dtype gives that dtype."""
    X, _ = inputs(case)
    x = torch.from_numpy(X).to(dtype)
    ref = case(x.double().numpy())
    assert case(x).dtype == torch.float64
    if not case.takes_dtype:
        pytest.skip(f"{case.id} takes no dtype= (it computes in its model's dtype)")
    K = case(x, dtype=dtype)
    assert K.dtype == dtype
    rtol = 1e-12 if dtype == torch.float64 else 1e-5
    np.testing.assert_allclose(K.double().numpy(), ref, rtol=rtol, atol=rtol * np.abs(ref).max())
    assert isinstance(case(x.numpy(), dtype=dtype), np.ndarray)


@pytest.mark.parametrize("case", KERNELS, ids=repr)
def test_tile_size_independence(case):
    if case.tile_arg is None:
        pytest.skip(f"{case.id} does not tile")
    X, Y = inputs(case)
    for args in ((X,), (X, Y)):
        ref = case(*args)
        for size in case.tile_sizes:
            np.testing.assert_allclose(case(*args, **{case.tile_arg: size}), ref, rtol=1e-14, atol=0,
                                       err_msg=f"{case.tile_arg}={size}")


# ------------------------------------------------------------------------------------------------
# kernel objects
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", KERNELS, ids=repr)
def test_diag_matches_the_full_matrix(case, device):
    diag = needs(case, "diag", "diag(X)")
    if case.cpu_only and device != "cpu":
        pytest.skip(f"{case.id} computes where its parameters live, the CPU")
    X, _ = inputs(case)
    d = diag(X)
    assert isinstance(d, np.ndarray) and d.shape == (len(X),) and d.dtype == np.float64
    np.testing.assert_allclose(d, np.diag(case(X)), rtol=1e-14, atol=0)
    dt = diag(torch.from_numpy(X).to(device))
    assert isinstance(dt, torch.Tensor) and dt.device.type == device
    np.testing.assert_allclose(dt.cpu().numpy(), d, rtol=1e-14, atol=0)


@pytest.mark.parametrize("case", KERNELS, ids=repr)
def test_repr_reads_back_as_code(case):
    if isinstance(case.kernel, type(lambda: 0)):
        pytest.skip(f"{case.id} is a plain function: its repr is no code; list its kernel object in KERNELS")
    again = eval(repr(case.kernel), vars(nk))
    assert again == case.kernel and hash(again) == hash(case.kernel) and repr(again) == repr(case.kernel)
    assert again != object()


# ------------------------------------------------------------------------------------------------
# dot-product kernels on the sphere
# ------------------------------------------------------------------------------------------------
U_GRID = np.array([-1.0, -0.999, -0.5, 0.0, 0.3, 0.9, 1 - 1e-9, 1.0])


@pytest.mark.parametrize("case", KERNELS, ids=repr)
def test_kappa_is_the_kernel_of_unit_vectors(case):
    kappa = needs(case, "kappa", "kappa(u): a dot-product kernel on the sphere")
    S = nk.data.sphere(12, 3, seed=3)
    np.testing.assert_allclose(kappa(nk.book.cosine_gram(S)), case(S), rtol=1e-7, atol=1e-12)
    out = kappa(torch.from_numpy(U_GRID))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    np.testing.assert_array_equal(out.numpy(), kappa(U_GRID))
    assert np.ndim(kappa(0.5)) == 0


@pytest.mark.parametrize("case", KERNELS, ids=repr)
def test_kappa_mp_agrees_with_kappa(case):
    kappa_mp = needs(case, "kappa_mp", "kappa_mp(u): the high-precision path")
    with mpmath.workdps(40):
        values = [kappa_mp(mpmath.mpf(float(u))) for u in U_GRID]
        assert all(isinstance(v, mpmath.mpf) for v in values)
        # at 40 digits the value is not that of 15 digits: the caller's precision is used
        assert kappa_mp(mpmath.mpf(1) / 3) != kappa_mp(mpmath.mpf(1 / 3))
    # float64 kappa carries the conditioning of the duals at rho = 1: the step/ReLU duals go like
    # 1 - sqrt(2 delta)/pi at rho = 1 - delta, so one rounding of a later layer's correlation moves them
    # by ~ eps / sqrt(delta) (the ReLU NTK at u = 1 - 1e-9: 2.5e-13; kappa_mp has no such rounding)
    eps = np.finfo(np.float64).eps
    rtol = 1e-14 + 2 * eps / np.sqrt(np.maximum(1 - np.abs(U_GRID), eps))
    got, want = np.array(values, dtype=float), case.kernel.kappa(U_GRID)
    assert np.all(np.abs(got - want) <= rtol * np.abs(want) + 1e-300), (got - want) / want
