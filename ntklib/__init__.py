"""ntklib: neural tangent kernels, exactly: the library behind the NTK Lectures book.

**Scope**, one job per module:

* :mod:`ntklib.activations`: activations and their duals (Gaussian expectations), with closed forms
  for ReLU^k (arc-cosine kernels), step, the two-slope ReLUs (leaky ReLU, abs), sign, GELU, erf,
  sin, cos, identity, written once for float64/torch and mpmath, and a two-dimensional quadrature
  that estimates its own error for any other callable (:mod:`ntklib.quadrature`);
* :mod:`ntklib.kernels`: the NNGP and NTK of deep fully connected networks (Arora et al. 2019),
  mixed activations, per-layer biases, their unit-sphere forms kappa(u), the one layer step every
  recursion uses, and the kernel objects ``NTK``/``NNGP``;
* :mod:`ntklib.convolutional`: the CNTK (vanilla and global average pooling), object ``CNTK``;
* :mod:`ntklib.sphere`: multiplicities, Legendre/Gegenbauer polynomials and Funk–Hecke eigenvalues
  of dot-product kernels on the sphere, accurate far into the tail, and the sphere-kernel protocol;
* :mod:`ntklib.decay`: Gram-matrix spectra, aliasing on the circle and decay-exponent fits;
* :mod:`ntklib.classic`: Laplace, Gaussian, Matérn and exponential-power kernels;
* :mod:`ntklib.networks`: finite networks (MLP, CNN) in the NTK, standard and mean-field
  parameterizations;
* :mod:`ntklib.empirical`: their empirical NTK/NNGP;
* :mod:`ntklib.training`: full-batch GD, minibatch SGD and Adam with a history (loss, parameter
  movement, kernel drift);
* :mod:`ntklib.regression`: kernel (ridge) regression and kernel gradient flow;
* :mod:`ntklib.data`: seeded points on spheres and circles, the digits, CIFAR-10, whitening;
* :mod:`ntklib.book`: the chapters' small helpers (the ``NTK_SCALE`` knob, the relative Frobenius
  error, cosine Gram matrices), as ``nk.book.scale()`` and so on;
* :mod:`ntklib.progress`: progress bars drawn where a person watches (a notebook cell or a terminal),
  never into a published page.

Every kernel object (``NTK``, ``NNGP``, ``CNTK``, ``EmpiricalNTK``, the classic kernels) is called
as ``k(X, Y=None)``, has ``k.diag(X)`` computed without the full matrix and a repr that reads back
as code; the sphere kernels among them also have ``k.kappa(u)`` (and ``k.kappa_mp(u)`` for the
high-precision spectra). Arrays in, arrays out: numpy gives numpy, a torch tensor gives a tensor on
its device; float64 unless asked. The package never imports matplotlib.

>>> import ntklib as nk
>>> float(nk.kappa(1.0, depth=2))
3.0
>>> nk.NTK(depth=2)
NTK(depth=2)
"""
from ._arrays import TooLargeError
from . import (
    activations,
    book,
    classic,
    convolutional,
    data,
    decay,
    empirical,
    kernels,
    networks,
    quadrature,
    regression,
    sphere,
    training,
)
from .activations import (
    ACTIVATION_NAMES,
    GELU,
    ABReLU,
    Activation,
    Cos,
    Erf,
    Identity,
    Quadrature,
    ReLUk,
    Sign,
    Sin,
    abrelu,
    arc_cosine_J,
    cos,
    erf,
    gelu,
    get_activation,
    hermite_coefficients,
    identity,
    leaky_relu,
    relu,
    sign,
    sin,
    step,
)
from .classic import ExpPower, Gaussian, Laplace, Matern
from .convolutional import CNTK, cntk, cntk_grid, cntk_pixel_pairs
from .decay import aliased_eigenvalues, fit_decay, gram_eigenvalues, local_exponents
from .empirical import EmpiricalNTK, empirical_nngp, empirical_ntk
from .kernels import NNGP, NTK, kappa, layer_step, nngp, ntk
from .networks import CNN, MLP
from .progress import progress_bar
from .quadrature import QuadratureAccuracyWarning
from .regression import IllConditionedWarning, gradient_flow, kernel_regression
from .sphere import (
    SphereKernel,
    UnreliableEigenvalueWarning,
    degree_of_index,
    expand_multiplicities,
    legendre,
    multiplicity,
    sphere_eigenvalues,
)
from .training import History, train

__version__ = "0.1.0"

__all__ = [
    # kernels of infinitely wide networks: functions and kernel objects
    "ntk",
    "nngp",
    "kappa",
    "NTK",
    "NNGP",
    "layer_step",
    "cntk",
    "cntk_grid",
    "cntk_pixel_pairs",
    "CNTK",
    # activations and their duals
    "Activation",
    "Quadrature",
    "ReLUk",
    "Erf",
    "Sin",
    "Cos",
    "Identity",
    "ABReLU",
    "Sign",
    "GELU",
    "relu",
    "step",
    "erf",
    "sin",
    "cos",
    "identity",
    "abrelu",
    "leaky_relu",
    "sign",
    "gelu",
    "get_activation",
    "ACTIVATION_NAMES",
    "arc_cosine_J",
    "QuadratureAccuracyWarning",
    "hermite_coefficients",
    # classic kernels
    "Laplace",
    "Gaussian",
    "Matern",
    "ExpPower",
    # spectra on the sphere
    "SphereKernel",
    "sphere_eigenvalues",
    "multiplicity",
    "legendre",
    "expand_multiplicities",
    "degree_of_index",
    "UnreliableEigenvalueWarning",
    # Gram spectra and decay rates
    "gram_eigenvalues",
    "aliased_eigenvalues",
    "fit_decay",
    "local_exponents",
    # finite networks, their empirical kernels, training
    "MLP",
    "CNN",
    "empirical_ntk",
    "empirical_nngp",
    "EmpiricalNTK",
    "train",
    "History",
    # kernel regression
    "kernel_regression",
    "gradient_flow",
    "IllConditionedWarning",
    # progress bars
    "progress_bar",
    # a call refused before it starts (past a documented size or cost limit)
    "TooLargeError",
    # modules
    "activations",
    "quadrature",
    "kernels",
    "convolutional",
    "sphere",
    "decay",
    "classic",
    "networks",
    "empirical",
    "training",
    "regression",
    "data",
    "book",
]
