"""The national cross-province duplicate check (全国查重), both ends and the middle.

Provinces do not exchange rosters; each sends the national platform keyed tokens instead of
identities, the platform links all provinces on a Dask cluster, and each province gets back the
cross-province duplicates of its own records (身份证号重复：外省已注册有学籍).

- ``tokens``: the national key and HMAC tokens of a roster's IDs, typo neighbours, names and
  readings;
- ``exchange``: a province's exchange file from a published run (``export_national``);
- ``link``: the national linkage on dask.distributed (``national_link``), returns per province
  and the national summary; its stages in ``link_tokens`` (token and record rows),
  ``link_pairs`` (candidate pairs and decisions), ``link_returns`` (the returns files) and
  ``link_workers`` (memory and busy time per worker);
- ``returns``: a returns file read back into the province's problem rows (DUP_CROSS_PROVINCE).

Only ``link`` imports Dask, and only where it runs.
"""
