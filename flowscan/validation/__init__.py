r"""Is a model good enough? Two-sample metrics against their noise floor."""

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
    "compare",
    "correlation_distance",
    "hpdi",
    "hpdi_error",
    "ks_test",
    "sliced_wasserstein",
    "validation_table",
]
