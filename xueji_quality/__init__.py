"""xueji-quality: duplicate and error checks (查重查错) for student registration rosters."""

__version__ = "0.1.0"
