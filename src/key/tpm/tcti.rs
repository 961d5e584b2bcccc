//! Which TPM to talk to: the TCTI (TPM Command Transmission Interface) string.
//!
//! In order: `TPM2TOOLS_TCTI`, then `TCTI` (as tpm2-tools and tss-esapi read them),
//! then the reference helper's `TPM_DEVICE` (a device path, or the unix socket of
//! a swtpm), then `device:/dev/tpmrm0` (the kernel's resource manager). Empty
//! variables count as unset.
//!
//! The string is checked here rather than handed to tss-esapi as is: tss-esapi 7.7
//! ignores options it does not know, so `swtpm:path=/run/swtpm.sock` would silently
//! become `localhost:2321`. Options it cannot express are refused with the reason.
//! A swtpm unix socket (`swtpm:path=SOCKET`, or a `TPM_DEVICE` that is a socket)
//! becomes `swtpm:path=SOCKET`, which the TPM connection reaches through a
//! loopback bridge (libtss2 3.2's swtpm TCTI speaks TCP only; see `bridge.rs`).
//! Pure Rust, independent of the `tpm` feature.

use std::ffi::OsString;
use std::path::Path;

/// The kernel resource manager, the default TPM.
pub const DEFAULT_TCTI: &str = "device:/dev/tpmrm0";

/// Where the TCTI string came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TctiOrigin {
    /// `TPM2TOOLS_TCTI`.
    Tpm2ToolsTcti,
    /// `TCTI`.
    Tcti,
    /// `TPM_DEVICE` (the reference helper's variable).
    TpmDevice,
    /// No variable set: [`DEFAULT_TCTI`].
    Default,
    /// Given by the library user ([`TctiConfig::new`]).
    Explicit,
}

impl std::fmt::Display for TctiOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TctiOrigin::Tpm2ToolsTcti => "from TPM2TOOLS_TCTI",
            TctiOrigin::Tcti => "from TCTI",
            TctiOrigin::TpmDevice => "from TPM_DEVICE",
            TctiOrigin::Default => "the default",
            TctiOrigin::Explicit => "given by the caller",
        })
    }
}

/// A checked TCTI configuration.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct TctiConfig {
    /// `name:conf` as libtss2's TCTI loader takes it, e.g. `swtpm:host=127.0.0.1,port=2321`,
    /// or `swtpm:path=SOCKET` for a swtpm unix socket ([`TctiConfig::unix_socket`]).
    pub conf: String,
    /// Where it came from.
    pub origin: TctiOrigin,
}

impl TctiConfig {
    /// Checks an explicit TCTI string (`device:/dev/tpmrm0`,
    /// `swtpm:host=127.0.0.1,port=2321`, `swtpm:path=/run/swtpm.sock`, ...) instead
    /// of reading the environment.
    pub fn new(value: &str) -> Result<Self, TctiError> {
        let conf = check(value).map_err(|reason| TctiError {
            variable: "tcti",
            value: value.to_string(),
            reason,
        })?;
        Ok(TctiConfig {
            conf,
            origin: TctiOrigin::Explicit,
        })
    }

    /// The device path of a `device:` TCTI (`/dev/tpm0` when none is given).
    pub fn device_path(&self) -> Option<&Path> {
        match self.conf.split_once(':') {
            Some(("device", path)) if !path.is_empty() => Some(Path::new(path)),
            None if self.conf == "device" => Some(Path::new("/dev/tpm0")),
            _ => None,
        }
    }

    /// The swtpm unix socket of a `swtpm:path=` TCTI.
    pub fn unix_socket(&self) -> Option<&Path> {
        self.conf.strip_prefix("swtpm:path=").map(Path::new)
    }
}

/// A TCTI setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("{variable}={} cannot be used: {reason}", crate::error::quote(value))]
#[non_exhaustive]
pub struct TctiError {
    /// The variable.
    #[serde(deserialize_with = "super::wire::static_str")]
    pub variable: super::wire::StaticStr,
    /// Its value.
    pub value: String,
    /// Why.
    pub reason: String,
}

/// Resolves the TCTI from the process environment.
pub fn from_env() -> Result<TctiConfig, TctiError> {
    resolve(|name| std::env::var_os(name), is_unix_socket)
}

