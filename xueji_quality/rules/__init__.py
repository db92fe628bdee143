"""Roster rules (查错): the vectorised checks, their GX custom expectations and the catalogue.

Importing this package registers the custom expectations with Great Expectations.
"""

from xueji_quality.rules import expectations  # noqa: F401  (registers the expectations)
