//! A label-agnostic PEM block reader.
//!
//! Certificate and key files in the wild hold several blocks (`EC PARAMETERS` before
//! `EC PRIVATE KEY`, a key and a certificate together, bundles with comments between
//! blocks, `TSS2 PRIVATE KEY`), so the reader yields every block with its label and
//! leaves the choice to the caller. Text outside blocks is ignored, as OpenSSL does.
//! Hand-written because `rustls-pemfile` is unmaintained and the pki-types reader
//! only knows the labels rustls needs.

use base64::Engine as _;
use zeroize::Zeroizing;

/// One decoded PEM block.
pub struct Block {
    /// The label between `BEGIN ` and the dashes, e.g. `CERTIFICATE`.
    pub label: String,
    /// The decoded bytes. Zeroized on drop because the block may be a private key.
    pub der: Zeroizing<Vec<u8>>,
    /// Whether the block carried RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`).
    pub has_headers: bool,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block")
            .field("label", &self.label)
            .field("len", &self.der.len())
            .finish_non_exhaustive()
    }
}

/// Why PEM text could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PemError {
    /// A `BEGIN` line without its `END` line.
    #[error("PEM block \"{0}\" has no END line (file truncated?)")]
    Unterminated(String),
    /// The END label differs from the BEGIN label.
    #[error("PEM block \"{0}\" ends with a different label")]
    MismatchedEnd(String),
    /// The body is not valid base64.
    #[error("PEM block \"{0}\" is not valid base64 (file truncated or edited?)")]
    BadBase64(String),
}

/// Returns true when the bytes look like PEM text (contain a BEGIN line).
pub fn looks_like_pem(data: &[u8]) -> bool {
    memfind(data, b"-----BEGIN ").is_some()
}

fn memfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Decodes every PEM block in `data`, in order. Works on the bytes as they are:
/// no lossy UTF-8 copy of the file (which may hold a private key) is ever made.
pub fn parse_all(data: &[u8]) -> Result<Vec<Block>, PemError> {
    let mut blocks = Vec::new();
    let mut lines = data.split(|&b| b == b'\n').map(<[u8]>::trim_ascii);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix(b"-----BEGIN ")
            .and_then(|l| l.strip_suffix(b"-----"))
        else {
            continue;
        };
        let label_bytes = label;
        let label = String::from_utf8_lossy(label).into_owned();
        let mut body = Zeroizing::new(Vec::new());
        let mut has_headers = false;
        let mut terminated = false;
        for l in lines.by_ref() {
            if let Some(end) = l
                .strip_prefix(b"-----END ")
                .and_then(|l| l.strip_suffix(b"-----"))
            {
                if end == label_bytes {
                    terminated = true;
                    break;
                }
                return Err(PemError::MismatchedEnd(label));
            }
            if l.starts_with(b"-----END ") {
                return Err(PemError::MismatchedEnd(label));
            }
            if l.starts_with(b"-----BEGIN ") {
                return Err(PemError::Unterminated(label));
            }
            if l.contains(&b':') {
                has_headers = true;
                continue;
            }
            body.extend_from_slice(l);
        }
        if !terminated {
            return Err(PemError::Unterminated(label));
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(&body[..])
            .map_err(|_| PemError::BadBase64(label.clone()))?;
        blocks.push(Block {
            label,
            der: Zeroizing::new(der),
            has_headers,
        });
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_blocks_with_text_between() {
        let text = b"comment\n-----BEGIN A-----\nAAEC\n-----END A-----\nmore text\n-----BEGIN B-----\r\nAw==\r\n-----END B-----\r\n";
        let blocks = parse_all(text).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].label, "A");
        assert_eq!(&blocks[0].der[..], &[0, 1, 2]);
        assert_eq!(blocks[1].label, "B");
        assert_eq!(&blocks[1].der[..], &[3]);
    }

    #[test]
    fn rejects_truncated_block() {
        let text = b"-----BEGIN A-----\nAAEC\n";
        assert_eq!(
            parse_all(text).unwrap_err(),
            PemError::Unterminated("A".into())
        );
    }

    #[test]
    fn rejects_bad_base64() {
        let text = b"-----BEGIN A-----\nAA!C\n-----END A-----\n";
        assert_eq!(
            parse_all(text).unwrap_err(),
            PemError::BadBase64("A".into())
        );
    }

    #[test]
    fn debug_prints_the_label_and_length_never_the_bytes() {
        let text =
            b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n";
        let blocks = parse_all(text).unwrap();
        let debug = format!("{:?} {:#?}", blocks[0], blocks[0]);
        assert!(
            debug.contains("PRIVATE KEY") && debug.contains("len: 16"),
            "{debug}"
        );
        assert!(
            !debug.contains("secret") && !debug.contains("115, 101"),
            "{debug}"
        );
    }

    #[test]
    fn flags_encryption_headers() {
        let text = b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAEC\n-----END RSA PRIVATE KEY-----\n";
        let blocks = parse_all(text).unwrap();
        assert!(blocks[0].has_headers);
    }

    #[test]
    fn non_utf8_bytes_around_blocks_are_skipped_without_a_copy() {
        let mut text =
            b"\xff\xfe junk \xc3\n-----BEGIN A-----\r\nAAEC\r\n-----END A-----\n\x80".to_vec();
        let blocks = parse_all(&text).unwrap();
        assert_eq!(&blocks[0].der[..], &[0, 1, 2]);
        // Inside a block, a stray byte is bad base64, as before.
        text = b"-----BEGIN A-----\nAA\xffEC\n-----END A-----\n".to_vec();
        assert_eq!(
            parse_all(&text).unwrap_err(),
            PemError::BadBase64("A".into())
        );
    }
}
