//! RFC 7512 `pkcs11:` URIs.
//!
//! Hand-written (about 250 lines) because `pkcs11-uri` depends on the unsound
//! `pkcs11` crate and `pk11-uri-parser` does not percent-decode. Values are stored
//! percent-decoded; `id` is raw bytes. Unknown attributes, repeated attributes and
//! malformed percent escapes are errors, never ignored: a typo in a URI must not
//! widen the search to every object on every token. `slot-id=0` is a valid slot.

use std::fmt::Write as _;
use std::path::PathBuf;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use secrecy::SecretString;

/// The object class named by the `type` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectType {
    /// `type=cert`.
    Cert,
    /// `type=private`.
    Private,
    /// `type=public`.
    Public,
    /// `type=secret-key`.
    SecretKey,
    /// `type=data`.
    Data,
}

impl ObjectType {
    /// The URI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::Cert => "cert",
            ObjectType::Private => "private",
            ObjectType::Public => "public",
            ObjectType::SecretKey => "secret-key",
            ObjectType::Data => "data",
        }
    }
}

/// A parsed `pkcs11:` URI. Every field is optional; an absent field matches anything.
#[derive(Clone, Debug, Default)]
pub struct Pkcs11Uri {
    /// `token`: the token label.
    pub token: Option<String>,
    /// `manufacturer`: the token manufacturer.
    pub manufacturer: Option<String>,
    /// `serial`: the token serial number.
    pub serial: Option<String>,
    /// `model`: the token model.
    pub model: Option<String>,
    /// `library-manufacturer`.
    pub library_manufacturer: Option<String>,
    /// `library-description`.
    pub library_description: Option<String>,
    /// `library-version` as (major, minor).
    pub library_version: Option<(u8, u8)>,
    /// `object`: the object label (`CKA_LABEL`).
    pub object: Option<String>,
    /// `type`: the object class.
    pub object_type: Option<ObjectType>,
    /// `id`: the object id (`CKA_ID`), raw bytes.
    pub id: Option<Vec<u8>>,
    /// `slot-description`.
    pub slot_description: Option<String>,
    /// `slot-manufacturer`.
    pub slot_manufacturer: Option<String>,
    /// `slot-id` (0 is a valid slot).
    pub slot_id: Option<u64>,
    /// Query `pin-value`: the user PIN itself.
    pub pin_value: Option<SecretString>,
    /// Query `pin-source`: where to read the PIN (a file path or `file:` URI).
    pub pin_source: Option<String>,
    /// Query `module-name`: the module's name without path or extension.
    pub module_name: Option<String>,
    /// Query `module-path`: the module file, or a directory holding `module-name`.
    pub module_path: Option<PathBuf>,
}

/// A `pkcs11:` URI could not be parsed. The URI itself is not repeated in the
/// message (it may hold `pin-value`); the caller says which flag it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    /// The text does not start with `pkcs11:`.
    #[error("does not start with \"pkcs11:\"")]
    Scheme,
    /// An attribute is not one RFC 7512 defines.
    #[error("unknown attribute {}", crate::error::quote(.0))]
    UnknownAttribute(String),
    /// An attribute appears twice.
    #[error("attribute \"{0}\" appears twice")]
    Duplicate(String),
    /// A component has no `=`.
    #[error("{} is not of the form attribute=value", crate::error::quote(.0))]
    NoValue(String),
    /// A value has a `%` not followed by two hex digits.
    #[error("attribute \"{0}\" has a malformed percent escape")]
    BadEscape(String),
    /// A text value is not UTF-8 after percent-decoding.
    #[error("attribute \"{0}\" is not UTF-8 after percent-decoding")]
    NotUtf8(String),
    /// A value is not valid for its attribute.
    #[error("attribute \"{attribute}\" has an invalid value: {reason}")]
    BadValue {
        /// The attribute.
        attribute: String,
        /// What is expected.
        reason: &'static str,
    },
}

