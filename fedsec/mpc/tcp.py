"""TCP channel between the three parties: mutual TLS, then AES-GCM frames.

Every ordered pair of parties has its own connection, used in one direction
only: party ``i`` writes to ``j`` on the connection it opened to ``j`` and
reads from ``j`` on the connection ``j`` opened to it. The sockets are
non-blocking and one thread does everything: while a round's messages go
out, :meth:`TlsChannel.exchange` keeps draining every incoming connection
into per-peer frame queues, so two parties sending large messages to each
other in the same round never deadlock.

*Authentication and keys.* Each connection starts with a TLS 1.3 handshake in
which both sides verify: the listener requires a client certificate signed
by the parties' CA and reads the peer's index from the certificate's name;
the connecting side checks the listener's name ``party-<j>``. Inside that
session the two sides swap fresh X25519 public keys and derive the
connection's key with HKDF-SHA256 over the shared secret, both indices and
both public keys (:func:`fedsec.crypto.kdf.agree`); then they close the TLS
session (``close_notify`` both ways) and keep the TCP connection.

*Frames.* A message is two records sealed with AES-256-GCM under the
connection's key, with consecutive record numbers as nonces
(:class:`fedsec.crypto.aead.FrameCipher`): its header (``ndim`` and up to
four dimensions, 40 bytes) and then its little-endian uint64 payload, with
the header as associated data. The header is authenticated before the
payload's buffer is sized, so nobody on the wire can make a party allocate
anything; a record that is altered, replayed, reordered, dropped or injected
fails to open and the round fails with :class:`~fedsec.errors.ProtocolError`.
This is TLS 1.3's record layer with the keys agreed inside TLS; it is
fedsec's own because the system OpenSSL's record layer (Python's ``ssl``)
costs a system call per 16 KB record and runs AES-GCM at 2.7 GB/s here,
against 12 GB/s in ``cryptography``'s: it made the 8 MB range-check message
of a clip-and-sum at d = 100k cost 4-6 ms of CPU at each end
(``docs/mpc.md``).
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

from fedsec.crypto.aead import TAG_BYTES, FrameCipher
from fedsec.crypto.kdf import X25519KeyPair, agree, label
from fedsec.errors import CryptoError, ProtocolError
from fedsec.mpc.channel import ChannelStats
from fedsec.mpc.ring import Ring
from fedsec.mpc.shares import PARTIES
from fedsec.mpc.tls import TlsIdentity, party_name

Address = tuple[str, int]
_MAX_NDIM = 4
_HEAD = struct.Struct(f"<{1 + _MAX_NDIM}Q")  # ndim, then the dims (zero-padded)
_SEALED_HEAD = _HEAD.size + TAG_BYTES
_MAX_WORDS = 1 << 31


def _server_context(identity: TlsIdentity) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(identity.cert_file, identity.key_file)
    ctx.load_verify_locations(cafile=identity.ca_file)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.num_tickets = 0  # no resumption: nothing is pending when TLS closes
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


_SEND_CHUNK = 1 << 18  # a frame goes out in pieces, draining the others in between
_WOULD_BLOCK = (BlockingIOError, InterruptedError)
_KEY_LABEL = "mpc-channel"


class _FrameReader:
    """Reassembles and opens the frames of one incoming connection.

    Bytes are read into a staging buffer, so a small frame (header and
    payload) takes one system call; the rest of a large payload is read
    straight into the ciphertext buffer.
    """

    _STAGING = 1 << 16

    def __init__(self, cipher: FrameCipher | None = None) -> None:
        self.frames: collections.deque[Ring] = collections.deque()
        self.closed: BaseException | None = None
        self.cipher = cipher
        self._staging = bytearray(self._STAGING)
        self._lo = self._hi = 0  # buffered, not yet consumed: staging[lo:hi]
        self._sealed = bytearray(0)  # reused across frames: no fresh pages per frame
        self._head = b""
        self._out: Ring | None = None  # the frame being received, once its header is in
        self._size = self._pos = 0  # sealed payload: expected and received bytes

    def feed(self, sock: socket.socket) -> None:
        """Read what is available without blocking; complete frames are queued.

        Returns once the socket would block, or once the frames read so far
        are complete and nothing is left over (the caller's ``select`` sees
        any further bytes). A connection the peer closed, a malformed frame or
        one that fails to open is remembered in :attr:`closed` (it matters
        only if a frame from this peer is awaited).
        """
        if self.closed is not None:
            return
        try:
            completed = False
            while True:
                while self._parse():
                    completed = True
                if self._lo == self._hi:
                    self._lo = self._hi = 0
                    if completed:
                        return
                # here the buffer holds less than a frame header, or nothing
                # (a payload in progress took every buffered byte)
                if self._out is not None and self._size - self._pos > self._STAGING:
                    view = memoryview(self._sealed)[self._pos : self._size]
                    n = sock.recv_into(view)
                    self._pos += n
                else:
                    if self._lo:  # keep the unconsumed bytes at the front
                        self._staging[: self._hi - self._lo] = self._staging[
                            self._lo : self._hi
                        ]
                        self._lo, self._hi = 0, self._hi - self._lo
                    view = memoryview(self._staging)[self._hi :]
                    n = sock.recv_into(view)
                    self._hi += n
                if n == 0:
                    raise ConnectionError("peer closed the connection")
        except _WOULD_BLOCK:
            return
        except (OSError, ProtocolError, CryptoError, ValueError) as exc:
            self.closed = exc

    def _parse(self) -> bool:
        """Consume buffered bytes; whether a frame was completed (and queued)."""
        if self.cipher is None:
            raise ProtocolError("connection has no key")
        if self._out is None:
            if self._hi - self._lo < _SEALED_HEAD:
                return False
            head = bytearray(_HEAD.size)  # authenticated before anything is sized
            sealed_head = self._staging[self._lo : self._lo + _SEALED_HEAD]
            self.cipher.open_into(b"", memoryview(sealed_head), memoryview(head))
            fields = _HEAD.unpack(head)
            ndim = fields[0]
            if ndim > _MAX_NDIM or any(fields[1 + ndim :]):
                raise ProtocolError("malformed frame")
            shape = tuple(int(v) for v in fields[1 : 1 + ndim])
            if math.prod(shape) > _MAX_WORDS:
                raise ProtocolError("frame too large")
            self._head = bytes(head)
            self._lo += _SEALED_HEAD
            self._out = np.empty(shape, dtype=np.uint64)
            self._size, self._pos = self._out.nbytes + TAG_BYTES, 0
            if len(self._sealed) < self._size:
                self._sealed = bytearray(self._size)
        take = min(self._hi - self._lo, self._size - self._pos)
        if take:
            end = self._lo + take
            self._sealed[self._pos : self._pos + take] = self._staging[self._lo : end]
            self._pos, self._lo = self._pos + take, end
        if self._pos < self._size:
            return False
        out = memoryview(self._out.reshape(-1).data).cast("B")
        sealed = memoryview(self._sealed)[: self._size]
        self.cipher.open_into(self._head, sealed, out)
        self.frames.append(self._out)
        self._out = None
        return True


class _FrameWriter:
    """One outgoing frame, sealed, written as far as the socket takes it."""

    def __init__(self, message: Ring, cipher: FrameCipher, buffer: bytearray) -> None:
        arr = np.ascontiguousarray(message, dtype="<u8")
        if arr.ndim > _MAX_NDIM:
            raise ProtocolError("a message has at most four dimensions")
        pad = (0,) * (_MAX_NDIM - arr.ndim)
        head = _HEAD.pack(arr.ndim, *arr.shape, *pad)
        size = _SEALED_HEAD + arr.nbytes + TAG_BYTES
        self.buffer = buffer if len(buffer) >= size else bytearray(size)
        self._data = memoryview(self.buffer)[:size]
        cipher.seal_into(b"", memoryview(head), self._data[:_SEALED_HEAD])
        body = memoryview(arr.reshape(-1).data).cast("B")
        cipher.seal_into(head, body, self._data[_SEALED_HEAD:])
        self._pos = 0

    @property
    def done(self) -> bool:
        """Whether the whole frame was handed to the socket."""
        return self._pos == len(self._data)

    def pump(self, sock: socket.socket) -> None:
        """Write until the socket would block or the frame is out."""
        while not self.done:
            try:
                n = sock.send(self._data[self._pos : self._pos + _SEND_CHUNK])
            except _WOULD_BLOCK:
                return
            self._pos += n


def _recv_exact(sock: ssl.SSLSocket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("peer closed the connection")
        data += chunk
    return data


def _agree_key(sock: ssl.SSLSocket, dialer: int, listener: int) -> FrameCipher:
    """Swap fresh X25519 keys inside the TLS session; the connection's cipher.

    The dialer sends first. The key binds both indices and both public keys.
    """
    mine = X25519KeyPair.generate()
    if sock.server_side:
        theirs = _recv_exact(sock, 32)
        sock.sendall(mine.public)
        transcript = theirs + mine.public
    else:
        sock.sendall(mine.public)
        theirs = _recv_exact(sock, 32)
        transcript = mine.public + theirs
    info = label(_KEY_LABEL, dialer, listener) + b"|" + transcript
    return FrameCipher(agree(mine.secret, theirs, info))


class TlsChannel:
    """Party ``index``'s endpoint on the mesh (TLS-authenticated, AES-GCM frames).

    Use :meth:`connect`; close with :meth:`close`.
    """

    def __init__(self, index: int, timeout: float) -> None:
        self._index = index
        self._timeout = timeout
        self._stats = ChannelStats()
        self._out: dict[int, socket.socket] = {}
        self._in: dict[int, socket.socket] = {}
        self._ciphers: dict[int, FrameCipher] = {}  # outgoing, per peer
        self._buffers: dict[int, bytearray] = {}  # send buffers, reused
        self._readers = {p: _FrameReader() for p in range(PARTIES) if p != index}
        self._peer_of: dict[socket.socket, int] = {}
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

        Each connection: TLS 1.3 handshake with both certificates checked,
        the connection key agreed inside it, TLS closed (module docstring).

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
            self._out[peer], self._ciphers[peer] = self._dial(
                ctx, addresses[peer], peer, deadline
            )
            self._buffers[peer] = bytearray(0)
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
    ) -> tuple[socket.socket, FrameCipher]:
        while True:
            try:
                raw = socket.create_connection(address, timeout=self._timeout)
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock = ctx.wrap_socket(raw, server_hostname=party_name(peer))
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
                continue
            try:
                cipher = _agree_key(sock, self._index, peer)
                return sock.unwrap(), cipher
            except (OSError, CryptoError):
                sock.close()
                raise ProtocolError(
                    f"key agreement with party {peer} failed",
                    stage="connect",
                    node_id=self._index,
                ) from None

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
            try:
                cipher = _agree_key(sock, peer, self._index)
                plain = sock.unwrap()
            except (OSError, CryptoError):
                self.rejected_handshakes += 1
                sock.close()
                continue
            self._readers[peer].cipher = cipher
            self._in[peer] = plain

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
        writers = {}
        for p, m in outgoing.items():
            w = _FrameWriter(m, self._ciphers[p], self._buffers[p])
            self._buffers[p] = w.buffer
            writers[self._out[p]] = w
        deadline = time.monotonic() + self._timeout
        ready: list[socket.socket] = list(writers)
        readable: list[socket.socket] = []
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
                lost = self._readers[peer].closed
                if isinstance(lost, CryptoError):
                    raise ProtocolError(
                        f"frame from party {peer} failed authentication",
                        node_id=self._index,
                    )
                if lost is not None:
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
