"""ntklib: neural tangent kernels, exactly: the library behind the NTK Lectures book.

**Scope.**

* :mod:`ntklib.activations`: activations and their duals (Gaussian expectations), with closed forms
  for ReLU^k (arc-cosine kernels), step, erf, sin, cos, identity and Gauss–Hermite quadrature for any
  other callable;
* :mod:`ntklib.kernels`: the NNGP and NTK of deep fully connected networks (Arora et al. 2019),
  mixed activations, biases, and their unit-sphere forms kappa(u);
* :mod:`ntklib.sphere`: multiplicities, Legendre/Gegenbauer polynomials and Funk–Hecke eigenvalues
  of dot-product kernels on the sphere, accurate far into the tail, and the sphere-kernel protocol;
* :mod:`ntklib.decay`: Gram-matrix spectra, aliasing on the circle and decay-exponent fits;
* :mod:`ntklib.classic`: Laplace, Gaussian, Matérn and exponential-power kernels;
* :mod:`ntklib.data`: seeded points on spheres and circles;
* :mod:`ntklib.networks`: finite networks (MLP, CNN) in the NTK, standard and mean-field
  parameterizations;
* :mod:`ntklib.empirical`: their empirical NTK/NNGP;
* :mod:`ntklib.training`: full-batch GD, minibatch SGD and Adam with a history (loss, parameter
  movement, kernel drift);
* :mod:`ntklib.regression`: kernel (ridge) regression and kernel gradient flow;
* :mod:`ntklib.book`: the chapters' small helpers (the ``NTK_SCALE`` knob, the relative Frobenius
  error, cosine Gram matrices), as ``nk.book.scale()`` and so on;
* :mod:`ntklib.progress`: progress bars drawn where a person watches (a notebook cell or a terminal),
  never into a published page.

Arrays in, arrays out: numpy gives numpy, a torch tensor gives a tensor on its device; float64 unless
asked. The package never imports matplotlib.

>>> import ntklib as nk
>>> float(nk.kappa(1.0, depth=2))
3.0
"""
from .activations import (
    ACTIVATION_NAMES,
    Activation,
    Cos,
    Erf,
    Identity,
    Quadrature,
    ReLUk,
    Sin,
    arc_cosine_J,
    cos,
    erf,
    get_activation,
    hermite_coefficients,
    identity,
    relu,
    sin,
    step,
)
from .kernels import kappa, nngp, ntk, resolve_layers
from . import book, classic, data, decay, empirical, networks, regression, sphere, training
from .cntk import cntk, cntk_grid, cntk_pixel_pairs
from .networks import CNN, MLP
from .empirical import EmpiricalNTK, empirical_nngp, empirical_ntk
from .training import History, train
from .regression import IllConditionedWarning, gradient_flow, kernel_regression
from .progress import progress_bar
from .classic import ExpPower, Gaussian, Laplace, Matern
from .sphere import (
    SphereKernel,
    UnreliableEigenvalueWarning,
    degree_of_index,
    expand_multiplicities,
    legendre,
    multiplicity,
    sphere_eigenvalues,
)
from .decay import aliased_eigenvalues, fit_decay, gram_eigenvalues, local_exponents

__version__ = "0.1.0"

__all__ = [
    "ACTIVATION_NAMES",
    "Activation",
    "Cos",
    "Erf",
    "Identity",
    "Quadrature",
    "ReLUk",
    "Sin",
    "arc_cosine_J",
    "cos",
    "erf",
    "get_activation",
    "hermite_coefficients",
    "identity",
    "kappa",
    "nngp",
    "ntk",
    "relu",
    "sin",
    "step",
    "resolve_layers",
    "SphereKernel",
    "UnreliableEigenvalueWarning",
    "legendre",
    "multiplicity",
    "sphere_eigenvalues",
    "expand_multiplicities",
    "degree_of_index",
    "aliased_eigenvalues",
    "fit_decay",
    "gram_eigenvalues",
    "local_exponents",
    "Laplace",
    "Gaussian",
    "Matern",
    "ExpPower",
    "book",
    "classic",
    "data",
    "decay",
    "sphere",
    "MLP",
    "CNN",
    "empirical_ntk",
    "empirical_nngp",
    "EmpiricalNTK",
    "networks",
    "train",
    "History",
    "training",
    "kernel_regression",
    "gradient_flow",
    "IllConditionedWarning",
    "empirical",
    "regression",
    "cntk",
    "cntk_grid",
    "cntk_pixel_pairs",
    "progress_bar",
]
