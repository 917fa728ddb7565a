"""Pure cryptographic primitives for fedsec: no I/O, no protocol state.

Modules: :mod:`~fedsec.crypto.shamir` (t-of-n sharing over GF(2^31-1)),
:mod:`~fedsec.crypto.kdf` (X25519 + HKDF), :mod:`~fedsec.crypto.aead`
(AES-GCM), :mod:`~fedsec.crypto.seal` (ECIES packages to an X25519 key),
:mod:`~fedsec.crypto.mac` (one-time Poly1305 tags),
:mod:`~fedsec.crypto.signatures` (Ed25519), :mod:`~fedsec.crypto.prg` (the
AES-CTR PRG: masks, keyed streams, secret permutations),
:mod:`~fedsec.crypto.quantize` (ring quantisation) and
:mod:`~fedsec.crypto.packing` (k-bit packing). Every protocol (secure
aggregation, MPC, PSI, vertical training) draws on these; none keeps a copy.
"""