/// Characters written without escaping in the URIs iamra prints (RFC 3986 unreserved).
const ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn decode(attribute: &str, value: &str) -> Result<Vec<u8>, UriError> {
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let ok = bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !ok {
                return Err(UriError::BadEscape(attribute.into()));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(percent_decode_str(value).collect())
}

fn decode_text(attribute: &str, value: &str) -> Result<String, UriError> {
    String::from_utf8(decode(attribute, value)?).map_err(|_| UriError::NotUtf8(attribute.into()))
}

fn set<T>(slot: &mut Option<T>, attribute: &str, value: T) -> Result<(), UriError> {
    if slot.is_some() {
        return Err(UriError::Duplicate(attribute.into()));
    }
    *slot = Some(value);
    Ok(())
}

fn bad(attribute: &str, reason: &'static str) -> UriError {
    UriError::BadValue {
        attribute: attribute.into(),
        reason,
    }
}

impl Pkcs11Uri {
    /// Parses a `pkcs11:` URI.
    pub fn parse(text: &str) -> Result<Self, UriError> {
        let rest = text.strip_prefix("pkcs11:").ok_or(UriError::Scheme)?;
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let mut uri = Pkcs11Uri::default();
        for component in path.split(';').filter(|c| !c.is_empty()) {
            let (name, value) = component
                .split_once('=')
                .ok_or_else(|| UriError::NoValue(component.into()))?;
            uri.set_path_attribute(name, value)?;
        }
        for component in query.into_iter().flat_map(|q| q.split('&')) {
            if component.is_empty() {
                continue;
            }
            let (name, value) = component
                .split_once('=')
                .ok_or_else(|| UriError::NoValue(component.into()))?;
            uri.set_query_attribute(name, value)?;
        }
        Ok(uri)
    }

    fn set_path_attribute(&mut self, name: &str, value: &str) -> Result<(), UriError> {
        match name {
            "token" => set(&mut self.token, name, decode_text(name, value)?),
            "manufacturer" => set(&mut self.manufacturer, name, decode_text(name, value)?),
            "serial" => set(&mut self.serial, name, decode_text(name, value)?),
            "model" => set(&mut self.model, name, decode_text(name, value)?),
            "library-manufacturer" => set(
                &mut self.library_manufacturer,
                name,
                decode_text(name, value)?,
            ),
            "library-description" => set(
                &mut self.library_description,
                name,
                decode_text(name, value)?,
            ),
            "library-version" => {
                let text = decode_text(name, value)?;
                let (major, minor) = text.split_once('.').unwrap_or((&text, "0"));
                let num = |s: &str| {
                    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(bad(name, "expected MAJOR or MAJOR.MINOR in decimal"));
                    }
                    s.parse::<u8>()
                        .map_err(|_| bad(name, "version numbers go up to 255"))
                };
                set(&mut self.library_version, name, (num(major)?, num(minor)?))
            }
            "object" => set(&mut self.object, name, decode_text(name, value)?),
            "type" => {
                let t = match decode_text(name, value)?.as_str() {
                    "cert" => ObjectType::Cert,
                    "private" => ObjectType::Private,
                    "public" => ObjectType::Public,
                    "secret-key" => ObjectType::SecretKey,
                    "data" => ObjectType::Data,
                    _ => {
                        return Err(bad(
                            name,
                            "expected cert, private, public, secret-key or data",
                        ));
                    }
                };
                set(&mut self.object_type, name, t)
            }
            "id" => set(&mut self.id, name, decode(name, value)?),
            "slot-description" => set(&mut self.slot_description, name, decode_text(name, value)?),
            "slot-manufacturer" => {
                set(&mut self.slot_manufacturer, name, decode_text(name, value)?)
            }
            "slot-id" => {
                let text = decode_text(name, value)?;
                // RFC 7512: decimal. `0x…` is accepted too, as the reference does.
                let id = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
                    Some(hex) if !hex.is_empty() => u64::from_str_radix(hex, 16).ok(),
                    Some(_) => None,
                    None if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
                        text.parse().ok()
                    }
                    None => None,
                };
                let id = id.ok_or_else(|| bad(name, "expected a decimal number"))?;
                set(&mut self.slot_id, name, id)
            }
            other => Err(UriError::UnknownAttribute(other.into())),
        }
    }

    fn set_query_attribute(&mut self, name: &str, value: &str) -> Result<(), UriError> {
        match name {
            "pin-value" => {
                let pin = zeroize::Zeroizing::new(decode_text(name, value)?);
                set(&mut self.pin_value, name, SecretString::from(pin.as_str()))
            }
            "pin-source" => set(&mut self.pin_source, name, decode_text(name, value)?),
            "module-name" => {
                let module = decode_text(name, value)?;
                if module.is_empty() || module.contains('/') {
                    return Err(bad(name, "expected a module name without a directory"));
                }
                set(&mut self.module_name, name, module)
            }
            "module-path" => {
                let path = decode_text(name, value)?;
                if path.is_empty() {
                    return Err(bad(name, "expected a file or directory"));
                }
                set(&mut self.module_path, name, PathBuf::from(path))
            }
            other => Err(UriError::UnknownAttribute(other.into())),
        }
    }

    /// Whether `other` names the same objects (the path attributes; the query,
    /// PIN included, is not compared).
    pub fn same_object(&self, other: &Pkcs11Uri) -> bool {
        self.to_path_string() == other.to_path_string()
    }

    /// Whether the URI names module attributes (`module-name`/`module-path`).
    pub fn names_module(&self) -> bool {
        self.module_name.is_some() || self.module_path.is_some()
    }

    /// The `pin-source` as a file path: a plain path, or a `file:` URI.
    pub fn pin_source_path(&self) -> Result<Option<PathBuf>, UriError> {
        let Some(source) = self.pin_source.as_deref() else {
            return Ok(None);
        };
        if let Some(rest) = source.strip_prefix("file:") {
            // file:///abs, file://localhost/abs, file:/abs, file:rel
            let rest = match rest.strip_prefix("//") {
                Some(authority_and_path) => {
                    let slash = authority_and_path.find('/').unwrap_or(0);
                    let (host, path) = authority_and_path.split_at(slash);
                    if !(host.is_empty() || host == "localhost") || path.is_empty() {
                        return Err(bad("pin-source", "a file: URI must name a local file"));
                    }
                    path
                }
                None => rest,
            };
            return Ok(Some(PathBuf::from(rest)));
        }
        let looks_like_scheme = source
            .split_once(':')
            .is_some_and(|(s, _)| !s.is_empty() && !s.contains('/'));
        if looks_like_scheme {
            return Err(bad(
                "pin-source",
                "only files are supported (a path or a file: URI)",
            ));
        }
        Ok(Some(PathBuf::from(source)))
    }

    /// The URI's path attributes as text (no query: never the PIN). Attribute order
    /// follows p11tool: model, manufacturer, serial, token, slot attributes,
    /// library attributes, id, object, type.
    pub fn to_path_string(&self) -> String {
        let mut out = String::from("pkcs11:");
        let mut first = true;
        let mut push = |name: &str, value: &str| {
            if !first {
                out.push(';');
            }
            first = false;
            let _ = write!(out, "{name}={}", utf8_percent_encode(value, ESCAPE));
        };
        let text_attrs = [
            ("model", &self.model),
            ("manufacturer", &self.manufacturer),
            ("serial", &self.serial),
            ("token", &self.token),
            ("slot-description", &self.slot_description),
            ("slot-manufacturer", &self.slot_manufacturer),
        ];
        for (name, value) in text_attrs {
            if let Some(v) = value {
                push(name, v);
            }
        }
        if let Some(id) = self.slot_id {
            push("slot-id", &id.to_string());
        }
        if let Some(v) = &self.library_manufacturer {
            push("library-manufacturer", v);
        }
        if let Some(v) = &self.library_description {
            push("library-description", v);
        }
        if let Some((major, minor)) = self.library_version {
            push("library-version", &format!("{major}.{minor}"));
        }
        if let Some(id) = &self.id {
            if !first {
                out.push(';');
            }
            first = false;
            out.push_str("id=");
            for b in id {
                let _ = write!(out, "%{b:02X}");
            }
        }
        let mut push = |name: &str, value: &str| {
            if !first {
                out.push(';');
            }
            first = false;
            let _ = write!(out, "{name}={}", utf8_percent_encode(value, ESCAPE));
        };
        if let Some(v) = &self.object {
            push("object", v);
        }
        if let Some(t) = self.object_type {
            push("type", t.as_str());
        }
        out
    }
}

