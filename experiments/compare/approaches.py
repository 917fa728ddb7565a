"""The approaches the comparison report puts side by side: one entry each.

An entry says what an approach guarantees (stated from the code and
``docs/threat-model.md``) and where its measurements come from:

* :class:`FlowerRun` — run-config overrides on top of the report's base
  config, run in the real Flower simulation (``experiments.simulate``);
* :class:`ExternalResults` — rows another experiment writes (JSON lines);
  when the file is missing the report's row says "not measured: run …".

Adding an approach is one entry in :data:`APPROACHES`: the vertical MPC
training row became one (a :class:`FlowerRun` of ``vertical-model``) when
the vertical run mode arrived; an approach measured by another command (say
``python -m experiments.vertical``'s three party processes over mutual TLS)
is an :class:`ExternalResults` entry reading that command's JSON lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FlowerRun:
    """Measured in the Flower simulation with these run-config overrides.

    ``drops``: whether the report's dropping sites apply (a vertical run has
    no site outside its holders and parties to lose).
    """

    overrides: Mapping[str, Any] = field(default_factory=dict)
    drops: bool = True


@dataclass(frozen=True)
class ExternalResults:
    """Measured by another command that writes one JSON object per line.

    ``fields`` maps a report column (``accuracy``, ``seconds_per_round``,
    ``bytes_per_site_per_round``, ``epsilon``, ``time_to_target``,
    ``completed_rounds``, ``rounds``) to the key of that value in the last
    row of ``path`` whose ``match`` keys all have the given values.
    """

    path: str
    command: str
    fields: Mapping[str, str]
    match: Mapping[str, Any] = field(default_factory=dict)


Source = FlowerRun | ExternalResults


@dataclass(frozen=True)
class Approach:
    """One row of the report.

    ``family`` names whose growth with the number of sites the row shares
    (the n sweeps measure one approach per family: DP adds no messages);
    ``note`` is a footnote to its measured row.
    """

    key: str
    title: str
    partition: str
    learns: str
    threat: str
    dropouts: str
    family: str
    source: Source
    note: str = ""


APPROACHES: tuple[Approach, ...] = (
    Approach(
        key="plain",
        title="plain FL (FedAvg)",
        partition="horizontal",
        learns="server: every site's update; sites: the global model",
        threat="none against the server (trusted with every update); "
        "sites trusted to send honest updates",
        dropouts="the round averages whoever replies; nothing to abort",
        family="plain",
        source=FlowerRun({}),
    ),
    Approach(
        key="secagg_semi_honest",
        title="FL + secure aggregation, semi-honest",
        partition="horizontal",
        learns="server: only the weighted sum of ≥ t survivors, and who "
        "dropped at each stage; sites: the global model",
        threat="semi-honest (curious) server; sites may drop at any stage; "
        "a lying server (phantom sites, swapped keys) is not covered; "
        "aborts with < t survivors, revealing nothing; fewer than t colluding "
        "sites (t = ⌈n/2⌉ on the complete graph; sites refuse t < "
        "`policy-min-threshold` + `policy-colluders`)",
        dropouts="exact sum with up to n − t dropouts at any stage; "
        "aborts below t, nothing revealed",
        family="secagg_semi_honest",
        source=FlowerRun({"secagg-mode": "semi_honest"}),
    ),
    Approach(
        key="secagg_active",
        title="FL + secure aggregation, active",
        partition="horizontal",
        learns="server: only sums of ≥ t inputs (t − colluders of them "
        "honest), or the round aborts; also who signed",
        threat="malicious server (lies about keys and dropouts, split views) "
        "with up to `policy-colluders` sites; registered Ed25519 site keys; "
        "aborts rather than reveal; 2t > |N[u]| + colluders, t = ⌈2n/3⌉ by "
        "default",
        dropouts="exact sum with up to n − t dropouts (t = ⌈2n/3⌉); aborts below t",
        family="secagg_active",
        source=FlowerRun({"secagg-mode": "active"}),
    ),
    Approach(
        key="local_dp",
        title="FL + local DP-SGD (Opacus)",
        partition="horizontal",
        learns="server: every DP-SGD-trained update; anyone: (ε, δ) per "
        "record of a site",
        threat="nobody trusted with a site's records (noise from a secret "
        "only the site holds); server sees each noisy update",
        dropouts="as plain FL",
        family="plain",
        source=FlowerRun({"dp-mode": "local_opacus", "dp-noise-multiplier": 1.0}),
    ),
    Approach(
        key="central_dp",
        title="FL + central DP",
        partition="horizontal",
        learns="server: every update (it adds the noise); others: the "
        "released model, (ε, δ) per site's round contribution",
        threat="trusted server (not bound by ε itself); semi-honest or "
        "malicious server breaks it",
        dropouts="as plain FL",
        family="plain",
        source=FlowerRun({"dp-mode": "central", "dp-noise-multiplier": 1.0}),
    ),
    Approach(
        key="secagg_distributed_dp",
        title="FL + secure aggregation + distributed DP",
        partition="horizontal",
        learns="server: only the noised sum; anyone: (ε, δ) per site's round "
        "contribution, from the noise the actual survivors carry",
        threat="semi-honest server (as secure aggregation); honest survivors' "
        "noise (colluders can subtract theirs); clipping is each site's own",
        dropouts="as semi-honest secure aggregation; each dropout lowers the "
        "noise (reported in ε); a site refuses to unmask below its floor",
        family="secagg_semi_honest",
        source=FlowerRun(
            {
                "secagg-mode": "semi_honest",
                "dp-mode": "distributed",
                "dp-noise-multiplier": 1.0,
                # calibrated for 9 of 10 survivors: one site drops every round
                "dp-survivor-fraction": 0.9,
            }
        ),
    ),
    Approach(
        key="mpc",
        title="MPC clip-and-sum",
        partition="horizontal",
        learns="server: only the clipped sum, total clamped weight and which "
        "sites were included; each compute party: uniform shares",
        threat="3 compute parties, honest majority (no two collude), "
        "semi-honest parties (a cheating party can bias the result); "
        "malicious sites bounded by clipping (W·C); a party stopping aborts",
        dropouts="sites that do not share are left out, exact clip-and-sum "
        "of the rest (≥ `min-sites`); one of the 3 parties missing aborts",
        family="mpc",
        source=FlowerRun({"mpc-mode": "clip_and_sum"}),
    ),
    Approach(
        key="mpc_dp",
        title="MPC clip-and-sum + noise",
        partition="horizontal",
        learns="server: only the noised clipped sum; anyone: (ε, δ) per "
        "site's round contribution (weights clamped to 1)",
        threat="as MPC clip-and-sum; the noise holds against any one party "
        "colluding with the server",
        dropouts="as MPC clip-and-sum",
        family="mpc",
        source=FlowerRun({"mpc-mode": "clip_and_sum", "mpc-noise-multiplier": 1.0}),
    ),
    Approach(
        key="vertical_mpc",
        title="MPC training, vertically partitioned",
        partition="vertical",
        learns="server: the holders' list sizes, who took part and the trained "
        "model; holders: only their own columns (PSI `shares` mode: nobody "
        "learns the intersection, one holder with one party learns nothing of "
        "it); compute parties: shares only",
        threat="3 compute parties, honest majority (no two collude), "
        "semi-honest (as clip-and-sum); holders follow PSI but may lie about "
        "their own rows or labels; any holder or party stopping stops the run",
        dropouts="a holder or a party missing stops the session",
        family="vertical",
        source=FlowerRun({"vertical-model": "logistic"}, drops=False),
        note="one Flower round is the whole training: PSI between the 3 "
        "holders (columns of breast cancer, labels at holder 0), sharing, 20 "
        "epochs of mini-batch gradient descent on shares, the model revealed; "
        "kB per holder; the parties' own traffic is in results.json "
        "(`mpc_bytes_between_parties`)",
    ),
)


def by_key(keys: list[str] | tuple[str, ...] = ()) -> list[Approach]:
    """The approaches named in ``keys`` (all of them when empty), in table order.

    Raises
    ------
    ValueError
        For a name not in the table.
    """
    known = {a.key: a for a in APPROACHES}
    unknown = sorted(set(keys) - set(known))
    if unknown:
        raise ValueError(f"unknown approaches {unknown}; known: {sorted(known)}")
    return [a for a in APPROACHES if not keys or a.key in keys]
