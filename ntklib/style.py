"""One color per activation (and per kernel family) for every figure of the book.

Plain data, so ntklib itself never imports matplotlib; chapters pass these to ``plt.plot(color=...)``.
"""

#: matplotlib-compatible hex colors, keyed by activation name (``repr`` of nk.relu(k) for k >= 2)
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
    "laplace": "#000000",
    "gaussian": "#aec7e8",
}
