r"""Is a model good enough? Two-sample metrics against their noise floor, and closure
of fits over theta."""

from .closure import closure, interpolation_error, leave_out
from .metrics import (
    Metric,
    classifier_auc,
    compare,
    correlation_distance,
    hpdi,
    hpdi_error,
    ks_test,
    sliced_wasserstein,
)
from .table import validation_table

__all__ = [
    "Metric",
    "classifier_auc",
    "closure",
    "compare",
    "correlation_distance",
    "hpdi",
    "hpdi_error",
    "interpolation_error",
    "ks_test",
    "leave_out",
    "sliced_wasserstein",
    "validation_table",
]
