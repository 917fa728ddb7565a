"""TCP channel with mutual TLS between the three parties (deployment).

Every ordered pair of parties has its own TLS 1.3 connection, used in one
direction only: party ``i`` writes to ``j`` on the connection it opened to
``j`` and reads from ``j`` on the connection ``j`` opened to it. A reader
thread per incoming connection drains frames into a queue, so two parties
sending large messages to each other in the same round never deadlock, and no
SSL object is used by two threads at once.

Both sides verify: the listener requires a client certificate signed by the
parties' CA, and reads the peer's index from the certificate's name; the
connecting side checks the listener's name ``party-<j>``. A frame is
``<u64 ndim> <u64 dims...>`` followed by the little-endian uint64 payload.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import ssl
import struct
import threading
import time
from collections.abc import Mapping, Sequence

import numpy as np

from fedsec.errors import ProtocolError
from fedsec.mpc.channel import ChannelStats
from fedsec.mpc.ring import Ring
from fedsec.mpc.shares import PARTIES
from fedsec.mpc.tls import TlsIdentity, party_name

Address = tuple[str, int]
_U64 = struct.Struct("<Q")
_MAX_NDIM = 4
_MAX_WORDS = 1 << 31


def _server_context(identity: TlsIdentity) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(identity.cert_file, identity.key_file)
    ctx.load_verify_locations(cafile=identity.ca_file)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _client_context(identity: TlsIdentity) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(identity.cert_file, identity.key_file)
    ctx.load_verify_locations(cafile=identity.ca_file)
    return ctx


def _peer_index(sock: ssl.SSLSocket) -> int | None:
    cert = sock.getpeercert()
    if not cert:
        return None
    subject: tuple[tuple[tuple[str, str], ...], ...] = cert.get("subject", ())  # type: ignore[assignment]
    for rdn in subject:
        for key, value in rdn:
            if key == "commonName":
                for i in range(PARTIES):
                    if value == party_name(i):
                        return i
    return None


def _recv_exact(sock: ssl.SSLSocket, view: memoryview) -> None:
    pos = 0
    while pos < len(view):
        n = sock.recv_into(view[pos:], len(view) - pos)
        if n == 0:
            raise ConnectionError("peer closed the connection")
        pos += n


def _read_frame(sock: ssl.SSLSocket) -> Ring:
    head = bytearray(8)
    _recv_exact(sock, memoryview(head))
    ndim = _U64.unpack(head)[0]
    if ndim > _MAX_NDIM:
        raise ProtocolError("malformed frame")
    dims_raw = bytearray(8 * ndim)
    _recv_exact(sock, memoryview(dims_raw))
    shape = tuple(int(v) for v in np.frombuffer(dims_raw, dtype="<u8"))
    count = int(np.prod(shape)) if shape else 1
    if count > _MAX_WORDS:
        raise ProtocolError("frame too large")
    out = np.empty(shape, dtype=np.uint64)
    if count:
        _recv_exact(sock, memoryview(out.reshape(-1).data).cast("B"))
    return out


def _write_frame(sock: ssl.SSLSocket, message: Ring) -> None:
    arr = np.ascontiguousarray(message, dtype="<u8")
    head = _U64.pack(arr.ndim) + b"".join(_U64.pack(n) for n in arr.shape)
    sock.sendall(head)
    if arr.size:
        sock.sendall(memoryview(arr.reshape(-1).data).cast("B"))


class TlsChannel:
    """Party ``index``'s endpoint on the mutual-TLS mesh.

    Use :meth:`connect`; close with :meth:`close`.
    """

    def __init__(self, index: int, timeout: float) -> None:
        self._index = index
        self._timeout = timeout
        self._stats = ChannelStats()
        self._out: dict[int, ssl.SSLSocket] = {}
        self._in: dict[int, ssl.SSLSocket] = {}
        self._queues: dict[int, queue.SimpleQueue[Ring | BaseException]] = {
            p: queue.SimpleQueue() for p in range(PARTIES) if p != index
        }
        self._listener: socket.socket | None = None
        self.rejected_handshakes = 0

    @classmethod
    def connect(
        cls,
        index: int,
        addresses: Sequence[Address],
        identity: TlsIdentity,
        timeout: float = 30.0,
    ) -> TlsChannel:
        """Listen on ``addresses[index]``, connect to the others, authenticate all.

        Raises
        ------
        ProtocolError
            If the mesh is not complete within ``timeout`` seconds.
        """
        self = cls(index, timeout)
        host, port = addresses[index]
        lst = socket.create_server((host, port), reuse_port=False)
        lst.settimeout(0.2)
        self._listener = lst
        acceptor = threading.Thread(
            target=self._accept_all, args=(lst, identity), daemon=True
        )
        acceptor.start()
        ctx = _client_context(identity)
        deadline = time.monotonic() + timeout
        for peer in range(PARTIES):
            if peer == index:
                continue
            self._out[peer] = self._dial(ctx, addresses[peer], peer, deadline)
        acceptor.join(max(0.0, deadline - time.monotonic()))
        if len(self._in) != PARTIES - 1:
            self.close()
            raise ProtocolError("TLS mesh incomplete", stage="connect", node_id=index)
        for peer, sock in self._in.items():
            threading.Thread(
                target=self._reader, args=(peer, sock), daemon=True
            ).start()
        return self

    def _dial(
        self, ctx: ssl.SSLContext, address: Address, peer: int, deadline: float
    ) -> ssl.SSLSocket:
        while True:
            try:
                raw = socket.create_connection(address, timeout=self._timeout)
                sock = ctx.wrap_socket(raw, server_hostname=party_name(peer))
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return sock
            except ssl.SSLError:
                raise ProtocolError(
                    f"TLS handshake with party {peer} failed",
                    stage="connect",
                    node_id=self._index,
                ) from None
            except OSError:
                if time.monotonic() > deadline:
                    raise ProtocolError(
                        f"party {peer} unreachable",
                        stage="connect",
                        node_id=self._index,
                    ) from None
                time.sleep(0.05)

    def _accept_all(self, listener: socket.socket, identity: TlsIdentity) -> None:
        ctx = _server_context(identity)
        deadline = time.monotonic() + self._timeout
        while len(self._in) < PARTIES - 1 and time.monotonic() < deadline:
            try:
                raw, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            try:
                raw.settimeout(self._timeout)
                sock = ctx.wrap_socket(raw, server_side=True)
            except (ssl.SSLError, OSError):
                self.rejected_handshakes += 1
                raw.close()
                continue
            peer = _peer_index(sock)
            if peer is None or peer == self._index or peer in self._in:
                self.rejected_handshakes += 1
                sock.close()
                continue
            sock.settimeout(None)
            self._in[peer] = sock

    def _reader(self, peer: int, sock: ssl.SSLSocket) -> None:
        q = self._queues[peer]
        try:
            while True:
                q.put(_read_frame(sock))
        except (OSError, ProtocolError, ValueError) as exc:
            q.put(exc)

    @property
    def index(self) -> int:
        """This party's index."""
        return self._index

    @property
    def stats(self) -> ChannelStats:
        """Traffic counters of this party."""
        return self._stats

    def exchange(
        self, outgoing: Mapping[int, Ring], expect: Sequence[int]
    ) -> dict[int, Ring]:
        """Send to and receive from peers in one round."""
        for peer in (*outgoing, *expect):
            if peer not in self._queues:
                raise ProtocolError(f"invalid peer {peer}", node_id=self._index)
        try:
            for peer, message in outgoing.items():
                _write_frame(self._out[peer], message)
        except OSError:
            raise ProtocolError("send failed", node_id=self._index) from None
        received: dict[int, Ring] = {}
        for peer in expect:
            try:
                item = self._queues[peer].get(timeout=self._timeout)
            except queue.Empty:
                raise ProtocolError(
                    f"no message from party {peer}", node_id=self._index
                ) from None
            if isinstance(item, BaseException):
                raise ProtocolError(
                    f"connection from party {peer} lost", node_id=self._index
                ) from None
            received[peer] = item
        self._stats.record(outgoing, received)
        return received

    def close(self) -> None:
        """Close every connection and the listener."""
        for sock in (*self._out.values(), *self._in.values()):
            with contextlib.suppress(OSError):
                sock.close()
        if self._listener is not None:
            self._listener.close()
