"""ntklib: neural tangent kernels, exactly: the library behind the NTK Lectures book.

**Scope.**

* :mod:`ntklib.activations`: activations and their duals (Gaussian expectations), with closed forms
  for ReLU^k (arc-cosine kernels), step, erf, sin, cos, identity and Gauss–Hermite quadrature for any
  other callable;
* :mod:`ntklib.kernels`: the NNGP and NTK of deep fully connected networks (Arora et al. 2019),
  mixed activations, per-layer biases, their unit-sphere forms kappa(u), the one layer step, and the
  kernel objects ``NTK``/``NNGP``;
* :mod:`ntklib.convolutional`: the CNTK (vanilla and global average pooling), object ``CNTK``;
* :mod:`ntklib.spectra`: multiplicities, Legendre/Gegenbauer polynomials and Funk–Hecke eigenvalues
  of dot-product kernels on the sphere, accurate far into the tail; Gram-matrix spectra and
  decay-exponent fits;
* :mod:`ntklib.classic`: Laplace, Gaussian, Matérn and exponential-power kernels;
* :mod:`ntklib.data`: seeded points on spheres and circles;
* :mod:`ntklib.empirical`: finite networks (NTK, standard and mean-field parameterizations) and their
  empirical NTK/NNGP;
* :mod:`ntklib.regression`: kernel (ridge) regression and kernel gradient flow;
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
    ReLUk,
    Sin,
    arc_cosine_J,
    get_activation,
    hermite_coefficients,
    relu,
)
from .kernels import NNGP, NTK, kappa, nngp, ntk
from . import classic, data, empirical, regression, spectra
from .convolutional import CNTK, cntk, cntk_grid, cntk_pixel_pairs
from .empirical import CNN, MLP, empirical_nngp, empirical_ntk
from .regression import IllConditionedWarning, gradient_flow, kernel_regression
from .progress import progress_bar
from .classic import ExpPower, Gaussian, Laplace, Matern
from .spectra import (
    SphereKernel,
    UnreliableEigenvalueWarning,
    aliased_eigenvalues,
    fit_decay,
    gram_eigenvalues,
    legendre,
    multiplicity,
    sphere_eigenvalues,
)

__version__ = "0.1.0"

__all__ = [
    "ACTIVATION_NAMES",
    "Activation",
    "Cos",
    "Erf",
    "Identity",
    "ReLUk",
    "Sin",
    "arc_cosine_J",
    "get_activation",
    "hermite_coefficients",
    "kappa",
    "nngp",
    "ntk",
    "NTK",
    "NNGP",
    "relu",
    "SphereKernel",
    "UnreliableEigenvalueWarning",
    "legendre",
    "multiplicity",
    "sphere_eigenvalues",
    "aliased_eigenvalues",
    "fit_decay",
    "gram_eigenvalues",
    "Laplace",
    "Gaussian",
    "Matern",
    "ExpPower",
    "classic",
    "data",
    "spectra",
    "MLP",
    "CNN",
    "empirical_ntk",
    "empirical_nngp",
    "kernel_regression",
    "gradient_flow",
    "IllConditionedWarning",
    "empirical",
    "regression",
    "cntk",
    "CNTK",
    "cntk_grid",
    "cntk_pixel_pairs",
    "progress_bar",
]
