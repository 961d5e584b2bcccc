#!/usr/bin/env python3
"""Generate the iamra test PKI (keys, certificates, bad inputs).  TEST KEYS ONLY.

Called by generate.sh, which adds the encodings python cannot write
(encrypted PKCS#8, "EC PARAMETERS" + SEC1, PKCS#12) and verifies everything.
"""
import datetime as dt
import ipaddress
import os
import random
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

OUT = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent)
PEM, DER = ser.Encoding.PEM, ser.Encoding.DER
NOENC = ser.NoEncryption()


def utc(y, m=1, d=1):
    return dt.datetime(y, m, d, tzinfo=dt.timezone.utc)


def write(rel, data):
    p = OUT / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data.encode() if isinstance(data, str) else data)


def new_key(kind):
    if kind.startswith("rsa"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[3:]))
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    curve = {"p256": ec.SECP256R1, "p384": ec.SECP384R1, "p521": ec.SECP521R1}[kind]
    return ec.generate_private_key(curve())


def pkcs8(key, enc=PEM):
    return key.private_bytes(enc, ser.PrivateFormat.PKCS8, NOENC)


def traditional(key, enc=PEM):
    # RSA -> PKCS#1 "RSA PRIVATE KEY"; EC -> SEC1 "EC PRIVATE KEY" (with curve OID + public key)
    return key.private_bytes(enc, ser.PrivateFormat.TraditionalOpenSSL, NOENC)


def random_serial():
    # positive, exactly 16 octets as a DER INTEGER (top bit clear, next bit set)
    return (int.from_bytes(os.urandom(16), "big") & ((1 << 127) - 1)) | (1 << 126)


def sig_hash(issuer_key):
    if type(issuer_key).__name__.startswith("MLDSA"):
        return None  # ML-DSA signs the TBSCertificate itself (RFC 9881)
    if isinstance(issuer_key, ec.EllipticCurvePrivateKey) and issuer_key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_cert(cn, key, issuer_cert, issuer_key, nb, na, ca=False, pathlen=None,
              eku=(ExtendedKeyUsageOID.CLIENT_AUTH,), san=None, serial=None):
    """key: subject private key; issuer_cert None => self-signed."""
    pub = key.public_key()
    issuer_name = issuer_cert.subject if issuer_cert else name(cn)
    b = (x509.CertificateBuilder()
         .subject_name(name(cn)).issuer_name(issuer_name).public_key(pub)
         .serial_number(serial or random_serial())
         .not_valid_before(nb).not_valid_after(na)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=pathlen), critical=True)
         .add_extension(x509.KeyUsage(
             digital_signature=not ca, content_commitment=False, key_encipherment=False,
             data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
             encipher_only=False, decipher_only=False), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False))
    if issuer_cert is not None:
        ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        b = b.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    if eku and not ca:
        b = b.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    if san:
        b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
    signer = issuer_key if issuer_cert is not None else key
    return b.sign(signer, sig_hash(signer))


def cert_pem(c):
    return c.public_bytes(PEM)


# ---- minimal DER helpers, used only to give serial-huge a 160-bit serial ----
# (cryptography refuses serial numbers of 160 bits or more, RFC 5280 allows 20 octets)
def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def der_tlv(buf, off):
    """-> (total length of the element at off, header length)"""
    first = buf[off + 1]
    if first < 0x80:
        return 2 + first, 2
    n = first & 0x7F
    ln = int.from_bytes(buf[off + 2:off + 2 + n], "big")
    return 2 + n + ln, 2 + n


def resign_with_serial(cert, serial_bytes, issuer_key):
    tbs = cert.tbs_certificate_bytes
    _, hdr = der_tlv(tbs, 0)
    body = tbs[hdr:]
    vlen, _ = der_tlv(body, 0)              # [0] EXPLICIT version
    slen, _ = der_tlv(body, vlen)           # INTEGER serialNumber
    content = serial_bytes if serial_bytes[0] < 0x80 else b"\x00" + serial_bytes
    new_body = body[:vlen] + b"\x02" + der_len(len(content)) + content + body[vlen + slen:]
    new_tbs = b"\x30" + der_len(len(new_body)) + new_body
    full = cert.public_bytes(DER)
    _, chdr = der_tlv(full, 0)
    tlen, _ = der_tlv(full, chdr)
    alen, _ = der_tlv(full, chdr + tlen)
    sigalg = full[chdr + tlen:chdr + tlen + alen]
    sig = issuer_key.sign(new_tbs, ec.ECDSA(sig_hash(issuer_key)))
    bitstr = b"\x03" + der_len(len(sig) + 1) + b"\x00" + sig
    outer = new_tbs + sigalg + bitstr
    new = x509.load_der_x509_certificate(b"\x30" + der_len(len(outer)) + outer)
    assert new.serial_number == int.from_bytes(serial_bytes, "big")
    return new


