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

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def text_array(values: pd.Series | pd.Index | pa.Array | Iterable[str]) -> pa.Array:
    """The values as one Arrow string array (no copy for Arrow-backed text)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        return values if values.type == pa.string() else values.cast(pa.string())
    if isinstance(values, (set, frozenset)):
        values = list(values)
    if isinstance(values, (pd.Series, pd.Index)):
        values = values.array
    array = pa.array(values, type=pa.string(), from_pandas=True)
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def is_in(column: pd.Series, values: pd.Series | pd.Index | pa.Array | Iterable[str]) -> pd.Series:
    """Boolean Series on ``column``'s index: the value is one of ``values`` (missing: False)."""
    hit = pc.is_in(text_array(column), value_set=text_array(values), skip_nulls=True)
    mask = hit.fill_null(False).to_numpy(zero_copy_only=False)
    return pd.Series(mask, index=column.index, dtype=bool)
