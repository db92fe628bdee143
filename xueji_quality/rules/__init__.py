"""Roster rules (查错): the vectorised checks, their GX custom expectations and the catalogue.

Importing ``xueji_quality.rules.expectations`` registers the custom expectations with Great
Expectations (``validate_run`` does, before any suite runs). The package itself does not, so a
command that only needs the checks (``police-request``) starts without loading GX.
"""