def main():
    NB, NA = utc(2026), utc(2046)

    # ---- CAs ----
    root_key = new_key("rsa3072")
    root = make_cert("iamra Test Root CA", root_key, None, None, utc(2026), utc(2056), ca=True)
    int_key = new_key("p384")
    inter = make_cert("iamra Test Intermediate CA", int_key, root, root_key,
                      utc(2026), utc(2055), ca=True, pathlen=0)
    other_key = new_key("p256")
    other = make_cert("iamra Untrusted Root", other_key, None, None, utc(2026), utc(2056), ca=True)
    for base, c, k in (("root", root, root_key), ("intermediate", inter, int_key),
                       ("other-root", other, other_key)):
        write(f"ca/{base}.pem", cert_pem(c))
        write(f"ca/{base}.key", pkcs8(k))

    inter_pem = cert_pem(inter).decode()
    write("chain.pem", "# intermediate: iamra Test Intermediate CA\n" + inter_pem
          + "# end of chain\n")
    write("chain-with-root.pem", "# intermediate: iamra Test Intermediate CA\n" + inter_pem
          + "\n# root: iamra Test Root CA (self-signed)\n" + cert_pem(root).decode()
          + "# end of chain\n")

    # ---- normal leaves ----
    for nm, kind in (("rsa2048", "rsa2048"), ("rsa3072", "rsa3072"), ("rsa4096", "rsa4096"),
                     ("ec-p256", "p256"), ("ec-p384", "p384")):
        k = new_key(kind)
        c = make_cert(f"iamra-test-{nm}", k, inter, int_key, NB, NA)
        write(f"{nm}/cert.pem", cert_pem(c))
        write(f"{nm}/cert.der", c.public_bytes(DER))
        write(f"{nm}/key.pkcs8.pem", pkcs8(k))
        write(f"{nm}/key.pkcs8.der", pkcs8(k, DER))
        fmt = "pkcs1" if kind.startswith("rsa") else "sec1"
        write(f"{nm}/key.{fmt}.pem", traditional(k))
        write(f"{nm}/key.{fmt}.der", traditional(k, DER))
        write(f"{nm}/combined.pem", pkcs8(k) + cert_pem(c))
        write(f"{nm}/combined-cert-first.pem", cert_pem(c) + pkcs8(k))

    # ---- special leaves ----
    def leaf(d, kind, issuer=inter, ikey=int_key, nb=NB, na=NA, **kw):
        k = new_key(kind)
        c = make_cert(f"iamra-test-{d}", k, issuer, ikey, nb, na, **kw)
        write(f"{d}/cert.pem", cert_pem(c))
        write(f"{d}/key.pkcs8.pem", pkcs8(k))
        return c, k

    c, _ = leaf("serial-huge", "p256")
    huge = bytes.fromhex("99" + "0102030405060708090a0b0c0d0e0f10111213")  # 20 octets, top bit set
    c = resign_with_serial(c, huge, int_key)
    write("serial-huge/cert.pem", cert_pem(c))
    write("serial-huge/serial.txt", str(c.serial_number))

    leaf("expired", "p256", nb=utc(2020), na=utc(2021))
    leaf("not-yet-valid", "p256", nb=utc(2090), na=utc(2091))
    leaf("untrusted", "p256", issuer=other, ikey=other_key)
    leaf("ed25519", "ed25519")
    leaf("rsa1024", "rsa1024")
    leaf("p521", "p521")
    leaf("no-eku", "p256", eku=())

    write("mismatch/cert.pem", (OUT / "rsa2048/cert.pem").read_bytes())
    write("mismatch/key.pkcs8.pem", pkcs8(new_key("rsa2048")))
    write("mismatch/key-ec.pkcs8.pem", pkcs8(new_key("p256")))
    write("ca-as-leaf/cert.pem", cert_pem(inter))
    write("ca-as-leaf/key.pkcs8.pem", pkcs8(int_key))

    # ---- bad inputs (bad/truncated.p12 is written by generate.sh) ----
    rsa_cert = (OUT / "rsa2048/cert.pem").read_text()
    rsa_key = (OUT / "rsa2048/key.pkcs8.pem").read_text()
    write("bad/empty.pem", b"")
    write("bad/garbage.pem", "This is not a PEM file.\nIt contains no BEGIN or END lines,\n"
          "just some text: lorem ipsum dolor sit amet 0123456789 !@#$%^&*()\n")
    lines = rsa_cert.splitlines()
    write("bad/wrong-label.pem", "\n".join(["-----BEGIN PUBLIC KEY-----"] + lines[1:-1]
                                           + ["-----END PUBLIC KEY-----", ""]))
    body = lines[1:-1]
    write("bad/truncated-cert.pem", "\n".join([lines[0]] + body[:len(body) // 2] + [lines[-1], ""]))
    write("bad/cert-as-key.pem", rsa_cert)
    write("bad/key-as-cert.pem", rsa_key)
    write("bad/not-der.der", bytes([0x5A]) + random.Random(20260101).randbytes(199))
    write("bad/chain-with-key.pem", inter_pem + pkcs8(int_key).decode())

    # ---- TLS for the local HTTPS test endpoint ----
    tls_ca_key = new_key("p256")
    tls_ca = make_cert("iamra Test TLS CA", tls_ca_key, None, None, utc(2026), utc(2056), ca=True)
    srv_key = new_key("p256")
    srv = make_cert("localhost", srv_key, tls_ca, tls_ca_key, NB, NA,
                    eku=(ExtendedKeyUsageOID.SERVER_AUTH,),
                    san=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                         x509.IPAddress(ipaddress.ip_address("::1"))])
    write("tls/ca.pem", cert_pem(tls_ca))
    write("tls/ca.key", pkcs8(tls_ca_key))
    write("tls/server.pem", cert_pem(srv))
    write("tls/server.key", pkcs8(srv_key))


if __name__ == "__main__":
    main()
