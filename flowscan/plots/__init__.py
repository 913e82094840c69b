r"""Figures (matplotlib, Agg backend): fits, density models and statistics."""

from .fits import plot_contours, plot_convergence, plot_fit, plot_landscape, plot_profiles
from .models import plot_history, plot_marginals, plot_pairs, plot_theta_dependence
from .stats import (
    plot_closure,
    plot_exclusion,
    plot_impacts,
    plot_limits,
    plot_pulls,
    plot_q0,
    plot_q0_field,
)

__all__ = [
    "plot_closure",
    "plot_contours",
    "plot_convergence",
    "plot_exclusion",
    "plot_fit",
    "plot_history",
    "plot_impacts",
    "plot_landscape",
    "plot_limits",
    "plot_marginals",
    "plot_pairs",
    "plot_profiles",
    "plot_pulls",
    "plot_q0",
    "plot_q0_field",
    "plot_theta_dependence",
]
