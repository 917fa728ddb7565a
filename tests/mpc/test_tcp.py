"""The TCP channel with mutual TLS on 127.0.0.1."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from pathlib import Path

import numpy as np
import pytest

from fedsec.errors import ProtocolError
from fedsec.mpc.client import client_share
from fedsec.mpc.clip_and_sum import ClipSumConfig, combine_outputs
from fedsec.mpc.keys import generate_party_keys
from fedsec.mpc.party import Party
from fedsec.mpc.sessions import MemorySessionLog
from fedsec.mpc.tcp import TlsChannel
from fedsec.mpc.tls import make_throwaway_pki
from fedsec.net import free_ports


def _mesh(identities, timeout=10.0, addrs=None, dials=None):
    """Connect the three parties; ``dials(i, addrs)`` is what party ``i`` dials."""
    addrs = addrs or [("127.0.0.1", p) for p in free_ports(3)]
    chans: list = [None] * 3
    errs: list = []

    def start(i: int) -> None:
        mine = addrs if dials is None else dials(i, addrs)
        try:
            chans[i] = TlsChannel.connect(i, mine, identities[i], timeout=timeout)
        except Exception as exc:
            errs.append(exc)

    ts = [threading.Thread(target=start, args=(i,)) for i in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return chans, errs, addrs


def test_mesh_exchanges_messages_and_runs_clip_and_sum(tmp_path: Path) -> None:
    ids = make_throwaway_pki(tmp_path)
    chans, errs, _ = _mesh(ids)
    assert not errs
    try:
        keys = generate_party_keys()
        cfg = ClipSumConfig(clip_norm=1.0)
        x = np.random.default_rng(0).normal(size=(3, 100))
        pk = [
            client_share(
                x[j],
                1,
                keys[0].public_keys,
                session=9,
                client_id=j,
                config=cfg,
            )
            for j in range(3)
        ]
        outs: list = [None] * 3

        def party(i: int) -> None:
            p = Party(keys[i], chans[i], cfg, sessions=MemorySessionLog(node_id=i))
            outs[i] = p.run_clip_and_sum(9, {j: pk[j][i] for j in range(3)}, 100)

        ts = [threading.Thread(target=party, args=(i,)) for i in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        res = combine_outputs(outs, cfg.encoder)
        clipped = x / np.maximum(1.0, np.linalg.norm(x, axis=1, keepdims=True))
        np.testing.assert_allclose(res.total, clipped.sum(0), atol=1e-3)
        assert chans[0].stats.rounds > 10
        assert chans[0].stats.bytes_received > 0
    finally:
        for c in chans:
            c.close()


def test_party_without_a_valid_certificate_is_rejected(tmp_path: Path) -> None:
    ids = make_throwaway_pki(tmp_path / "good")
    rogue = make_throwaway_pki(tmp_path / "rogue")  # same names, other CA
    addrs = [("127.0.0.1", p) for p in free_ports(3)]
    result: dict = {}

    def victim() -> None:
        try:
            result["chan"] = TlsChannel.connect(0, addrs, ids[0], timeout=3.0)
        except ProtocolError as exc:
            result["error"] = exc

    t = threading.Thread(target=victim)
    t.start()
    _wait_listening(addrs[0])
    # the rogue party 1 dials party 0 with a certificate from another CA, and
    # one client dials without any certificate; neither checks the server, so
    # only party 0's verification of the client certificate can stop them
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(rogue[1].cert_file, rogue[1].key_file)
    no_cert = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    no_cert.check_hostname = False
    no_cert.verify_mode = ssl.CERT_NONE
    outcomes = []
    for c in (ctx, no_cert):
        raw = socket.create_connection(addrs[0], timeout=3)  # TCP is accepted...
        try:
            s = c.wrap_socket(raw, server_hostname="party-0")
            s.sendall(b"x" * 16)
            outcomes.append("closed" if s.recv(1) == b"" else "accepted")
        except ssl.SSLError as exc:  # ...but TLS fails with an alert
            outcomes.append(f"alert:{exc.reason}")
        finally:
            raw.close()
    t.join()
    assert all(o != "accepted" for o in outcomes), outcomes
    assert any(o.startswith("alert") for o in outcomes), outcomes
    assert "error" in result  # the mesh never formed with the rogue party


def _wait_listening(address: tuple[str, int]) -> None:
    for _ in range(100):
        try:
            socket.create_connection(address, timeout=1).close()
            return
        except OSError:
            threading.Event().wait(0.05)
    raise AssertionError("listener never came up")


def test_connecting_side_checks_the_listener_certificate(tmp_path: Path) -> None:
    ids = make_throwaway_pki(tmp_path / "good")
    rogue = make_throwaway_pki(tmp_path / "rogue")
    # party 1's listener presents a certificate of another CA: party 0 must refuse
    mixed = [ids[0], rogue[1], ids[2]]
    _, errs, _ = _mesh(mixed, timeout=3.0)
    assert errs
    assert all(isinstance(e, ProtocolError) for e in errs)


def test_exchange_rejects_unknown_peer(tmp_path: Path) -> None:
    chans, errs, _ = _mesh(make_throwaway_pki(tmp_path))
    assert not errs
    try:
        with pytest.raises(ProtocolError):
            chans[0].exchange({0: np.zeros(1, np.uint64)}, [])
    finally:
        for c in chans:
            c.close()


def test_large_messages_both_ways_in_one_round_do_not_deadlock(tmp_path: Path) -> None:
    """Parties 0 and 1 send each other 32 MB at once, far beyond socket buffers."""
    chans, errs, _ = _mesh(make_throwaway_pki(tmp_path))
    assert not errs
    big = [np.full(1 << 22, i + 1, dtype=np.uint64) for i in range(3)]
    got: list = [None] * 3

    def party(i: int) -> None:
        c = chans[i]
        if i == 2:  # sends ahead: both frames wait in the peers' queues
            c.exchange({0: np.arange(3, dtype=np.uint64)}, [])
            got[2] = c.exchange({1: np.arange(5, dtype=np.uint64)}, [0, 1])
            return
        peer = 1 - i
        got[i] = c.exchange({peer: big[i], 2: big[i][:7]}, [peer, 2])

    ts = [threading.Thread(target=party, args=(i,)) for i in range(3)]
    try:
        for t in ts:
            t.start()
        for t in ts:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in ts)
        np.testing.assert_array_equal(got[0][1], big[1])
        np.testing.assert_array_equal(got[1][0], big[0])
        np.testing.assert_array_equal(got[0][2], np.arange(3))
        np.testing.assert_array_equal(got[1][2], np.arange(5))
        np.testing.assert_array_equal(got[2][0], np.full(7, 1))
        np.testing.assert_array_equal(got[2][1], np.full(7, 2))
    finally:
        for c in chans:
            c.close()


class _Tamperer:
    """A TCP relay in front of one listener that sees every byte a dialer sends.

    It forwards both directions; in the dialer-to-listener direction it keeps
    a copy of what passed and, if ``flip_at`` is set, flips one bit of the
    byte at that stream offset (past the TLS handshake: inside the first
    large frame).
    """

    def __init__(self, target: tuple[str, int], flip_at: int | None) -> None:
        self.target = target
        self.flip_at = flip_at
        self.seen = bytearray()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.address = self.server.getsockname()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        client, _ = self.server.accept()
        upstream = socket.create_connection(self.target)
        threading.Thread(
            target=self._pump, args=(upstream, client, False), daemon=True
        ).start()
        self._pump(client, upstream, True)

    def _pump(self, src: socket.socket, dst: socket.socket, watched: bool) -> None:
        try:
            while data := src.recv(1 << 16):
                if watched:
                    start = len(self.seen)
                    self.seen += data
                    k = None if self.flip_at is None else self.flip_at - start
                    if k is not None and 0 <= k < len(data):
                        data = data[:k] + bytes([data[k] ^ 1]) + data[k + 1 :]
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


def _mesh_via(identities, relay_for: int, dialer: int, flip_at: int | None):
    """The mesh with ``dialer``'s connection to ``relay_for`` through a relay."""
    addrs = [("127.0.0.1", p) for p in free_ports(3)]
    relay = _Tamperer(addrs[relay_for], flip_at)

    def dials(i: int, real: list) -> list:
        return [
            relay.address if i == dialer and j == relay_for else a
            for j, a in enumerate(real)
        ]

    chans, errs, _ = _mesh(identities, addrs=addrs, dials=dials)
    assert not errs
    return chans, relay


