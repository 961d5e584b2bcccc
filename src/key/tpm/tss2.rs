//! TSS2 PEM key files (`-----BEGIN TSS2 PRIVATE KEY-----`, draft-bottomley-tpm2-keys):
//! a small, lenient DER reader.
//!
//! ```text
//! TPMKey ::= SEQUENCE {
//!     type        OBJECT IDENTIFIER,              -- 2.23.133.10.1.3: loadable key
//!     emptyAuth   [0] EXPLICIT BOOLEAN OPTIONAL,
//!     policy      [1] EXPLICIT SEQUENCE OF TPMPolicy OPTIONAL,
//!     secret      [2] EXPLICIT OCTET STRING OPTIONAL,
//!     authPolicy  [3] EXPLICIT SEQUENCE OF TPMAuthPolicy OPTIONAL,
//!     description [4] EXPLICIT UTF8String OPTIONAL,
//!     rsaParent   [5] EXPLICIT BOOLEAN OPTIONAL,
//!     parent      INTEGER,
//!     pubkey      OCTET STRING,                   -- TPM2B_PUBLIC
//!     privkey     OCTET STRING                    -- TPM2B_PRIVATE
//! }
//! ```
//!
//! Lenient where the producers are: both the tpm2 OpenSSL provider and
//! `tpm2_encodeobject` write `emptyAuth TRUE` as the BER boolean `01` (DER wants
//! `FF`), so any non-zero octet is TRUE. Strict everywhere else: only loadable keys,
//! no policies or import secrets (refused with a clear reason rather than ignored),
//! definite lengths, and the TPM2B size prefixes must match their octet strings.
//! Pure Rust and independent of the `tpm` feature, so it is tested in every build.

use zeroize::Zeroizing;

/// The PEM label of a TSS2 key file.
pub const PEM_LABEL: &str = "TSS2 PRIVATE KEY";

/// DER of OID 2.23.133.10.1.3 (loadable key).
const OID_LOADABLE: &[u8] = &[0x67, 0x81, 0x05, 0x0a, 0x01, 0x03];
/// DER of OID 2.23.133.10.1.4 (importable key).
const OID_IMPORTABLE: &[u8] = &[0x67, 0x81, 0x05, 0x0a, 0x01, 0x04];
/// DER of OID 2.23.133.10.1.5 (sealed data).
const OID_SEALED: &[u8] = &[0x67, 0x81, 0x05, 0x0a, 0x01, 0x05];

/// A TPM hierarchy under which the storage primary key is re-created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hierarchy {
    /// `0x40000001`, the storage (owner) hierarchy: the usual one.
    Owner,
    /// `0x40000007`, the null hierarchy (its seed changes at every TPM reset).
    Null,
    /// `0x4000000B`, the endorsement hierarchy.
    Endorsement,
    /// `0x4000000C`, the platform hierarchy.
    Platform,
}

impl Hierarchy {
    /// The TPM handle of the hierarchy.
    pub fn handle(self) -> u32 {
        match self {
            Hierarchy::Owner => 0x4000_0001,
            Hierarchy::Null => 0x4000_0007,
            Hierarchy::Endorsement => 0x4000_000B,
            Hierarchy::Platform => 0x4000_000C,
        }
    }
}

/// The parent a loadable key is loaded under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parent {
    /// A hierarchy: the ECC P-256 storage primary key is re-created under it with
    /// the standard template (as tpm2-openssl and the reference helper do).
    Hierarchy(Hierarchy),
    /// A persistent storage key, `0x81000000`–`0x81FFFFFF`.
    Persistent(u32),
}

impl Parent {
    /// Classifies a parent handle.
    pub fn from_handle(handle: u32) -> Result<Self, Tss2Error> {
        match handle {
            0x4000_0001 => Ok(Parent::Hierarchy(Hierarchy::Owner)),
            0x4000_0007 => Ok(Parent::Hierarchy(Hierarchy::Null)),
            0x4000_000B => Ok(Parent::Hierarchy(Hierarchy::Endorsement)),
            0x4000_000C => Ok(Parent::Hierarchy(Hierarchy::Platform)),
            h if h >> 24 == 0x81 => Ok(Parent::Persistent(h)),
            h => Err(Tss2Error::Parent(h)),
        }
    }