impl std::fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Security: the query (pin-value) is never printed.
        f.write_str(&self.to_path_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret as _;

    #[test]
    fn parses_the_uris_p11tool_prints() {
        let u = Pkcs11Uri::parse("pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=bb217e9134443552;token=ra-test;id=%01;object=ra-rsa;type=private").unwrap();
        assert_eq!(u.model.as_deref(), Some("SoftHSM v2"));
        assert_eq!(u.manufacturer.as_deref(), Some("SoftHSM project"));
        assert_eq!(u.serial.as_deref(), Some("bb217e9134443552"));
        assert_eq!(u.token.as_deref(), Some("ra-test"));
        assert_eq!(u.id.as_deref(), Some(&[1u8][..]));
        assert_eq!(u.object.as_deref(), Some("ra-rsa"));
        assert_eq!(u.object_type, Some(ObjectType::Private));
        assert_eq!(
            u.to_string(),
            "pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=bb217e9134443552;token=ra-test;id=%01;object=ra-rsa;type=private"
        );
    }

    #[test]
    fn parses_query_attributes() {
        let u = Pkcs11Uri::parse(
            "pkcs11:token=a%3Bb?pin-value=12%2634&module-path=/usr/lib/softhsm/libsofthsm2.so",
        )
        .unwrap();
        assert_eq!(u.token.as_deref(), Some("a;b"));
        assert_eq!(u.pin_value.as_ref().unwrap().expose_secret(), "12&34");
        assert_eq!(
            u.module_path.as_deref(),
            Some(std::path::Path::new("/usr/lib/softhsm/libsofthsm2.so"))
        );
        let u =
            Pkcs11Uri::parse("pkcs11:?module-name=softhsm2&pin-source=file:///run/pin").unwrap();
        assert_eq!(u.module_name.as_deref(), Some("softhsm2"));
        assert_eq!(
            u.pin_source_path().unwrap(),
            Some(PathBuf::from("/run/pin"))
        );
        // The PIN never reaches Display or Debug.
        let u = Pkcs11Uri::parse("pkcs11:token=t?pin-value=secret-1234").unwrap();
        assert!(!u.to_string().contains("secret-1234"));
        assert!(!format!("{u:?}").contains("secret-1234"));
    }

    #[test]
    fn slot_id_zero_is_a_slot() {
        assert_eq!(
            Pkcs11Uri::parse("pkcs11:slot-id=0").unwrap().slot_id,
            Some(0)
        );
        assert_eq!(
            Pkcs11Uri::parse("pkcs11:slot-id=0x10").unwrap().slot_id,
            Some(16)
        );
        assert!(matches!(
            Pkcs11Uri::parse("pkcs11:slot-id=-1"),
            Err(UriError::BadValue { .. })
        ));
    }

    #[test]
    fn rejects_what_it_does_not_understand() {
        assert_eq!(
            Pkcs11Uri::parse("pkcs11:tokn=x").unwrap_err(),
            UriError::UnknownAttribute("tokn".into())
        );
        assert_eq!(
            Pkcs11Uri::parse("pkcs11:token=x?pin=1").unwrap_err(),
            UriError::UnknownAttribute("pin".into())
        );
        assert_eq!(
            Pkcs11Uri::parse("pkcs11:token=x;token=y").unwrap_err(),
            UriError::Duplicate("token".into())
        );
        assert_eq!(
            Pkcs11Uri::parse("pkcs11:id=%0").unwrap_err(),
            UriError::BadEscape("id".into())
        );
        assert_eq!(
            Pkcs11Uri::parse("pkcs11:token").unwrap_err(),
            UriError::NoValue("token".into())
        );
        assert_eq!(
            Pkcs11Uri::parse("pkcs11:object=%FF").unwrap_err(),
            UriError::NotUtf8("object".into())
        );
        assert!(matches!(
            Pkcs11Uri::parse("pkcs11:type=key"),
            Err(UriError::BadValue { .. })
        ));
        assert!(
            Pkcs11Uri::parse("pkcs11:?pin-source=https://x/pin")
                .unwrap()
                .pin_source_path()
                .is_err()
        );
        assert_eq!(Pkcs11Uri::parse("file:x").unwrap_err(), UriError::Scheme);
    }

    #[test]
    fn empty_uri_matches_everything() {
        let u = Pkcs11Uri::parse("pkcs11:").unwrap();
        assert!(u.token.is_none() && u.id.is_none() && !u.names_module());
        assert_eq!(u.to_string(), "pkcs11:");
    }

    #[test]
    fn library_version() {
        assert_eq!(
            Pkcs11Uri::parse("pkcs11:library-version=2.6")
                .unwrap()
                .library_version,
            Some((2, 6))
        );
        assert_eq!(
            Pkcs11Uri::parse("pkcs11:library-version=3")
                .unwrap()
                .library_version,
            Some((3, 0))
        );
    }
}