def test_a_relay_sees_no_payload_and_cannot_alter_a_frame(tmp_path: Path) -> None:
    """The attacker on the wire between parties 0 and 1, after TLS has closed.

    It reads everything party 0 sends to party 1: the payload (a recognisable
    pattern) never appears in the clear. Flipping one bit of a frame makes
    party 1's round fail with one line, instead of computing on altered data.
    """
    ids = make_throwaway_pki(tmp_path)
    pattern = np.full(1 << 17, 0x0123456789ABCDEF, dtype=np.uint64)  # 1 MiB
    marker = pattern[:4].tobytes()
    for flip_at in (None, 1 << 19):
        chans, relay = _mesh_via(ids, relay_for=1, dialer=0, flip_at=flip_at)
        got: dict = {}

        def receive(c: TlsChannel = chans[1], got: dict = got) -> None:
            try:
                got["ok"] = c.exchange({}, [0])[0]
            except ProtocolError as exc:
                got["error"] = str(exc)

        t = threading.Thread(target=receive)
        try:
            t.start()
            chans[0].exchange({1: pattern}, [])
            t.join(timeout=30)
            assert len(relay.seen) > pattern.nbytes  # the frame went through it
            assert marker not in relay.seen
            if flip_at is None:
                np.testing.assert_array_equal(got["ok"], pattern)
            else:
                assert "ok" not in got
                assert "failed authentication" in got["error"]
        finally:
            for c in chans:
                c.close()


def test_a_forged_header_is_refused_before_anything_is_sized() -> None:
    """Bytes injected on the wire claiming a 2^31-word frame allocate nothing.

    The header travels sealed: a forged one fails to open, and the reader
    never sizes a buffer from it (a 16 GB allocation otherwise).
    """
    from fedsec.crypto.aead import FrameCipher
    from fedsec.mpc.tcp import _HEAD, _SEALED_HEAD, _FrameReader

    key = bytes(range(32))
    reader = _FrameReader(FrameCipher(key))
    forged = _HEAD.pack(1, 1 << 31, 0, 0, 0) + bytes(_SEALED_HEAD - _HEAD.size)
    a, b = socket.socketpair()
    try:
        b.setblocking(False)
        a.sendall(forged)
        reader.feed(b)
        assert reader.closed is not None
        assert "authentication" in str(reader.closed)
        assert len(reader._sealed) == 0
        assert not reader.frames
    finally:
        a.close()
        b.close()