    /// The TPM handle.
    pub fn handle(self) -> u32 {
        match self {
            Parent::Hierarchy(h) => h.handle(),
            Parent::Persistent(h) => h,
        }
    }
}

/// A parsed loadable TSS2 key.
pub struct Tss2Key {
    /// Whether the key has no authorisation value (no password).
    pub empty_auth: bool,
    /// Where the key is loaded.
    pub parent: Parent,
    /// The marshalled `TPMT_PUBLIC` (the TPM2B size prefix removed).
    pub public: Vec<u8>,
    /// The `TPM2B_PRIVATE` buffer contents (the size prefix removed): the key's
    /// sensitive area, encrypted by its parent. Zeroized on drop all the same.
    pub private: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Tss2Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Security: the private blob is not printed.
        f.debug_struct("Tss2Key")
            .field("empty_auth", &self.empty_auth)
            .field("parent", &format_args!("{:#010x}", self.parent.handle()))
            .field("public_len", &self.public.len())
            .finish_non_exhaustive()
    }
}

/// Why a TSS2 key file cannot be used. The text follows "TPM key file PATH".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum Tss2Error {
    /// Not the `TPMKey` structure, or truncated.
    #[error("is not a valid TSS2 key ({0})")]
    Malformed(#[serde(deserialize_with = "super::wire::static_str")] super::wire::StaticStr),
    /// An importable key (2.23.133.10.1.4).
    #[error(
        "is an importable TPM key (OID 2.23.133.10.1.4); only loadable keys (2.23.133.10.1.3) are supported"
    )]
    Importable,
    /// Sealed data (2.23.133.10.1.5).
    #[error("holds TPM sealed data (OID 2.23.133.10.1.5), not a signing key")]
    Sealed,
    /// Another key type.
    #[error("has TPM key type {0}; only loadable keys (2.23.133.10.1.3) are supported")]
    UnknownType(String),
    /// `policy` or `authPolicy` is present.
    #[error(
        "needs a TPM policy to be used, which iamra does not support (only a password or no authorization)"
    )]
    Policy,
    /// `secret` is present.
    #[error("carries an import secret, which iamra does not support")]
    Secret,
    /// `rsaParent` is TRUE.
    #[error("is stored under an RSA parent key, which iamra does not support (only ECC P-256)")]
    RsaParent,
    /// The parent handle is neither a hierarchy nor a persistent handle.
    #[error(
        "names parent {0:#010x}; the parent must be a persistent handle (0x81000000 to 0x81FFFFFF) or a hierarchy (0x40000001, 0x40000007, 0x4000000B, 0x4000000C)"
    )]
    Parent(u32),
}

