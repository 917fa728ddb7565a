"""One-time message authentication: Poly1305 under a key drawn from a PRF.

:func:`one_time_mac` keys Poly1305 with the first 32 bytes of the AES-256-CTR
stream (:func:`fedsec.crypto.prg.keystream_words`) under a secret key at a
nonce, as ChaCha20-Poly1305 derives its Poly1305 key (RFC 8439, section 2.6):
a fresh, uniform key per (key, nonce) that must tag one message only — or,
as the MPC parties use it, the *same* message at two holders, who then
compare tags.

Two holders of the key that tag different messages of at most ``L`` bytes
get equal tags with probability at most ``8 ceil(L / 16) / 2^106`` (below
2^-80 up to 2^24 64-bit words), whoever chose the messages without the key.
A third party that sees both tags of the same message learns nothing about
it: the tag is masked by the key's uniform second half.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.poly1305 import Poly1305

from fedsec.crypto.prg import KEY_BYTES, keystream_words

TAG_BYTES = 16
"""Size of a tag."""


def one_time_mac(key: bytes, nonce: int) -> Poly1305:
    """A Poly1305 context under the one-time key of ``(key, nonce)``.

    Feed it with ``update`` and close it with ``finalize`` (16 bytes).
    """
    return Poly1305(keystream_words(key, nonce, KEY_BYTES // 8).tobytes())
