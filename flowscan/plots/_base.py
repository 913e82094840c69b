r"""What the figures share: matplotlib on the Agg backend, histogram edges."""

from __future__ import annotations

import numpy as np


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def hist_edges(reference: np.ndarray, bins: int) -> np.ndarray:
    return np.linspace(*np.quantile(reference, [0.001, 0.999]), bins + 1)