fn is_unix_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// Resolves the TCTI from `env` (a variable lookup); `is_socket` tells whether a
/// `TPM_DEVICE` path is a unix socket.
pub fn resolve(
    env: impl Fn(&str) -> Option<OsString>,
    is_socket: impl Fn(&Path) -> bool,
) -> Result<TctiConfig, TctiError> {
    let get = |name: &'static str| -> Result<Option<String>, TctiError> {
        match env(name) {
            None => Ok(None),
            Some(v) if v.is_empty() => Ok(None),
            Some(v) => v.into_string().map(Some).map_err(|v| TctiError {
                variable: name,
                value: v.to_string_lossy().into_owned(),
                reason: "it is not valid UTF-8".into(),
            }),
        }
    };
    for (variable, origin) in [
        ("TPM2TOOLS_TCTI", TctiOrigin::Tpm2ToolsTcti),
        ("TCTI", TctiOrigin::Tcti),
    ] {
        if let Some(value) = get(variable)? {
            let conf = check(&value).map_err(|reason| TctiError {
                variable,
                value: value.clone(),
                reason,
            })?;
            return Ok(TctiConfig { conf, origin });
        }
    }
    if let Some(value) = get("TPM_DEVICE")? {
        // The reference helper dials a socket and opens anything else.
        let conf = if is_socket(Path::new(&value)) {
            format!("swtpm:path={value}")
        } else {
            format!("device:{value}")
        };
        return Ok(TctiConfig {
            conf,
            origin: TctiOrigin::TpmDevice,
        });
    }
    Ok(TctiConfig {
        conf: DEFAULT_TCTI.into(),
        origin: TctiOrigin::Default,
    })
}

/// Checks a `name[:conf]` TCTI string; returns it normalised.
fn check(value: &str) -> Result<String, String> {
    let (name, conf) = match value.split_once(':') {
        Some((n, c)) => (n, c),
        None => (value, ""),
    };
    match name {
        "device" => Ok(value.to_string()),
        "swtpm" | "mssim" => {
            let mut host = None;
            let mut port = None;
            let mut path = None;
            for option in conf.split(',').filter(|o| !o.is_empty()) {
                match option.split_once('=') {
                    Some(("host", h)) if valid_host(h) => host = Some(h),
                    Some(("host", h)) => {
                        return Err(format!(
                            "{} is not a host name or address",
                            crate::error::quote(h)
                        ));
                    }
                    Some(("port", p)) => match p.parse::<u16>() {
                        Ok(p) if p > 0 && p < u16::MAX => port = Some(p),
                        _ => {
                            return Err(format!("{} is not a port number", crate::error::quote(p)));
                        }
                    },
                    Some(("path", p)) if name == "swtpm" && !p.is_empty() => path = Some(p),
                    _ => {
                        let swtpm_socket = if name == "swtpm" {
                            " or path=SOCKET"
                        } else {
                            ""
                        };
                        return Err(format!(
                            "unknown {name} option {} (use host=HOST,port=PORT{swtpm_socket})",
                            crate::error::quote(option)
                        ));
                    }
                }
            }
            if let Some(path) = path {
                if host.is_some() || port.is_some() {
                    return Err(
                        "path= (a unix socket) cannot be combined with host= or port=".into(),
                    );
                }
                return Ok(format!("swtpm:path={path}"));
            }
            Ok(format!(
                "{name}:host={},port={}",
                host.unwrap_or("localhost"),
                port.unwrap_or(2321)
            ))
        }
        "tabrmd" => Ok(value.to_string()),
        other => Err(format!(
            "unknown TCTI {} (use device, swtpm, mssim or tabrmd)",
            crate::error::quote(other)
        )),
    }
}