/// Parses the DER (or the producers' BER) bytes of a `TSS2 PRIVATE KEY` block.
pub fn parse(der: &[u8]) -> Result<Tss2Key, Tss2Error> {
    let mut outer = Reader::new(der);
    let body = outer.expect(0x30, "not a SEQUENCE")?;
    if !outer.is_empty() {
        return Err(Tss2Error::Malformed("data after the key"));
    }
    let mut r = Reader::new(body);
    let oid = r.expect(0x06, "no key type OID")?;
    match oid {
        OID_LOADABLE => {}
        OID_IMPORTABLE => return Err(Tss2Error::Importable),
        OID_SEALED => return Err(Tss2Error::Sealed),
        other => return Err(Tss2Error::UnknownType(oid_text(other))),
    }
    let mut empty_auth = false;
    // The optional [n] fields, in increasing order.
    let mut last_tag = None;
    while let Some(tag) = r.peek_tag() {
        if tag & 0xE0 != 0xA0 {
            break;
        }
        let (tag, content) = r.read()?;
        let n = tag & 0x1F;
        if n == 0x1F {
            return Err(Tss2Error::Malformed("multi-byte tag"));
        }
        if last_tag.is_some_and(|l| n <= l) {
            return Err(Tss2Error::Malformed("optional fields out of order"));
        }
        last_tag = Some(n);
        match n {
            0 => empty_auth = boolean(content)?,
            1 | 3 => return Err(Tss2Error::Policy),
            2 => return Err(Tss2Error::Secret),
            4 => {
                let mut d = Reader::new(content);
                d.expect(0x0C, "description is not a UTF8String")?;
                if !d.is_empty() {
                    return Err(Tss2Error::Malformed("data after the description"));
                }
            }
            5 => {
                if boolean(content)? {
                    return Err(Tss2Error::RsaParent);
                }
            }
            _ => return Err(Tss2Error::Malformed("unknown optional field")),
        }
    }
    let parent = integer_u32(r.expect(0x02, "no parent INTEGER")?)?;
    let parent = Parent::from_handle(parent)?;
    let public = tpm2b(r.expect(0x04, "no public key OCTET STRING")?, "public key")?;
    let private = tpm2b(
        r.expect(0x04, "no private key OCTET STRING")?,
        "private key",
    )?;
    if !r.is_empty() {
        return Err(Tss2Error::Malformed(
            "unexpected fields after the private key",
        ));
    }
    if public.is_empty() {
        return Err(Tss2Error::Malformed("empty public key"));
    }
    if private.is_empty() {
        return Err(Tss2Error::Malformed("empty private key"));
    }
    Ok(Tss2Key {
        empty_auth,
        parent,
        public: public.to_vec(),
        private: Zeroizing::new(private.to_vec()),
    })
}

/// `[n] EXPLICIT BOOLEAN`: any non-zero octet is TRUE (BER), not only `FF` (DER).
fn boolean(explicit: &[u8]) -> Result<bool, Tss2Error> {
    let mut r = Reader::new(explicit);
    let v = r.expect(0x01, "a flag is not a BOOLEAN")?;
    if !r.is_empty() {
        return Err(Tss2Error::Malformed("data after a BOOLEAN"));
    }
    match v {
        [b] => Ok(*b != 0),
        _ => Err(Tss2Error::Malformed("a BOOLEAN is not one octet")),
    }
}

