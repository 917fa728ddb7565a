"""Secure federated statistics: what a site sums, how it travels, what is released.

Flower-free, like every package under ``fedsec`` except ``fedsec.flower``:
:mod:`~fedsec.analytics.layout` (the quantities of a schema),
:mod:`~fedsec.analytics.local` (a site's integers),
:mod:`~fedsec.analytics.digits` (exact sums in the secure-aggregation ring),
:mod:`~fedsec.analytics.noise` (optional distributed DP),
:mod:`~fedsec.analytics.result` (the released statistics) and
:mod:`~fedsec.analytics.report` (JSON, Markdown, PNG).

Submodules are imported explicitly: :mod:`~fedsec.analytics.noise` and
:mod:`~fedsec.analytics.digits` need neither pandas nor scikit-learn, so a
ClientApp that only unmasks does not import them.
"""
