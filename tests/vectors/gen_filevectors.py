#!/usr/bin/env python3
"""Independent test vectors for encrypted data files, format v1 (docs/fileformat.md).

A second implementation, written from docs/fileformat.md only, on top of the Python
`cryptography` package (Debian: python3-cryptography). It imports nothing from this repository,
so host/filecrypt.c is checked against a different code base.

From fixed inputs (content key, file id, recipient key pairs, ephemeral keys, plaintexts) it
builds
  * "multi":  2500 bytes, chunk 2^10, two recipients (3 chunks: 1024, 1024, 452),
  * "exact":  2048 bytes, chunk 2^10, one recipient (2 chunks, the final one full),
  * "empty":  0 bytes, chunk 2^16, one recipient (one empty final chunk),
  * "rewrap": the header of "multi" after recovery replaced recipient 1 by a third key,
checks that it can open them again, and writes tests/vectors/file_v1.txt as `name = hex` lines.

Run from anywhere:  python3 tests/vectors/gen_filevectors.py
"""

import hashlib
import os
import struct

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

HERE = os.path.dirname(os.path.abspath(__file__))

P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

MAGIC = b"ICDF"
VERSION = 0x01
TYPE_P256_ECDH = 0x01
KWK_INFO = b"icdup file kwk v1"
FIXED_LEN = 24
ENTRY_LEN = 122
TAG_LEN = 16


def fixed_bytes(label, n=32):
    """n arbitrary but fixed bytes, named by a label."""
    out = b""
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(b"icdup file vector|" + label.encode() +
                              struct.pack(">I", counter)).digest()
        counter += 1
    return out[:n]


def fixed_scalar(label):
    v = int.from_bytes(fixed_bytes(label), "big")
    return (1 + v % (P256_N - 1)).to_bytes(32, "big")


def private_key(priv):
    return ec.derive_private_key(int.from_bytes(priv, "big"), ec.SECP256R1())


def public_point(priv):
    return private_key(priv).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def ecdh_x(priv, peer_pub):
    peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), peer_pub)
    return private_key(priv).exchange(ec.ECDH(), peer)


def key_id(pub):
    return hashlib.sha256(pub).digest()[:8]


def kwk_derive(x, eph_pub, rcpt_pub):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=eph_pub + rcpt_pub,
                info=KWK_INFO).derive(x)


def fixed_header(chunk_exp, n, file_id):
    h = MAGIC + bytes([VERSION, chunk_exp, n, 0]) + file_id
    assert len(h) == FIXED_LEN
    return h


def entry(fixed, cek, rcpt_pub, eph_priv):
    """Returns (entry bytes, x, kwk)."""
    eph_pub = public_point(eph_priv)
    x = ecdh_x(eph_priv, rcpt_pub)
    kwk = kwk_derive(x, eph_pub, rcpt_pub)
    wrapped = AESGCM(kwk).encrypt(bytes(12), cek, fixed)
    e = bytes([TYPE_P256_ECDH]) + key_id(rcpt_pub) + eph_pub + wrapped
    assert len(e) == ENTRY_LEN
    return e, x, kwk


def chunks(plaintext, chunk_exp):
    """The chunk split of the format: full chunks, the last one 0..2^e bytes, never an extra
    empty chunk after a full one (only an empty file has an empty chunk)."""
    size = 1 << chunk_exp
    if not plaintext:
        return [b""]
    return [plaintext[i:i + size] for i in range(0, len(plaintext), size)]


def encrypt(plaintext, chunk_exp, cek, file_id, rcpts, ephs):
    fixed = fixed_header(chunk_exp, len(rcpts), file_id)
    h = hashlib.sha256(fixed).digest()
    table = b""
    details = []
    for pub, eph in zip(rcpts, ephs):
        e, x, kwk = entry(fixed, cek, pub, eph)
        table += e
        details.append((x, kwk))
    body = b""
    parts = chunks(plaintext, chunk_exp)
    for i, part in enumerate(parts):
        final = i == len(parts) - 1
        nonce = file_id[:4] + struct.pack(">Q", i)
        body += AESGCM(cek).encrypt(nonce, part, h + bytes([1 if final else 0]))
    return fixed + table + body, fixed, h, details


def decrypt(data, rcpt_priv):
    """Opens a file with a private key (a check of the generator against itself)."""
    fixed = data[:FIXED_LEN]
    assert fixed[:4] == MAGIC and fixed[4] == VERSION and fixed[7] == 0
    chunk_exp, n = fixed[5], fixed[6]
    file_id = fixed[8:24]
    h = hashlib.sha256(fixed).digest()
    pub = public_point(rcpt_priv)
    cek = None
    for i in range(n):
        e = data[FIXED_LEN + i * ENTRY_LEN:FIXED_LEN + (i + 1) * ENTRY_LEN]
        if e[0] == TYPE_P256_ECDH and e[1:9] == key_id(pub):
            eph_pub = e[9:74]
            kwk = kwk_derive(ecdh_x(rcpt_priv, eph_pub), eph_pub, pub)
            cek = AESGCM(kwk).decrypt(bytes(12), e[74:122], fixed)
    assert cek is not None
    body = data[FIXED_LEN + n * ENTRY_LEN:]
    rec = (1 << chunk_exp) + TAG_LEN
    out = b""
    i = 0
    while True:
        part = body[i * rec:(i + 1) * rec]
        final = (i + 1) * rec >= len(body)
        nonce = file_id[:4] + struct.pack(">Q", i)
        out += AESGCM(cek).decrypt(nonce, part, h + bytes([1 if final else 0]))
        if final:
            return out
        i += 1


