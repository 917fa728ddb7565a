"""Fields every secure-aggregation benchmark row carries, computed one way.

Two errors are reported, named for what they measure:

* ``max_abs_error_sum``: the largest coordinate error of the weighted *sum*
  ``Σ w_i x_i`` the server recovers, against the float64 plaintext sum;
* ``max_abs_error_average``: the same for the weighted *average*
  ``Σ w_i x_i / Σ w_i`` (what the global model moves by). The total weight is
  exact, so the average's error is the sum's divided by ``Σ w_i``.

And the ring each run used, with the rule that picked it: ``k`` bits
(``secagg-bits``); with ``n`` summands each site may contribute integers up
to ``L = ⌊(2^(k-1) − 1) / n⌋`` (so no sum of ``n`` wraps), which sets the scale
``L / (c · W_max)`` and the quantisation step ``c · W_max / L`` of one site's
weighted value (clip ``c``, weight bound ``W_max``). Stochastic rounding
moves each site's coordinate by less than one step, so the sum's error is
below ``n`` steps (unbiased, typically ``√n`` steps).
"""

from __future__ import annotations

from fedsec.crypto.quantize import Quantizer


def ring_fields(
    bits: int, clip: float, max_weight: int, summands: int
) -> dict[str, float | int | str]:
    """The ring of a run and why: bits, levels per site, step, error bound."""
    q = Quantizer(clip, bits, max_weight, summands)
    step = 1.0 / q.scale
    return {
        "ring_bits": bits,
        "ring_levels_per_site": q.level_bound,
        "quantisation_step": step,
        "sum_error_bound": summands * step,
        "ring_rule": (
            f"L = floor((2^{bits - 1} - 1) / n={summands}) = {q.level_bound} levels "
            f"per site for c*W_max = {clip:g}*{max_weight}; step = c*W_max/L"
        ),
    }


def error_fields(sum_error: float, total_weight: float) -> dict[str, float]:
    """``max_abs_error_sum`` and ``max_abs_error_average`` of one run."""
    return {
        "max_abs_error_sum": sum_error,
        "max_abs_error_average": sum_error / total_weight,
    }
