"""Secure federated statistics: what a site sums, how it travels, what is released.

Flower-free, like every package under ``fedsec`` except ``fedsec.flower``:
:mod:`~fedsec.analytics.layout` (the quantities of a schema),
:mod:`~fedsec.analytics.local` (a site's integers),
:mod:`~fedsec.analytics.digits` (exact sums in the secure-aggregation ring),
:mod:`~fedsec.analytics.noise` (optional distributed DP),
:mod:`~fedsec.analytics.result` (the released statistics) and
:mod:`~fedsec.analytics.report` (JSON, Markdown, PNG).
"""

from fedsec.analytics.digits import DigitLayout
from fedsec.analytics.layout import Layout, Quantity, Stat
from fedsec.analytics.local import site_quantities
from fedsec.analytics.noise import StatsNoise, magnitudes
from fedsec.analytics.result import ColumnSummary, GlobalStatistics, summarise

__all__ = [
    "ColumnSummary",
    "DigitLayout",
    "GlobalStatistics",
    "Layout",
    "Quantity",
    "Stat",
    "StatsNoise",
    "magnitudes",
    "site_quantities",
    "summarise",
]
