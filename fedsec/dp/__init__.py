"""Differential privacy: noise from a cryptographic source, accounting, Opacus glue.

Three modes share one accountant (:mod:`fedsec.dp.accounting`):

* local DP-SGD at each site (:mod:`fedsec.dp.opacus_glue`);
* distributed DP inside the secure sum (:mod:`fedsec.dp.distributed`);
* central DP on a trusted server (:mod:`fedsec.dp.central`).

Submodules are imported explicitly (``from fedsec.dp.distributed import
encode``) so that importing :mod:`fedsec.dp` does not pull in torch or Opacus.
See ``docs/dp.md``.
"""