fn valid_host(h: &str) -> bool {
    h.parse::<std::net::IpAddr>().is_ok()
        || (!h.is_empty()
            && h.len() <= 253
            && h.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(vars: &[(&str, &str)], sockets: &[&str]) -> Result<TctiConfig, TctiError> {
        resolve(
            |name| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            },
            |p| sockets.iter().any(|s| Path::new(s) == p),
        )
    }

    #[test]
    fn default_is_the_resource_manager() {
        let c = run(&[], &[]).unwrap();
        assert_eq!(c.conf, "device:/dev/tpmrm0");
        assert_eq!(c.origin, TctiOrigin::Default);
        assert_eq!(c.device_path(), Some(Path::new("/dev/tpmrm0")));
    }

    #[test]
    fn order_is_tpm2tools_tcti_then_tcti_then_tpm_device() {
        let all = [
            ("TPM2TOOLS_TCTI", "swtpm:host=127.0.0.1,port=3000"),
            ("TCTI", "device:/dev/tpm0"),
            ("TPM_DEVICE", "/dev/tpm1"),
        ];
        let c = run(&all, &[]).unwrap();
        assert_eq!(c.conf, "swtpm:host=127.0.0.1,port=3000");
        assert_eq!(c.origin, TctiOrigin::Tpm2ToolsTcti);
        let c = run(&all[1..], &[]).unwrap();
        assert_eq!(c.conf, "device:/dev/tpm0");
        assert_eq!(c.origin, TctiOrigin::Tcti);
        let c = run(&all[2..], &[]).unwrap();
        assert_eq!(c.conf, "device:/dev/tpm1");
        assert_eq!(c.origin, TctiOrigin::TpmDevice);
        // Empty counts as unset.
        let c = run(&[("TPM2TOOLS_TCTI", ""), ("TCTI", "mssim")], &[]).unwrap();
        assert_eq!(c.conf, "mssim:host=localhost,port=2321");
    }

    #[test]
    fn swtpm_options_are_normalised_and_checked() {
        let ok = |v: &str| run(&[("TCTI", v)], &[]).map(|c| c.conf);
        assert_eq!(ok("swtpm").unwrap(), "swtpm:host=localhost,port=2321");
        assert_eq!(
            ok("swtpm:port=4000,host=::1").unwrap(),
            "swtpm:host=::1,port=4000"
        );
        assert_eq!(ok("device").unwrap(), "device");
        let err = |v: &str| run(&[("TCTI", v)], &[]).unwrap_err().to_string();
        assert_eq!(
            err("swtpm:hots=x"),
            "TCTI=\"swtpm:hots=x\" cannot be used: unknown swtpm option \"hots=x\" (use host=HOST,port=PORT or path=SOCKET)"
        );
        assert_eq!(
            err("mssim:path=/run/mssim.sock"),
            "TCTI=\"mssim:path=/run/mssim.sock\" cannot be used: unknown mssim option \"path=/run/mssim.sock\" (use host=HOST,port=PORT)"
        );
        assert_eq!(
            err("swtpm:port=99999"),
            "TCTI=\"swtpm:port=99999\" cannot be used: \"99999\" is not a port number"
        );
        assert_eq!(
            err("swtpm:host=a b"),
            "TCTI=\"swtpm:host=a b\" cannot be used: \"a b\" is not a host name or address"
        );
        assert_eq!(
            err("libtss2-tcti-foo.so"),
            "TCTI=\"libtss2-tcti-foo.so\" cannot be used: unknown TCTI \"libtss2-tcti-foo.so\" (use device, swtpm, mssim or tabrmd)"
        );
    }

    #[test]
    fn swtpm_unix_sockets_are_accepted_as_the_reference_accepts_them() {
        for variable in ["TPM2TOOLS_TCTI", "TCTI"] {
            let c = run(&[(variable, "swtpm:path=/run/swtpm.sock")], &[]).unwrap();
            assert_eq!(c.conf, "swtpm:path=/run/swtpm.sock");
            assert_eq!(c.unix_socket(), Some(Path::new("/run/swtpm.sock")));
            assert_eq!(c.device_path(), None);
        }
        // TPM_DEVICE: a socket is a swtpm, anything else a device.
        let c = run(&[("TPM_DEVICE", "/run/swtpm.sock")], &["/run/swtpm.sock"]).unwrap();
        assert_eq!(c.conf, "swtpm:path=/run/swtpm.sock");
        assert_eq!(c.origin, TctiOrigin::TpmDevice);
        assert_eq!(c.unix_socket(), Some(Path::new("/run/swtpm.sock")));
        let c = run(&[("TPM_DEVICE", "/dev/tpm0")], &["/run/swtpm.sock"]).unwrap();
        assert_eq!(c.conf, "device:/dev/tpm0");
        assert_eq!(c.unix_socket(), None);
        assert_eq!(
            TctiConfig::new("swtpm:path=rel.sock")
                .unwrap()
                .unix_socket(),
            Some(Path::new("rel.sock"))
        );
        let err = |v: &str| run(&[("TPM2TOOLS_TCTI", v)], &[]).unwrap_err().to_string();
        assert_eq!(
            err("swtpm:path=/run/swtpm.sock,port=2321"),
            "TPM2TOOLS_TCTI=\"swtpm:path=/run/swtpm.sock,port=2321\" cannot be used: path= (a unix socket) cannot be combined with host= or port="
        );
        assert_eq!(
            err("swtpm:host=localhost,path=/s"),
            "TPM2TOOLS_TCTI=\"swtpm:host=localhost,path=/s\" cannot be used: path= (a unix socket) cannot be combined with host= or port="
        );
        assert_eq!(
            err("swtpm:path="),
            "TPM2TOOLS_TCTI=\"swtpm:path=\" cannot be used: unknown swtpm option \"path=\" (use host=HOST,port=PORT or path=SOCKET)"
        );
    }
}
