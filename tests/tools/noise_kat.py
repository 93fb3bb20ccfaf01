#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Writes tests/unit/vectors/noise_kat.h: python3 tests/tools/noise_kat.py > tests/unit/vectors/noise_kat.h
# (needs the python "cryptography" package; the vectors are committed).
# An independent WireGuard handshake (Python: hashlib, hmac, cryptography)
# with fixed keys, to check bench/noise.c against.
import hashlib, hmac, struct
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives import serialization

def H(*parts):
    h = hashlib.blake2s(digest_size=32)
    for p in parts: h.update(p)
    return h.digest()
def MAC(key, msg): return hashlib.blake2s(msg, key=key, digest_size=16).digest()
def HMAC(key, msg): return hmac.new(key, msg, hashlib.blake2s).digest()
def KDF(key, inp, n):
    t0 = HMAC(key, inp); out = []; prev = b""
    for i in range(1, n + 1):
        prev = HMAC(t0, prev + bytes([i])); out.append(prev)
    return out
def clamp(k):
    k = bytearray(k); k[0] &= 248; k[31] = (k[31] & 127) | 64; return bytes(k)
def pub(priv):
    return X25519PrivateKey.from_private_bytes(priv).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
def DH(priv, p):
    return X25519PrivateKey.from_private_bytes(priv).exchange(X25519PublicKey.from_public_bytes(p))
def AEAD(k, ctr, pt, ad): return ChaCha20Poly1305(k).encrypt(b"\0" * 4 + struct.pack("<Q", ctr), pt, ad)
def tai64n(ns):
    return struct.pack(">QI", 0x400000000000000a + ns // 10**9, ns % 10**9)

ci = clamp(bytes(range(1, 33)))           # client static
sr = clamp(bytes(range(33, 65)))          # server static
ei = bytes(range(65, 97))                 # client ephemeral seed (clamped by both)
er = bytes(range(97, 129))                # server ephemeral seed
ci_pub, sr_pub = pub(ci), pub(sr)
ns = 1700000000123456789
CONSTRUCTION = b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
IDENTIFIER = b"WireGuard v1 zx2c4 Jason@zx2c4.com"

C = H(CONSTRUCTION); Hh = H(C, IDENTIFIER); Hh = H(Hh, sr_pub)
e = clamp(ei); e_pub = pub(e)
C, = KDF(C, e_pub, 1); Hh = H(Hh, e_pub)
C, k = KDF(C, DH(e, sr_pub), 2)
static = AEAD(k, 0, ci_pub, Hh); Hh = H(Hh, static)
C, k = KDF(C, DH(ci, sr_pub), 2)
ts = AEAD(k, 0, tai64n(ns), Hh); Hh = H(Hh, ts)
msg = bytes([1, 0, 0, 0]) + struct.pack("<I", 0x11223344) + e_pub + static + ts
msg += MAC(H(b"mac1----", sr_pub), msg)
init = msg + b"\0" * 16
# The server's response (responder side), to this initiation.
re = clamp(er); re_pub = pub(re)
C, = KDF(C, re_pub, 1); Hh = H(Hh, re_pub)
C, = KDF(C, DH(re, e_pub), 1)
C, = KDF(C, DH(re, ci_pub), 1)
C, tau, k = KDF(C, b"\0" * 32, 3); Hh = H(Hh, tau)
empty = AEAD(k, 0, b"", Hh); Hh = H(Hh, empty)
resp = bytes([2, 0, 0, 0]) + struct.pack("<I", 0x55667788) + struct.pack("<I", 0x11223344) + re_pub + empty
resp += MAC(H(b"mac1----", ci_pub), resp) + b"\0" * 16
t_send, t_recv = KDF(C, b"", 2)  # initiator's
def c(name, b): print(f"static const uint8_t {name}[{len(b)}] = {{" + ", ".join(f"0x{x:02x}" for x in b) + "};")
c("kat_init", init); c("kat_resp", resp); c("kat_send", t_send); c("kat_recv", t_recv)
c("kat_hmac", HMAC(bytes(range(32)), b"wireguard"))
k1, k2, k3 = KDF(bytes(range(32)), b"input", 3); c("kat_kdf1", k1); c("kat_kdf2", k2); c("kat_kdf3", k3)
c("kat_tai", tai64n(ns))
