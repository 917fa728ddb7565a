"""fedsec status: the TLS reachability check and the round-line parser."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

from fedsec.net import free_port
from fedsec.pki import make_server_tls
from fedsec_cli.rounds import parse_round, parse_rounds
from fedsec_cli.status import tls_reachable


def _serve_once(cert: Path, key: Path) -> tuple[int, threading.Thread]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        with listener:
            conn, _ = listener.accept()
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return port, thread


def test_reachable_only_with_the_federations_ca(tmp_path: Path) -> None:
    tls = make_server_tls(tmp_path / "pki")
    port, thread = _serve_once(tls.cert, tls.key)
    assert tls_reachable(f"127.0.0.1:{port}", tls.ca_cert) == (True, "")
    thread.join(10)
    other = make_server_tls(tmp_path / "other")
    port, thread = _serve_once(tls.cert, tls.key)
    ok, why = tls_reachable(f"127.0.0.1:{port}", other.ca_cert)
    thread.join(10)
    assert not ok
    assert "certificate not trusted" in why


def test_nothing_listening_is_not_reachable(tmp_path: Path) -> None:
    tls = make_server_tls(tmp_path / "pki")
    ok, why = tls_reachable(f"127.0.0.1:{free_port()}", tls.ca_cert, timeout=2)
    assert not ok
    assert why


def test_round_lines_are_parsed_with_their_metrics() -> None:
    text = (
        "INFO fedsec: round 0: accuracy=0.5 loss=0.7\n"
        "INFO fedsec: round 2/3 [secagg-active+ddp]: accuracy=0.9381 loss=0.2100 "
        "seconds=41.20 bytes_down=10 bytes_up=20 survivors=3 dropped=1 round_trips=3\n"
        "something else\n"
    )
    [line] = parse_rounds(text)
    assert (line.round, line.rounds, line.backend) == (2, 3, "secagg-active+ddp")
    assert line.get("survivors") == 3
    assert line.get("round_trips") == 3
    assert "survivors=3" in line.summary()
    assert parse_round("round 1/2 [plain]: accuracy=nan loss=0.3") is not None
