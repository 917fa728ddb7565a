"""Long-term keys of the compute parties and the per-session PRF keys.

Each party has one X25519 key pair; its public key is published (clients
encrypt their shares to it, neighbours agree on PRF keys with it). The PRF
key ``k_j`` shared by parties ``j - 1`` and ``j`` is
``HKDF(X25519(sk_{j-1}, pk_j), info = "fedsec/mpc/prf/v1|pair=j|session=s")``:
fresh for every session (round), agreed without any message and without a
dealer.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fedsec.crypto.kdf import hkdf
from fedsec.errors import ConfigError
from fedsec.mpc.correlated import PrfRandomness
from fedsec.mpc.shares import PARTIES, nxt, prv


def raw_public(key: X25519PrivateKey) -> bytes:
    """The 32-byte raw public key of ``key``."""
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class PartyKeys:
    """Party ``index``'s secret key and the three parties' public keys.

    Attributes
    ----------
    index
        The party's index in {0, 1, 2}.
    secret
        Its X25519 private key (never leaves the party).
    public_keys
        The raw public keys of parties 0, 1, 2 (32 bytes each).
    """

    index: int
    secret: X25519PrivateKey
    public_keys: tuple[bytes, bytes, bytes]

    def __post_init__(self) -> None:
        if not 0 <= self.index < PARTIES:
            raise ConfigError(f"party index {self.index} not in 0..2")
        if raw_public(self.secret) != self.public_keys[self.index]:
            raise ConfigError(
                "secret key does not match the published key", node_id=self.index
            )

    def _pair_key(
        self, peer: int, pair: int, session: int, purpose: str = "prf"
    ) -> bytes:
        shared = self.secret.exchange(
            X25519PublicKey.from_public_bytes(self.public_keys[peer])
        )
        info = f"fedsec/mpc/{purpose}/v1|pair={pair}|session={session}"
        return hkdf(shared, info.encode())

    def digest_keys(self, session: int) -> tuple[bytes, bytes]:
        """Tag keys for the components ``x_i`` and ``x_{i+1}`` this party holds.

        Component ``x_k`` is held by parties ``k - 1`` and ``k``; its key is
        known to exactly those two, so the third party can compare the two
        holders' tags but cannot test guesses of the component against them.
        Each client's component is tagged with a one-time Poly1305 key drawn
        from this key (:mod:`fedsec.mpc.client`).
        """
        i = self.index
        return (
            self._pair_key(prv(i), i, session, "share-tag"),
            self._pair_key(nxt(i), nxt(i), session, "share-tag"),
        )

    def randomness(self, session: int) -> PrfRandomness:
        """The correlated-randomness provider of this party for ``session``."""
        i = self.index
        key_prev = self._pair_key(prv(i), i, session)  # k_i, with party i-1
        key_next = self._pair_key(nxt(i), nxt(i), session)  # k_{i+1}, with i+1
        return PrfRandomness(i, key_prev, key_next)


def generate_party_keys() -> list[PartyKeys]:
    """Fresh keys for three parties (tests, simulation, a deployment's setup)."""
    secrets_ = [X25519PrivateKey.generate() for _ in range(PARTIES)]
    pubs = (raw_public(secrets_[0]), raw_public(secrets_[1]), raw_public(secrets_[2]))
    return [PartyKeys(i, secrets_[i], pubs) for i in range(PARTIES)]
