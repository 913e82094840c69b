r"""flowscan: signal-model parameter scans with conditional normalizing flows.

Subpackages: `flowscan.flows` (density models and their training), `flowscan.samples`
(where events come from), `flowscan.scanner` (the likelihood and the optimizers),
`flowscan.stats` (profiles, tests, limits, pseudo-experiments), `flowscan.validation`
(is a model good enough), `flowscan.plots`, `flowscan.studies`; `flowscan.io` reads
and writes files; `flowscan.cli` is the `flowscan` command. docs/layout.md has the map.
"""

from importlib.metadata import PackageNotFoundError, version

from .constraints import Constraint
from .variables import Variable

try:
    __version__ = version("flowscan")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["Constraint", "Variable", "__version__"]
