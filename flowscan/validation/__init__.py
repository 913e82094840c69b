r"""Is a model good enough? Two-sample metrics against their noise floor, closure of
fits over theta, and whether a fit found the global minimum."""

from .closure import closure, interpolation_error, leave_out, model_bias
from .global_minimum import DenseMinimum, dense_minimum
from .metrics import (
    Metric,
    auc,
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
    "DenseMinimum",
    "Metric",
    "auc",
    "classifier_auc",
    "closure",
    "compare",
    "correlation_distance",
    "dense_minimum",
    "hpdi",
    "hpdi_error",
    "interpolation_error",
    "ks_test",
    "leave_out",
    "model_bias",
    "sliced_wasserstein",
    "validation_table",
]
