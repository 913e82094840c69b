r"""Studies built from the library: the Breit-Wigner bump hunt (`bump_hunt`)."""

from . import bump_hunt

__all__ = ["bump_hunt"]
