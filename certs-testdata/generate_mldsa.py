#!/usr/bin/env python3
"""Generate the ML-DSA part of the iamra test PKI.  TEST KEYS ONLY.

Called by generate.sh after generate.py (it needs ca/root.* and ca/intermediate.*);
also runs alone to regenerate only the ML-DSA files:

    python3 certs-testdata/generate_mldsa.py certs-testdata

Needs python `cryptography` with ML-DSA (47 or later, wheels built with OpenSSL
3.5+). cryptography writes only the RFC 9881 `seed` form of an ML-DSA PKCS#8 key;
the `expandedKey` and `both` forms are written here, the expanded key computed
from the seed by the FIPS 204 KeyGen below (taken from the project's shared
vectors' check_vectors.py). Every generated file is checked before the script ends.
"""
import hashlib
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import mldsa

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generate as g  # noqa: E402

OUT = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent)
g.OUT = OUT
PASSWORD = (OUT / "password.txt").read_bytes()

# ---- FIPS 204 ML-DSA.KeyGen_internal (pure Python, not constant time: fixtures only) ----
ML_Q = 8380417
# level: k, l, eta, tau, lambda, gamma1, gamma2, omega
ML_PARAMS = {44: (4, 4, 2, 39, 128, 1 << 17, (ML_Q - 1) // 88, 80),
             65: (6, 5, 4, 49, 192, 1 << 19, (ML_Q - 1) // 32, 55),
             87: (8, 7, 2, 60, 256, 1 << 19, (ML_Q - 1) // 32, 75)}
MLDSA_SIG_BYTES = {44: 2420, 65: 3309, 87: 4627}
ML_ZETAS = [pow(1753, int(format(i, "08b")[::-1], 2), ML_Q) for i in range(256)]


def _ml_ntt(a):
    w, m, ln = [x % ML_Q for x in a], 0, 128
    while ln >= 1:
        for start in range(0, 256, 2 * ln):
            m += 1
            z = ML_ZETAS[m]
            for j in range(start, start + ln):
                t = z * w[j + ln] % ML_Q
                w[j + ln] = (w[j] - t) % ML_Q
                w[j] = (w[j] + t) % ML_Q
        ln //= 2
    return w


def _ml_intt(w):
    a, m, ln = list(w), 256, 1
    while ln < 256:
        for start in range(0, 256, 2 * ln):
            m -= 1
            z = ML_Q - ML_ZETAS[m]
            for j in range(start, start + ln):
                t = a[j]
                a[j] = (t + a[j + ln]) % ML_Q
                a[j + ln] = z * (t - a[j + ln]) % ML_Q
        ln *= 2
    return [8347681 * x % ML_Q for x in a]  # 8347681 = 256^-1 mod q


def _ml_mul(a, b):
    return [x * y % ML_Q for x, y in zip(a, b)]


def _ml_add(a, b):
    return [(x + y) % ML_Q for x, y in zip(a, b)]


def _ml_center(x):
    x %= ML_Q
    return x - ML_Q if x > ML_Q // 2 else x


def _ml_shake(fn, data, n):
    return fn(data).digest(n)


def _ml_rej_ntt_poly(seed):
    n, out, i = 840, [], 0
    buf = _ml_shake(hashlib.shake_128, seed, n)
    while len(out) < 256:
        if i + 3 > n:
            n *= 2
            buf = _ml_shake(hashlib.shake_128, seed, n)
        z = buf[i] | buf[i + 1] << 8 | (buf[i + 2] & 0x7F) << 16
        i += 3
        if z < ML_Q:
            out.append(z)
    return out


def _ml_rej_bounded_poly(seed, eta):
    n, out, i = 272, [], 0
    buf = _ml_shake(hashlib.shake_256, seed, n)
    while len(out) < 256:
        if i >= n:
            n *= 2
            buf = _ml_shake(hashlib.shake_256, seed, n)
        for b in (buf[i] & 15, buf[i] >> 4):
            if len(out) < 256:
                if eta == 2 and b < 15:
                    out.append(2 - b % 5)
                elif eta == 4 and b < 9:
                    out.append(4 - b)
        i += 1
    return out


def _ml_pack(coeffs, bits):
    v = 0
    for i, c in enumerate(coeffs):
        v |= c << (i * bits)
    return v.to_bytes(32 * bits, "little")


def _ml_unpack(data, bits):
    v, mask = int.from_bytes(data, "little"), (1 << bits) - 1
    return [(v >> (i * bits)) & mask for i in range(256)]


def mldsa_expand(level, seed):
    """FIPS 204 ML-DSA.KeyGen_internal: (pk, expanded sk) and what signing needs."""
    k, l, eta = ML_PARAMS[level][:3]
    h = _ml_shake(hashlib.shake_256, seed + bytes([k, l]), 128)
    rho, rho2, key = h[:32], h[32:96], h[96:]
    a_hat = [[_ml_rej_ntt_poly(rho + bytes([s, r])) for s in range(l)] for r in range(k)]
    s1 = [_ml_rej_bounded_poly(rho2 + r.to_bytes(2, "little"), eta) for r in range(l)]
    s2 = [_ml_rej_bounded_poly(rho2 + (r + l).to_bytes(2, "little"), eta) for r in range(k)]
    s1_hat = [_ml_ntt(p) for p in s1]
    t1, t0 = [], []
    for r in range(k):
        acc = [0] * 256
        for s in range(l):
            acc = _ml_add(acc, _ml_mul(a_hat[r][s], s1_hat[s]))
        t = _ml_add(_ml_intt(acc), s2[r])
        lo = [((x + 4095) & 8191) - 4095 for x in t]  # t mod+- 2^13
        t0.append(lo)
        t1.append([(x - y) >> 13 for x, y in zip(t, lo)])
    pk = rho + b"".join(_ml_pack(p, 10) for p in t1)
    tr = _ml_shake(hashlib.shake_256, pk, 64)
    ebits = 3 if eta == 2 else 4
    sk = (rho + key + tr + b"".join(_ml_pack([eta - c for c in p], ebits) for p in s1 + s2)
          + b"".join(_ml_pack([4096 - c for c in p], 13) for p in t0))
    return {"pk": pk, "sk": sk, "key": key, "tr": tr, "a_hat": a_hat, "s1_hat": s1_hat,
            "s2_hat": [_ml_ntt(p) for p in s2], "t0_hat": [_ml_ntt(p) for p in t0]}


# ---- PKCS#8 in the three RFC 9881 forms ----
LEVELS = {44: mldsa.MLDSA44PrivateKey, 65: mldsa.MLDSA65PrivateKey, 87: mldsa.MLDSA87PrivateKey}
OID = {44: "2.16.840.1.101.3.4.3.17", 65: "2.16.840.1.101.3.4.3.18", 87: "2.16.840.1.101.3.4.3.19"}


def tlv(tag, value):
    return bytes([tag]) + g.der_len(len(value)) + value


def oid_der(oid):
    parts = [int(p) for p in oid.split(".")]
    body = bytes([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        p >>= 7
        while p:
            chunk.append(0x80 | (p & 0x7F))
            p >>= 7
        body += bytes(reversed(chunk))
    return tlv(0x06, body)


def pkcs8_der(oid, private_key):
    """PrivateKeyInfo v0: algorithm without parameters, privateKey octets."""
    return tlv(0x30, b"\x02\x01\x00" + tlv(0x30, oid_der(oid)) + tlv(0x04, private_key))


def pem(der, label="PRIVATE KEY"):
    import base64
    b = base64.b64encode(der).decode()
    lines = [b[i:i + 64] for i in range(0, len(b), 64)]
    return "\n".join([f"-----BEGIN {label}-----"] + lines + [f"-----END {label}-----", ""])


def seed_of(key):
    """The 32-byte seed of a cryptography ML-DSA key (from its seed-form PKCS#8)."""
    der = key.private_bytes(g.DER, ser.PrivateFormat.PKCS8, g.NOENC)
    assert der[-34:-32] == b"\x80\x20", "cryptography writes the seed form"
    return der[-32:]


def forms(level, seed):
    """{form: privateKey octets} for seed, expanded and both."""
    sk = mldsa_expand(level, seed)["sk"]
    return {
        "seed": tlv(0x80, seed),
        "expanded": tlv(0x04, sk),
        "both": tlv(0x30, tlv(0x04, seed) + tlv(0x04, sk)),
    }


def write_key_files(d, level, key):
    seed = seed_of(key)
    oid = OID[level]
    for form, octets in forms(level, seed).items():
        der = pkcs8_der(oid, octets)
        g.write(f"{d}/key.{form}.pem", pem(der))
        g.write(f"{d}/key.{form}.der", der)
    enc = key.private_bytes(g.PEM, ser.PrivateFormat.PKCS8, ser.BestAvailableEncryption(PASSWORD))
    g.write(f"{d}/key.enc-seed.pem", enc)
    # The expanded key matches cryptography's own view of the public key.
    pk = mldsa_expand(level, seed)["pk"]
    assert pk == key.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw), d


# ---- certificates with ML-DSA keys or ML-DSA issuers ----
# cryptography 48's CertificateBuilder takes no ML-DSA key: the certificate is built
# with a placeholder P-256 key, then its TBSCertificate gets the ML-DSA
# SubjectPublicKeyInfo and the issuer's signature algorithm and is signed again.
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID  # noqa: E402


def is_mldsa(key):
    return type(key).__name__.startswith("MLDSA")


def level_of(key):
    return int(type(key).__name__[5:7])


def spki_der(key):
    return key.public_key().public_bytes(g.DER, ser.PublicFormat.SubjectPublicKeyInfo)


def raw_public(key):
    if is_mldsa(key):
        return key.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    return None


def sig_alg_and_sign(issuer_key, tbs):
    if is_mldsa(issuer_key):
        return tlv(0x30, oid_der(OID[level_of(issuer_key)])), issuer_key.sign(tbs)
    if isinstance(issuer_key, rsa.RSAPrivateKey):
        alg = tlv(0x30, oid_der("1.2.840.113549.1.1.11") + b"\x05\x00")
        return alg, issuer_key.sign(tbs, padding.PKCS1v15(), hashes.SHA256())
    h = g.sig_hash(issuer_key)
    oid = "1.2.840.10045.4.3.3" if isinstance(h, hashes.SHA384) else "1.2.840.10045.4.3.2"
    return tlv(0x30, oid_der(oid)), issuer_key.sign(tbs, ec.ECDSA(h))


def elements(buf):
    """The TLV elements of a DER content, as byte strings."""
    out, i = [], 0
    while i < len(buf):
        n, _ = g.der_tlv(buf, i)
        out.append(buf[i:i + n])
        i += n
    return out


def mldsa_cert(cn, key, issuer_cert, issuer_key, nb, na, ca=False, pathlen=None):
    """A certificate for `key` (ML-DSA or not) signed by `issuer_key` (ML-DSA or not)."""
    placeholder = ec.generate_private_key(ec.SECP256R1())
    pub = placeholder.public_key()
    issuer_name = issuer_cert.subject if issuer_cert else g.name(cn)
    ski = hashlib.sha1(raw_public(key)).digest()
    b = (x509.CertificateBuilder()
         .subject_name(g.name(cn)).issuer_name(issuer_name).public_key(pub)
         .serial_number(g.random_serial())
         .not_valid_before(nb).not_valid_after(na)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=pathlen), critical=True)
         .add_extension(x509.KeyUsage(
             digital_signature=not ca, content_commitment=False, key_encipherment=False,
             data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
             encipher_only=False, decipher_only=False), critical=True)
         .add_extension(x509.SubjectKeyIdentifier(ski), critical=False))
    if issuer_cert is not None:
        iski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        b = b.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(iski), critical=False)
    if not ca:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                            critical=False)
    draft = b.sign(placeholder, hashes.SHA256())
    tbs = draft.tbs_certificate_bytes
    _, hdr = g.der_tlv(tbs, 0)
    parts = elements(tbs[hdr:])
    # version, serial, signature, issuer, validity, subject, spki, extensions
    assert len(parts) == 8 and parts[0][0] == 0xA0 and parts[7][0] == 0xA3
    alg, _ = sig_alg_and_sign(issuer_key, b"")
    parts[2] = alg
    parts[6] = spki_der(key)
    new_tbs = tlv(0x30, b"".join(parts))
    alg, sig = sig_alg_and_sign(issuer_key, new_tbs)
    der = tlv(0x30, new_tbs + alg + tlv(0x03, b"\x00" + sig))
    return x509.load_der_x509_certificate(der)


def check_issued_by(cert, issuer):
    """Names and signature (ML-DSA issuers too, which cryptography 48 cannot check)."""
    assert cert.issuer == issuer.subject
    pk = issuer.public_key()
    if type(pk).__name__.startswith("MLDSA"):
        pk.verify(cert.signature, cert.tbs_certificate_bytes)
    else:
        cert.verify_directly_issued_by(issuer)


def main():
    NB, NA = g.utc(2026), g.utc(2046)
    load_key = lambda p: ser.load_pem_private_key((OUT / p).read_bytes(), None)
    load_cert = lambda p: x509.load_pem_x509_certificate((OUT / p).read_bytes())
    root, root_key = load_cert("ca/root.pem"), load_key("ca/root.key")
    inter, int_key = load_cert("ca/intermediate.pem"), load_key("ca/intermediate.key")

    # ML-DSA-65 intermediate CA under the RSA root.
    ca_key = mldsa.MLDSA65PrivateKey.generate()
    ca = mldsa_cert("iamra Test ML-DSA Intermediate CA", ca_key, root, root_key,
                    g.utc(2026), g.utc(2055), ca=True, pathlen=0)
    g.write("mldsa-ca/ca.pem", g.cert_pem(ca))
    g.write("mldsa-ca/ca.key", pem(pkcs8_der(OID[65], forms(65, seed_of(ca_key))["seed"])))
    g.write("mldsa-ca/chain.pem", "# intermediate: iamra Test ML-DSA Intermediate CA\n"
            + g.cert_pem(ca).decode())

    # Leaves: ML-DSA-44 under the EC P-384 intermediate, ML-DSA-65/87 under the ML-DSA CA.
    for level, issuer, ikey in ((44, inter, int_key), (65, ca, ca_key), (87, ca, ca_key)):
        d = f"mldsa{level}"
        k = LEVELS[level].generate()
        c = mldsa_cert(f"iamra-test-{d}", k, issuer, ikey, NB, NA)
        g.write(f"{d}/cert.pem", g.cert_pem(c))
        g.write(f"{d}/cert.der", c.public_bytes(g.DER))
        write_key_files(d, level, k)
        check_issued_by(c, issuer)

    # ---- bad ML-DSA keys ----
    seed = seed_of(mldsa.MLDSA65PrivateKey.generate())
    f = forms(65, seed)
    sk = mldsa_expand(65, seed)["sk"]
    bad = {
        "mldsa-seed-31-bytes": pkcs8_der(OID[65], tlv(0x80, seed[:31])),
        "mldsa-expanded-short": pkcs8_der(OID[65], tlv(0x04, sk[:-1])),
        "mldsa-both-seed-33-bytes": pkcs8_der(
            OID[65], tlv(0x30, tlv(0x04, seed + b"\x00") + tlv(0x04, sk))),
        # The expanded half is another key's: the halves disagree.
        "mldsa-both-mismatch": pkcs8_der(OID[65], tlv(0x30, tlv(0x04, seed) + tlv(
            0x04, mldsa_expand(65, bytes(32))["sk"]))),
        # ML-DSA-65 key bytes under the ML-DSA-44 OID: the expanded length is wrong.
        "mldsa-both-wrong-level": pkcs8_der(OID[44], f["both"]),
        # HashML-DSA-65 (pre-hash) and an unassigned OID of the same arc.
        "mldsa-hash-oid": pkcs8_der("2.16.840.1.101.3.4.3.33", f["seed"]),
        "mldsa-unknown-oid": pkcs8_der("2.16.840.1.101.3.4.3.99", f["seed"]),
        # An INTEGER where the seed / expanded / both choice should be.
        "mldsa-not-a-choice": pkcs8_der(OID[65], b"\x02\x01\x05"),
    }
    for name, der in bad.items():
        g.write(f"bad/{name}.pem", pem(der))

    # ---- checks ----
    ca.verify_directly_issued_by(root)  # RSA issuer: cryptography checks it
    for level in (44, 65, 87):
        d = f"mldsa{level}"
        cert = load_cert(f"{d}/cert.pem")
        pk = cert.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
        seed_key = ser.load_pem_private_key((OUT / f"{d}/key.seed.pem").read_bytes(), None)
        enc_key = ser.load_pem_private_key((OUT / f"{d}/key.enc-seed.pem").read_bytes(), PASSWORD)
        for k in (seed_key, enc_key):
            assert k.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw) == pk, d


if __name__ == "__main__":
    main()
