//! Where `CreateSession` goes: partition endpoints and `--endpoint` overrides.

use crate::error::Field;

/// The endpoint could not be determined.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndpointError {
    /// `--endpoint` is not an http(s) URL.
    #[error(
        "{} {} is not a valid URL: {reason}",
        Field::Endpoint,
        crate::error::quote(value)
    )]
    BadUrl {
        /// The value given.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A plain `http://` endpoint on another host, without the flag that allows it.
    #[error(
        "{} uses plain http:// to {}, which is not this host: the credentials would cross the network unencrypted; use https://, or allow it with {}",
        Field::Endpoint,
        crate::error::quote(host),
        Field::AllowPlainHttp
    )]
    PlainHttp {
        /// The endpoint's host.
        host: String,
    },
    /// `--region` is malformed.
    #[error("{} {} is not a region name (like us-east-1)", Field::Region, crate::error::quote(.0))]
    BadRegion(String),
}

/// The DNS suffix of the partition a region belongs to.
pub fn dns_suffix(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else if region.starts_with("us-isob-") {
        "sc2s.sgov.gov"
    } else if region.starts_with("us-iso-") {
        "c2s.ic.gov"
    } else if region.starts_with("eu-isoe-") {
        "cloud.adc-e.uk"
    } else if region.starts_with("us-isof-") {
        "csp.hci.ic.gov"
    } else {
        // aws and aws-us-gov
        "amazonaws.com"
    }
}

/// Checks a region name.
pub fn check_region(region: &str) -> Result<(), EndpointError> {
    let ok = !region.is_empty()
        && region.len() <= 64
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(EndpointError::BadRegion(region.to_string()))
    }
}

/// The URL of `POST /sessions`.
///
/// Without an override: `https://rolesanywhere.REGION.SUFFIX/sessions`. With one,
/// its path is kept as a prefix (`https://gw.example/ra` → `https://gw.example/ra/sessions`).
pub fn sessions_url(region: &str, endpoint: Option<&str>) -> Result<reqwest::Url, EndpointError> {
    let base = match endpoint {
        Some(e) => e.to_string(),
        None => format!("https://rolesanywhere.{region}.{}", dns_suffix(region)),
    };
    let bad = |reason: &str| EndpointError::BadUrl {
        value: base.clone(),
        reason: reason.to_string(),
    };
    let mut url = reqwest::Url::parse(&base).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(bad("the scheme must be https:// (or http://)"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it must not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Security: the user name and password are not repeated in the message.
        let _ = url.set_password(None);
        let _ = url.set_username("***");
        return Err(EndpointError::BadUrl {
            value: url.to_string(),
            reason: "it must not hold credentials".into(),
        });
    }
    let path = format!("{}/sessions", url.path().trim_end_matches('/'));
    url.set_path(&path);
    Ok(url)
}

/// Refuses a plain `http://` URL whose host is not loopback (`127.0.0.0/8`, `::1`,
/// `localhost`) unless `allowed`: the signed request and the credentials in the
/// answer would cross the network in clear text. Loopback stays allowed (tests, a
/// local TLS-terminating proxy).
pub fn check_plain_http(url: &reqwest::Url, allowed: bool) -> Result<(), EndpointError> {
    if url.scheme() != "http" || allowed {
        return Ok(());
    }
    let host = url.host_str().unwrap_or_default();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(EndpointError::PlainHttp {
            host: url.host_str().unwrap_or_default().to_string(),
        })
    }
}

/// The `Host` header value for `url`: host, plus the port when not the default.
pub fn host_header(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_endpoints() {
        assert_eq!(
            sessions_url("us-east-1", None).unwrap().as_str(),
            "https://rolesanywhere.us-east-1.amazonaws.com/sessions"
        );
        assert_eq!(
            sessions_url("cn-north-1", None).unwrap().as_str(),
            "https://rolesanywhere.cn-north-1.amazonaws.com.cn/sessions"
        );
        assert_eq!(
            sessions_url("us-gov-west-1", None).unwrap().as_str(),
            "https://rolesanywhere.us-gov-west-1.amazonaws.com/sessions"
        );
    }

    #[test]
    fn endpoint_override_keeps_path_prefix() {
        let u = sessions_url("us-east-1", Some("https://gw.example:8443/ra/")).unwrap();
        assert_eq!(u.as_str(), "https://gw.example:8443/ra/sessions");
        assert_eq!(host_header(&u), "gw.example:8443");
        let u = sessions_url("us-east-1", Some("https://[::1]:9443")).unwrap();
        assert_eq!(u.path(), "/sessions");
        assert_eq!(host_header(&u), "[::1]:9443");
        assert!(sessions_url("us-east-1", Some("ftp://x")).is_err());
        let e = sessions_url("us-east-1", Some("https://user:hunter2@gw.example/"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "endpoint \"https://***@gw.example/\" is not a valid URL: it must not hold credentials"
        );
        assert!(sessions_url("us-east-1", Some("not a url")).is_err());
    }

    #[test]
    fn plain_http_is_for_this_host_only_unless_allowed() {
        let url = |u: &str| sessions_url("us-east-1", Some(u)).unwrap();
        for ok in [
            "http://127.0.0.1:8080",
            "http://127.3.2.1",
            "http://[::1]:80",
            "http://localhost:9",
            "https://gw.example",
        ] {
            check_plain_http(&url(ok), false).unwrap();
        }
        let e = check_plain_http(&url("http://gw.example/ra"), false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "endpoint uses plain http:// to \"gw.example\", which is not this host: the credentials would cross the network unencrypted; use https://, or allow it with the allow-plain-http setting"
        );
        assert!(check_plain_http(&url("http://10.0.0.1"), false).is_err());
        check_plain_http(&url("http://10.0.0.1"), true).unwrap();
    }
}
