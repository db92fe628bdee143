"""Whether each value of a text column is one of a set of texts, as one Arrow kernel.

pandas' ``Series.isin`` on Arrow-backed text (the dtype a staged roster has) first turns every
value of the set into an Arrow scalar in Python, one call per value: a county's half a million
record ids, or the six thousand codes of GB/T 2260 on every chunk of a province. Here the set is
one Arrow array and the test Arrow's ``is_in``; a missing value is never in a set.

>>> import pandas as pd
>>> is_in(pd.Series(["440103", None, "x"], dtype="string[pyarrow]"), ["440103", "440104"]).tolist()
[True, False, False]
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xueji_quality.standards.fixed_width import as_text


def _strings(values: pd.Series | pd.Index | np.ndarray | pa.Array | Iterable[str]) -> pa.Array:
    """The values as one Arrow string array (no copy for Arrow-backed text)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        return values if values.type == pa.string() else values.cast(pa.string())
    if not isinstance(values, pd.Series):
        values = pd.Series(list(values) if isinstance(values, set | frozenset) else values)
    array = pa.array(as_text(values).array, type=pa.string())
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def is_in(
    column: pd.Series, values: pd.Series | pd.Index | np.ndarray | pa.Array | Iterable[str]
) -> pd.Series:
    """Boolean Series on ``column``'s index: the value is one of ``values`` (missing: False)."""
    hit = pc.is_in(_strings(column), value_set=_strings(values), skip_nulls=True)
    mask = hit.fill_null(False).to_numpy(zero_copy_only=False)
    return pd.Series(mask, index=column.index, dtype=bool)
