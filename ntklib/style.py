"""How the book's figures look: one color per activation, one line style per kernel, one size.

Plain data, so ntklib itself never imports matplotlib. A chapter applies ``RC`` once
(``plt.rcParams.update(RC)``) and passes ``COLORS[activation.name]`` and ``LINESTYLES[kernel]`` to
``plot``. The same activation has the same color in every figure of the book, whatever the kernel,
depth or dimension, and no two activations share one; the NTK and the NNGP of one activation differ
by line style, never by color.

>>> import ntklib as nk
>>> from ntklib.style import COLORS, LINESTYLES
>>> COLORS[nk.relu(2).name], COLORS[nk.step().name], LINESTYLES["nngp"]
('#2ca02c', '#ff7f0e', '--')
"""

#: matplotlib-compatible hex colors keyed by the activation's ``.name`` (not its repr:
#: ``COLORS[nk.relu(2).name]``, i.e. ``COLORS["relu2"]``), one for every name in
#: ``nk.ACTIVATION_NAMES`` (``"linear"`` is the identity's alias and has its ``"identity"`` color;
#: ReLU powers beyond 3 have none), and, for the classic kernels, one per family
COLORS = {
    "relu": "#1f77b4",
    "step": "#ff7f0e",
    "relu2": "#2ca02c",
    "relu3": "#17becf",
    "erf": "#d62728",
    "sin": "#9467bd",
    "cos": "#8c564b",
    "identity": "#7f7f7f",
    "tanh": "#e377c2",
    "gelu": "#bcbd22",
    "softplus": "#98df8a",
    "sigmoid": "#ff9896",
    "abs": "#393b79",
    "leaky_relu": "#637939",
    "sign": "#843c39",
    "laplace": "#000000",
    "gaussian": "#aec7e8",
    "matern": "#c5b0d5",
    "exp_power": "#8c8c8c",
}

#: line style per kernel of a network
LINESTYLES = {"ntk": "-", "nngp": "--"}

#: The matplotlib rcParams of every figure. Figures are drawn at 100 dpi and no wider than 7.5 in, so
#: the page column (about 750 px) shows them at their natural size and 10-11 pt text stays legible.
RC = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "figure.constrained_layout.use": True,
    "font.size": 11,
    "axes.titlesize": 11,
    "axes.labelsize": 11,
    "legend.fontsize": 10,
    "legend.frameon": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