/// A non-negative INTEGER of at most 32 bits.
fn integer_u32(content: &[u8]) -> Result<u32, Tss2Error> {
    let Some(&first) = content.first() else {
        return Err(Tss2Error::Malformed("empty parent INTEGER"));
    };
    if first & 0x80 != 0 {
        return Err(Tss2Error::Malformed("negative parent INTEGER"));
    }
    let digits = match content {
        [0, rest @ ..] => rest,
        all => all,
    };
    if digits.len() > 4 {
        return Err(Tss2Error::Malformed("parent INTEGER over 32 bits"));
    }
    Ok(digits
        .iter()
        .fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
}

/// The contents of a TPM2B: a big-endian u16 size, then exactly that many octets.
fn tpm2b<'a>(octets: &'a [u8], what: &'static str) -> Result<&'a [u8], Tss2Error> {
    let Some((size, rest)) = octets.split_first_chunk::<2>() else {
        return Err(Tss2Error::Malformed(match what {
            "public key" => "public key shorter than its size field",
            _ => "private key shorter than its size field",
        }));
    };
    if usize::from(u16::from_be_bytes(*size)) != rest.len() {
        return Err(Tss2Error::Malformed(match what {
            "public key" => "public key size field does not match its length",
            _ => "private key size field does not match its length",
        }));
    }
    Ok(rest)
}

/// Dotted text of an OID's DER contents (for error messages).
fn oid_text(der: &[u8]) -> String {
    let Some((&first, rest)) = der.split_first() else {
        return "(empty OID)".into();
    };
    let mut arcs = vec![u64::from(first / 40).min(2)];
    arcs.push(u64::from(first) - arcs[0] * 40);
    let mut acc = 0u64;
    for &b in rest {
        acc = (acc << 7) | u64::from(b & 0x7F);
        if b & 0x80 == 0 {
            arcs.push(acc);
            acc = 0;
        }
        if acc > u64::from(u32::MAX) {
            return "(malformed OID)".into();
        }
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// A cursor over concatenated TLVs with definite lengths.
struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.data.first().copied()
    }

    /// Reads one TLV: (tag, contents).
    fn read(&mut self) -> Result<(u8, &'a [u8]), Tss2Error> {
        let truncated = Tss2Error::Malformed("truncated");
        let (&tag, rest) = self.data.split_first().ok_or(truncated.clone())?;
        let (&len0, rest) = rest.split_first().ok_or(truncated.clone())?;
        let (len, rest) = if len0 < 0x80 {
            (usize::from(len0), rest)
        } else {
            let n = usize::from(len0 & 0x7F);
            if n == 0 {
                return Err(Tss2Error::Malformed("indefinite length"));
            }
            if n > 3 {
                return Err(Tss2Error::Malformed("length over 16 MiB"));
            }
            if rest.len() < n {
                return Err(truncated);
            }
            let (bytes, rest) = rest.split_at(n);
            let len = bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            (len, rest)
        };
        if rest.len() < len {
            return Err(truncated);
        }
        let (content, rest) = rest.split_at(len);
        self.data = rest;
        Ok((tag, content))
    }

    /// Reads one TLV that must carry `tag`.
    fn expect(&mut self, tag: u8, missing: &'static str) -> Result<&'a [u8], Tss2Error> {
        match self.peek_tag() {
            Some(t) if t == tag => Ok(self.read()?.1),
            _ => Err(Tss2Error::Malformed(missing)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    /// tpm2 OpenSSL provider 1.1.1, EC P-256, no password (`a0 03 01 01 01`).
    const PROVIDER_EC: &str = "MIHwBgZngQUKAQOgAwEBAQIEQAAAAQRYAFYAIwALAAYAcgAAABAAEAADABAAIKT9bcY1e3FFqg42ngDJLIMsbWv6OSKrGh3v8OFdZ1GzACCLggJFgmKHmmc6GMm3AIx3HPGiHpt9bIKYH3XaolHmVwSBgAB+ACCFBgLrzQPZC8lD0NnYf6tF2BDPpd5mN+uTgctWi3dAaAAQc4sIe15iIyWYo5mboOYVAUz3k8Yp/XANrqBTDSJr/GcqOztB79HX4cncpFPDHDS6QkcsgqO/R+nBOzwPZEtdNb+bjFVgS0HTFQ/Y3hQqA93w8KulW8Eey/+d";
    /// The same provider, EC P-256 with a password (`emptyAuth FALSE`).
    const PROVIDER_EC_PASSWORD: &str = "MIHwBgZngQUKAQOgAwEBAAIEQAAAAQRYAFYAIwALAAYAcgAAABAAEAADABAAICQ/WQNvf7oXVrIreRclaDPpi21GEg1ls/JMoG3GTyNTACBIu8yy0hRiJx+wL60IjTwp5W8tblYvXhFH9B3mE8K56wSBgAB+ACCLRLhDA2r3SthyZUnbVA9d2Deg5zj5ecs0QPT5POHN5gAQBvtQc/xzRT+P39iAlCTcfDXsGqEOuCnARvJfulIlyMwhOyJG3w8hn7r35B/ZFKV/IuRqjs7dXcxE3S8SZ1q1mCu2/GtPibdx/pSXCG/BOT2lYlJiQMOdPX5A";
    /// tpm2-tools 5.4 `tpm2_encodeobject -p`, RSA-2048 under persistent 0x81000001.
    const TOOLS_RSA: &str = "MIICFQYGZ4EFCgEDoAMBAQECBQCBAAABBIIBGgEYAAEACwAEAHIAAAAQABQACwgAAAAAAAEAxFiy7j6gDd5/4DEfWbB6mNRWOK6wSf8zmsB3xk4LJnxX4Hh3+2vqld7KxhlsfN57yJG5pSKwtScfOcmpmNHC4x0631qiUX5Y8AiKFFmeQRYevwoFTevUSSEz+23sJ4zpfwYeHTw5gMbzPHIuQwZd2xapCU8eYtbkIBbgvJpg7hrMtmOFy7FQ3+HFM5qQwuKvF3BA0xb8pDXXPDvB2MAwESUmUrJRgNYM7H+tBYSaCm6iKRP+0SUqpE8LFaataatRwOTav4svWn9HRDD8ycvpt35R4+3TwXvPdsPuHts+qsFkruBFjQ1Ys0St1N8/X/x1t/k2c3cy2xGcyLdP1yiApwSB4ADeACDn2D8rdIbBaBQqgmAHOLbY8H9Swc6T9bd+zz50dE3CfwAQkec//cgpK5sMYhgHPnSBi3xcOlMg91XDocdcComqu4TZjO9DbsdtphKGjMxoqbN6o8YAWzpkfo/boosrxCOjgzZjfxsxgb8rqKfzj87XF1p0roEg5lXeDFXsoj+e6VOu0l1a+mRF0/2hXKPT55Ly32LRd2PgjcQ06WMUXQWu/NsLqYxqQr/w52bOmo9CdiqbRpPzZBKfUjfhK5+OkXx/Ff9cu8gJzMMOJ8LyZJpY4g5JibfH0o04BumV";

    fn b64(s: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.decode(s).unwrap()
    }

    use crate::test_der::tlv;

    fn tpm2b_of(body: &[u8]) -> Vec<u8> {
        let mut out = (body.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    /// A synthetic key with the given optional fields and parent.
    fn key(oid: &[u8], optional: &[Vec<u8>], parent: &[u8]) -> Vec<u8> {
        let mut body = tlv(0x06, oid);
        for o in optional {
            body.extend_from_slice(o);
        }
        body.extend(tlv(0x02, parent));
        body.extend(tlv(0x04, &tpm2b_of(b"public-area")));
        body.extend(tlv(0x04, &tpm2b_of(b"private-blob")));
        tlv(0x30, &body)
    }

    fn empty_auth(value: u8) -> Vec<u8> {
        tlv(0xA0, &tlv(0x01, &[value]))
    }

    const OWNER: &[u8] = &[0x40, 0, 0, 1];

    #[test]
    fn reads_provider_key_with_ber_true() {
        let k = parse(&b64(PROVIDER_EC)).unwrap();
        assert!(k.empty_auth, "BER TRUE (01) is TRUE");
        assert_eq!(k.parent, Parent::Hierarchy(Hierarchy::Owner));
        assert_eq!(k.public.len(), 0x56);
        assert_eq!(&k.public[..2], &[0x00, 0x23], "TPM_ALG_ECC");
        assert_eq!(k.private.len(), 0x7E);
    }

    #[test]
    fn reads_provider_key_with_password() {
        let k = parse(&b64(PROVIDER_EC_PASSWORD)).unwrap();
        assert!(!k.empty_auth);
    }

    #[test]
    fn reads_tools_key_under_persistent_parent() {
        let k = parse(&b64(TOOLS_RSA)).unwrap();
        assert!(k.empty_auth);
        assert_eq!(k.parent, Parent::Persistent(0x8100_0001));
        assert_eq!(&k.public[..2], &[0x00, 0x01], "TPM_ALG_RSA");
    }

    #[test]
    fn der_true_false_and_absent_empty_auth() {
        assert!(
            parse(&key(OID_LOADABLE, &[empty_auth(0xFF)], OWNER))
                .unwrap()
                .empty_auth
        );
        assert!(
            !parse(&key(OID_LOADABLE, &[empty_auth(0)], OWNER))
                .unwrap()
                .empty_auth
        );
        // Absent: the key may have a password, so one is asked for.
        assert!(!parse(&key(OID_LOADABLE, &[], OWNER)).unwrap().empty_auth);
    }

    #[test]
    fn description_and_false_rsa_parent_are_accepted() {
        let description = tlv(0xA4, &tlv(0x0C, b"host key"));
        let rsa_parent = tlv(0xA5, &tlv(0x01, &[0]));
        let k = parse(&key(
            OID_LOADABLE,
            &[empty_auth(1), description, rsa_parent],
            OWNER,
        ))
        .unwrap();
        assert!(k.empty_auth);
    }

    #[test]
    fn refuses_policies_secrets_and_other_key_types() {
        let policy = tlv(0xA1, &tlv(0x30, &[]));
        let secret = tlv(0xA2, &tlv(0x04, b"x"));
        let auth_policy = tlv(0xA3, &tlv(0x30, &[]));
        let rsa_parent = tlv(0xA5, &tlv(0x01, &[1]));
        let cases: &[(Vec<u8>, Tss2Error)] = &[
            (key(OID_LOADABLE, &[policy], OWNER), Tss2Error::Policy),
            (key(OID_LOADABLE, &[secret], OWNER), Tss2Error::Secret),
            (key(OID_LOADABLE, &[auth_policy], OWNER), Tss2Error::Policy),
            (
                key(OID_LOADABLE, &[rsa_parent], OWNER),
                Tss2Error::RsaParent,
            ),
            (key(OID_IMPORTABLE, &[], OWNER), Tss2Error::Importable),
            (key(OID_SEALED, &[], OWNER), Tss2Error::Sealed),
            (
                key(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d], &[], OWNER),
                Tss2Error::UnknownType("1.2.840.113549".into()),
            ),
            (
                key(OID_LOADABLE, &[], &[0x01, 0, 0, 1]),
                Tss2Error::Parent(0x0100_0001),
            ),
            (
                key(OID_LOADABLE, &[], &[0x00, 0x80, 0, 0, 1]),
                Tss2Error::Parent(0x8000_0001),
            ),
        ];
        for (der, expected) in cases {
            assert_eq!(parse(der).unwrap_err(), *expected);
        }
    }

    #[test]
    fn parent_hierarchies() {
        for (h, p) in [
            (0x4000_0001, Hierarchy::Owner),
            (0x4000_0007, Hierarchy::Null),
            (0x4000_000B, Hierarchy::Endorsement),
            (0x4000_000C, Hierarchy::Platform),
        ] {
            assert_eq!(Parent::from_handle(h).unwrap(), Parent::Hierarchy(p));
            assert_eq!(p.handle(), h);
        }
        assert_eq!(
            Parent::from_handle(0x81ab_cdef).unwrap(),
            Parent::Persistent(0x81ab_cdef)
        );
    }

    #[test]
    fn malformed_inputs_are_errors_never_panics() {
        let good = b64(TOOLS_RSA);
        // Every truncation.
        for n in 0..good.len() {
            assert!(parse(&good[..n]).is_err(), "truncated at {n}");
        }
        // Every single-octet corruption: an error or a key, never a panic.
        for i in 0..good.len() {
            for v in [0x00, 0x01, 0x7F, 0x80, 0x81, 0x84, 0xFF] {
                let mut bad = good.clone();
                bad[i] = v;
                let _ = parse(&bad);
            }
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(
            parse(&trailing).unwrap_err(),
            Tss2Error::Malformed("data after the key")
        );
    }

    #[test]
    fn size_prefix_must_match() {
        let mut body = tlv(0x06, OID_LOADABLE);
        body.extend(tlv(0x02, OWNER));
        body.extend(tlv(0x04, &[0x00, 0x05, 1, 2, 3]));
        body.extend(tlv(0x04, &tpm2b_of(b"x")));
        assert_eq!(
            parse(&tlv(0x30, &body)).unwrap_err(),
            Tss2Error::Malformed("public key size field does not match its length")
        );
    }

    #[test]
    fn indefinite_length_is_refused() {
        assert_eq!(
            parse(&[0x30, 0x80, 0, 0]).unwrap_err(),
            Tss2Error::Malformed("indefinite length")
        );
    }

    #[test]
    fn debug_does_not_print_the_private_blob() {
        let k = parse(&b64(PROVIDER_EC)).unwrap();
        let text = format!("{k:?}");
        assert!(text.contains("0x40000001"), "{text}");
        assert!(!text.contains("private:"), "{text}");
    }
}
