"""TLS + SuperNode authentication in the Deployment Engine: outsiders cannot join.

One SuperLink with one registered site (from its kit), no federated run: three
outsiders try to connect at once and each must be turned away before it gets a
node id.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from flwr.supercore.error.base import ApiErrorCode
from flwr.supercore.exit.exit_code import ExitCode

from experiments.deployment import local_deployment
from fedsec.pki import make_node_auth_key, make_server_tls

pytestmark = [pytest.mark.slow, pytest.mark.deployment]


def test_outsiders_are_refused(tmp_path: Path) -> None:
    outsiders = tmp_path / "outsiders"
    with local_deployment(tmp_path / "federation", num_sites=1) as deployment:
        site_file = deployment.data_file("site0")
        procs = {
            # no key: it would register itself, which --enable-supernode-auth forbids
            "no-key": deployment.start_supernode("no-key", site_file),
            # a key pair of its own that the consortium never registered
            "unregistered": deployment.start_supernode(
                "unregistered",
                site_file,
                auth_key=make_node_auth_key(outsiders, "unregistered"),
            ),
        }
        # a registered key, but trusting another CA: the SuperLink's certificate
        # does not verify for it, as an impostor SuperLink's would not for a site
        registered = make_node_auth_key(outsiders, "registered")
        deployment.register([registered])
        procs["other-ca"] = deployment.start_supernode(
            "other-ca",
            site_file,
            auth_key=registered,
            root_certificates=make_server_tls(outsiders / "other-ca").ca_cert,
        )
        codes = {name: proc.wait(60) for name, proc in procs.items()}
        nodes = deployment.list_nodes()
        logs = {name: deployment.site_log(name).read_text() for name in procs}

    assert codes == dict.fromkeys(procs, 1)
    for log in logs.values():
        assert f"Exit Code: {int(ExitCode.SUPERNODE_CONNECTION_ERROR)}" in log
        assert "SuperNode ID:" not in log
    refused_registration = (
        f"[code: {int(ApiErrorCode.FLEET_SUPERNODE_REGISTRATION_DISABLED)}]"
    )
    assert refused_registration in logs["no-key"]
    refused_activation = f"[code: {int(ApiErrorCode.FLEET_NODE_ACTIVATION_FAILED)}]"
    assert refused_activation in logs["unregistered"]
    assert "CERTIFICATE_VERIFY_FAILED" in logs["other-ca"]
    # the SuperLink knows site0 (online) and the registered key that never came
    # online; the two outsiders left no trace
    assert sorted(node["status"] for node in nodes) == ["online", "registered"]
