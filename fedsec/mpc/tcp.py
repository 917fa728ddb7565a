"""TCP channel with mutual TLS between the three parties (deployment).

Every ordered pair of parties has its own TLS 1.3 connection, used in one
direction only: party ``i`` writes to ``j`` on the connection it opened to
``j`` and reads from ``j`` on the connection ``j`` opened to it. The sockets
are non-blocking and one thread does everything: while a round's messages go
out, :meth:`TlsChannel.exchange` keeps draining every incoming connection
into per-peer frame queues, so two parties sending large messages to each
other in the same round never deadlock. (Reader threads did the draining
before; their hand-offs cost 160 of the 240 microseconds of a round on
loopback.)

Both sides verify: the listener requires a client certificate signed by the
parties' CA, and reads the peer's index from the certificate's name; the
connecting side checks the listener's name ``party-<j>``. A frame is
``<u64 ndim> <u64 dims...>`` followed by the little-endian uint64 payload.
"""

from __future__ import annotations

import collections
import contextlib
import math
import select
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


_SMALL = 1 << 16  # a frame up to this size goes out as one TLS record
_SEND_CHUNK = 1 << 18  # larger ones in pieces, draining the others in between
_WOULD_BLOCK = (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError)


class _FrameReader:
    """Reassembles the frames of one incoming connection from the bytes that arrive."""

    def __init__(self) -> None:
        self.frames: collections.deque[Ring] = collections.deque()
        self.closed: BaseException | None = None
        self._begin()

    def _begin(self) -> None:
        self._stage = 0  # 0: ndim, 1: dims, 2: payload
        self._view = memoryview(bytearray(8))
        self._pos = 0
        self._out: Ring = np.empty(0, dtype=np.uint64)

    def feed(self, sock: ssl.SSLSocket) -> None:
        """Read whatever is available without blocking; complete frames are queued.

        A connection the peer closed, or a malformed frame, is remembered in
        :attr:`closed` (it matters only if a frame from this peer is awaited).
        """
        if self.closed is not None:
            return
        try:
            while True:
                want = len(self._view) - self._pos
                if want:
                    n = sock.recv_into(self._view[self._pos :], want)
                    if n == 0:
                        raise ConnectionError("peer closed the connection")
                    self._pos += n
                elif self._advance() and not sock.pending():
                    return  # a frame is complete; the socket says if more is due
        except _WOULD_BLOCK:
            return
        except (OSError, ProtocolError, ValueError) as exc:
            self.closed = exc

    def _advance(self) -> bool:
        """Move to the next part of the frame; whether a frame was completed."""
        if self._stage == 0:
            ndim = _U64.unpack(self._view)[0]
            if ndim > _MAX_NDIM:
                raise ProtocolError("malformed frame")
            self._stage, self._view, self._pos = 1, memoryview(bytearray(8 * ndim)), 0
        elif self._stage == 1:
            shape = tuple(int(v) for v in np.frombuffer(self._view, dtype="<u8"))
            if math.prod(shape) > _MAX_WORDS:
                raise ProtocolError("frame too large")
            self._out = np.empty(shape, dtype=np.uint64)
            self._stage, self._pos = 2, 0
            self._view = memoryview(self._out.reshape(-1).data).cast("B")
        else:
            self.frames.append(self._out)
            self._begin()
            return True
        return False


class _FrameWriter:
    """One outgoing frame, written as far as the socket takes it without blocking."""

    def __init__(self, message: Ring) -> None:
        arr = np.ascontiguousarray(message, dtype="<u8")
        head = _U64.pack(arr.ndim) + b"".join(_U64.pack(n) for n in arr.shape)
        body = memoryview(arr.reshape(-1).data).cast("B")
        self._parts = (
            [memoryview(head + bytes(body))]
            if arr.nbytes <= _SMALL
            else [memoryview(head), body]
        )
        self._array = arr  # keeps the payload alive until it is written
        self._part = 0
        self._pos = 0

    @property
    def done(self) -> bool:
        """Whether the whole frame was handed to TLS."""
        return self._part == len(self._parts)

    def pump(self, sock: ssl.SSLSocket) -> None:
        """Write until the socket would block or the frame is out.

        After a would-block, TLS needs the same piece again: ``_pos`` only
        moves on success, so the retry passes it unchanged.
        """
        while not self.done:
            part = self._parts[self._part]
            try:
                n = sock.send(part[self._pos : self._pos + _SEND_CHUNK])
            except _WOULD_BLOCK:
                return
            self._pos += n
            if self._pos == len(part):
                self._part, self._pos = self._part + 1, 0


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
        self._readers = {p: _FrameReader() for p in range(PARTIES) if p != index}
        self._peer_of: dict[ssl.SSLSocket, int] = {}
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
        for sock in (*self._out.values(), *self._in.values()):
            sock.setblocking(False)
        self._peer_of = {sock: peer for peer, sock in self._in.items()}
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

    @property
    def index(self) -> int:
        """This party's index."""
        return self._index

    @property
    def stats(self) -> ChannelStats:
        """Traffic counters of this party."""
        return self._stats

    def exchange(
        self,
        outgoing: Mapping[int, Ring],
        expect: Sequence[int],
        *,
        counts_round: bool = True,
    ) -> dict[int, Ring]:
        """Send to and receive from peers in one round.

        Incoming connections are drained all the while (frames a peer sent
        ahead wait in its queue), so a large outgoing message never waits on a
        peer that is itself blocked writing to this party.
        """
        for peer in (*outgoing, *expect):
            if peer not in self._readers:
                raise ProtocolError(f"invalid peer {peer}", node_id=self._index)
        writers = {self._out[p]: _FrameWriter(m) for p, m in outgoing.items()}
        deadline = time.monotonic() + self._timeout
        ready: list[ssl.SSLSocket] = list(writers)
        readable: list[ssl.SSLSocket] = []
        while True:
            try:
                for sock in ready:
                    writers[sock].pump(sock)
            except OSError:
                raise ProtocolError("send failed", node_id=self._index) from None
            for sock in readable:
                self._readers[self._peer_of[sock]].feed(sock)
            sending = [sock for sock, w in writers.items() if not w.done]
            waiting = [p for p in expect if not self._readers[p].frames]
            for peer in waiting:
                if self._readers[peer].closed is not None:
                    raise ProtocolError(
                        f"connection from party {peer} lost", node_id=self._index
                    )
            if not sending and not waiting:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProtocolError(
                    f"no message from party {waiting[0]}"
                    if waiting
                    else "send timed out",
                    node_id=self._index,
                )
            # every open incoming connection is drained, not only the awaited
            listening = [s for p, s in self._in.items() if not self._readers[p].closed]
            readable, ready, _ = select.select(listening, sending, [], left)
        received = {peer: self._readers[peer].frames.popleft() for peer in expect}
        self._stats.record(outgoing, received, counts_round)
        return received

    def close(self) -> None:
        """Close every connection and the listener."""
        for sock in (*self._out.values(), *self._in.values()):
            with contextlib.suppress(OSError):
                sock.close()
        if self._listener is not None:
            self._listener.close()