def write(path, title, items):
    with open(path, "w", encoding="ascii") as f:
        f.write("# %s\n" % title)
        f.write("# Generated by tests/vectors/gen_filevectors.py (independent Python\n")
        f.write("# implementation of docs/fileformat.md); do not edit by hand.\n")
        f.write("# Format: name = hex\n")
        for name, value in items:
            if name.startswith("#"):
                f.write("\n%s\n" % name)
            else:
                f.write("%s = %s\n" % (name, value.hex()))


def main():
    cek = fixed_bytes("content key")
    file_id = fixed_bytes("file id", 16)
    r1_priv, r2_priv, r3_priv = (fixed_scalar("recipient %d" % i) for i in (1, 2, 3))
    r1_pub, r2_pub, r3_pub = (public_point(p) for p in (r1_priv, r2_priv, r3_priv))
    e1_priv, e2_priv, e3_priv = (fixed_scalar("ephemeral %d" % i) for i in (1, 2, 3))
    pt_multi = fixed_bytes("plaintext multi", 2500)
    pt_exact = fixed_bytes("plaintext exact", 2048)

    multi, m_fixed, m_h, m_det = encrypt(pt_multi, 10, cek, file_id, [r1_pub, r2_pub],
                                         [e1_priv, e2_priv])
    exact, _, _, _ = encrypt(pt_exact, 10, cek, file_id, [r1_pub], [e1_priv])
    empty, _, _, _ = encrypt(b"", 16, cek, file_id, [r1_pub], [e1_priv])
    assert len(multi) == 24 + 2 * 122 + (1024 + 16) * 2 + 452 + 16
    assert len(exact) == 24 + 122 + (1024 + 16) * 2
    assert len(empty) == 24 + 122 + 16
    for data, pt, privs in ((multi, pt_multi, (r1_priv, r2_priv)), (exact, pt_exact, (r1_priv,)),
                            (empty, b"", (r1_priv,))):
        for p in privs:
            assert decrypt(data, p) == pt

    # Recovery: recipient 1 replaced by recipient 3 (ephemeral 3); fixed header, recipient 2
    # and the chunks unchanged.
    e3, _, _ = entry(m_fixed, cek, r3_pub, e3_priv)
    rewrapped = m_fixed + e3 + multi[24 + 122:]
    assert decrypt(rewrapped, r3_priv) == pt_multi
    assert decrypt(rewrapped, r2_priv) == pt_multi

    items = [
        ("# common inputs", None),
        ("cek", cek),
        ("file_id", file_id),
        ("r1_priv", r1_priv), ("r1_pub", r1_pub), ("r1_key_id", key_id(r1_pub)),
        ("r2_priv", r2_priv), ("r2_pub", r2_pub), ("r2_key_id", key_id(r2_pub)),
        ("r3_priv", r3_priv), ("r3_pub", r3_pub), ("r3_key_id", key_id(r3_pub)),
        ("eph1_priv", e1_priv), ("eph1_pub", public_point(e1_priv)),
        ("eph2_priv", e2_priv), ("eph2_pub", public_point(e2_priv)),
        ("eph3_priv", e3_priv), ("eph3_pub", public_point(e3_priv)),
        ("# multi: 2500 bytes, chunk exponent 10, recipients r1 (eph1) and r2 (eph2)", None),
        ("multi_plaintext", pt_multi),
        ("multi_fixed", m_fixed),
        ("multi_h", m_h),
        ("multi_r1_x", m_det[0][0]), ("multi_r1_kwk", m_det[0][1]),
        ("multi_r2_x", m_det[1][0]), ("multi_r2_kwk", m_det[1][1]),
        ("multi_file", multi),
        ("# exact: 2048 bytes, chunk exponent 10, recipient r1 (eph1)", None),
        ("exact_plaintext", pt_exact),
        ("exact_file", exact),
        ("# empty: 0 bytes, chunk exponent 16, recipient r1 (eph1)", None),
        ("empty_file", empty),
        ("# rewrap: multi after recovery replaced r1 by r3 (eph3)", None),
        ("rewrap_file", rewrapped),
    ]
    write(os.path.join(HERE, "file_v1.txt"),
          "Encrypted data file v1 vectors (docs/fileformat.md)", items)


if __name__ == "__main__":
    main()
