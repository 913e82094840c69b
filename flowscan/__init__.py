r"""flowscan: signal-model parameter scans with conditional normalizing flows.

Subpackages: `flowscan.flows` (density models, training), `flowscan.toys` (data
generators), `flowscan.scanner` (likelihoods and optimizers).
"""

from importlib.metadata import PackageNotFoundError, version

from .variables import Variable

try:
    __version__ = version("flowscan")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["Variable", "__version__"]
