//! The command's environment: ours minus everything an AWS SDK would prefer to the
//! credentials `exec` gives it, plus those credentials and a region.
//!
//! The SDKs look for credentials in this order (botocore 1.43; the AWS CLI, the Go,
//! Java, JavaScript and Rust SDKs use the same order minus the botocore-only steps):
//!
//! 1. `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN` (skipped by
//!    botocore when a profile is named in code);
//! 2. the profile named by `AWS_PROFILE` (`AWS_DEFAULT_PROFILE` for older tools), else
//!    `default`: `role_arn` + `source_profile`/`credential_source`,
//!    `web_identity_token_file` (or `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`),
//!    SSO, keys in the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else
//!    `~/.aws/credentials`), `credential_process`, keys in the config file
//!    (`AWS_CONFIG_FILE`, else `~/.aws/config`);
//! 3. botocore only: `AWS_CREDENTIAL_FILE`, then the `[Credentials]` section of the boto
//!    config (`BOTO_CONFIG`, else `/etc/boto.cfg` and `~/.boto`);
//! 4. the container endpoint: `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` wins over
//!    `AWS_CONTAINER_CREDENTIALS_FULL_URI`, and `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`
//!    over `AWS_CONTAINER_AUTHORIZATION_TOKEN`;
//! 5. the instance metadata service.
//!
//! So the command gets none of the variables of steps 1 to 4 but ours; the profile
//! is `default`; and a file that gives the `default` profile (or boto) credentials
//! is replaced by `/dev/null` for the command (the config file only when its
//! `default` profile holds credentials, since it carries other settings too). iamra's
//! own secrets (`IAMRA_PKCS8_PASSWORD`, `IAMRA_PKCS12_PASSWORD`, `IAMRA_PKCS11_PIN`,
//! `IAMRA_TPM_KEY_PASSWORD`, and any variable named by an `env:NAME` flag value) are
//! removed too. `AWS_REGION` and `AWS_DEFAULT_REGION` are both set to the session's
//! region unless one of them is set.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
use std::path::{Path, PathBuf};

use iamra::credentials::TemporaryCredentials;
use secrecy::{ExposeSecret as _, SecretString};
use zeroize::Zeroize as _;

use super::super::passwords::{PKCS8_ENV, PKCS11_PIN_ENV, PKCS12_ENV, TPM_ENV};

/// Variables removed from the command's environment.
pub(super) const REMOVED: &[&str] = &[
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_ACCOUNT_ID",
    "AWS_ACCESS_KEY",
    "AWS_SECRET_KEY",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CREDENTIAL_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    PKCS8_ENV,
    PKCS12_ENV,
    PKCS11_PIN_ENV,
    TPM_ENV,
];

/// Keys that make a profile a source of credentials.
const CREDENTIAL_KEYS: &[&str] = &[
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "role_arn",
    "source_profile",
    "credential_source",
    "credential_process",
    "web_identity_token_file",
    "sso_session",
    "sso_start_url",
    "sso_account_id",
    "sso_role_name",
    "login_session",
];

/// What stands in for a file the command must not read.
pub(super) const NULL_FILE: &str = "/dev/null";

/// How the command gets its credentials.
pub(super) enum Credentials<'a> {
    /// From the private ECS endpoint.
    Endpoint {
        /// `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
        uri: &'a str,
        /// `AWS_CONTAINER_AUTHORIZATION_TOKEN`.
        token: &'a SecretString,
    },
    /// As variables (`--env`).
    Variables(&'a TemporaryCredentials),
}

/// The command's environment. Values are wiped when it is dropped (they include
/// the token or the secret key).
pub(super) struct ChildEnv {
    /// Every variable.
    pub vars: BTreeMap<OsString, OsString>,
    /// What was changed besides the credentials, for the log (no values).
    pub notes: Vec<String>,
}

impl Drop for ChildEnv {
    fn drop(&mut self) {
        for value in self.vars.values_mut() {
            let mut bytes = std::mem::take(value).into_vec();
            bytes.zeroize();
        }
    }
}

impl std::fmt::Debug for ChildEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildEnv")
            .field("names", &self.vars.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The first of `keys` set in one of `sections` of the INI text, if any. Section
/// names are compared with their inner spaces collapsed; indented lines (values
/// continued from the line above) and comments are skipped.
fn section_key(text: &str, sections: &[&str], keys: &[&str]) -> Option<String> {
    let mut inside = false;
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            inside = sections.contains(&name.as_str());
            continue;
        }
        if !inside || line.starts_with([' ', '\t']) {
            continue;
        }
        if let Some((k, _)) = t.split_once(['=', ':']) {
            let k = k.trim().to_ascii_lowercase();
            if keys.contains(&k.as_str()) {
                return Some(k);
            }
        }
    }
    None
}

/// `value` with a leading `~/` replaced by `home`.
fn expand(value: &OsStr, home: Option<&OsStr>) -> PathBuf {
    match (value.as_bytes().strip_prefix(b"~/"), home) {
        (Some(rest), Some(home)) => Path::new(home).join(OsStr::from_bytes(rest)),
        _ => PathBuf::from(value),
    }
}

/// Builds the command's environment from `parent` (iamra's own). `read` reads a file
/// (`None` when it cannot); `also_remove` are variables named by `env:NAME` flag
/// values; `region` is the session's.
pub(super) fn build(
    parent: impl IntoIterator<Item = (OsString, OsString)>,
    read: &dyn Fn(&Path) -> Option<String>,
    region: &str,
    also_remove: &[OsString],
    credentials: Credentials<'_>,
) -> ChildEnv {
    let vars: BTreeMap<OsString, OsString> = parent.into_iter().collect();
    let mut env = ChildEnv {
        vars,
        notes: Vec::new(),
    };
    let home = env.vars.get(OsStr::new("HOME")).cloned();
    let file = |var: &str, default: &str| -> Option<PathBuf> {
        match env.vars.get(OsStr::new(var)).filter(|v| !v.is_empty()) {
            Some(v) => Some(expand(v, home.as_deref())),
            None => home.as_ref().map(|h| Path::new(h).join(default)),
        }
    };
    let credentials_file = file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
    let config_file = file("AWS_CONFIG_FILE", ".aws/config");
    let boto_files: Vec<PathBuf> = match env.vars.get(OsStr::new("BOTO_CONFIG")) {
        Some(v) if !v.is_empty() => vec![expand(v, home.as_deref())],
        _ => std::iter::once(PathBuf::from("/etc/boto.cfg"))
            .chain(home.as_ref().map(|h| Path::new(h).join(".boto")))
            .collect(),
    };

    for name in REMOVED
        .iter()
        .map(OsStr::new)
        .chain(also_remove.iter().map(OsString::as_os_str))
    {
        if let Some(mut old) = env.vars.remove(name) {
            if name == "AWS_PROFILE" || name == "AWS_DEFAULT_PROFILE" {
                env.notes.push(format!(
                    "{} is not passed on: the command uses the default profile with these credentials",
                    name.to_string_lossy()
                ));
            }
            let mut bytes = std::mem::take(&mut old).into_vec();
            bytes.zeroize();
        }
    }

    let mut replace = |var: &str, path: &Path, key: &str, what: &str| {
        env.notes.push(format!(
            "{} defines {key} for the {what}; the command gets {var}={NULL_FILE} so that it uses these credentials",
            path.display()
        ));
        env.vars.insert(var.into(), NULL_FILE.into());
    };
    if let Some(path) = credentials_file
        && let Some(key) = read(&path).and_then(|t| section_key(&t, &["default"], CREDENTIAL_KEYS))
    {
        replace(
            "AWS_SHARED_CREDENTIALS_FILE",
            &path,
            &key,
            "default profile",
        );
    }
    if let Some(path) = config_file
        && let Some(key) = read(&path)
            .and_then(|t| section_key(&t, &["default", "profile default"], CREDENTIAL_KEYS))
    {
        replace("AWS_CONFIG_FILE", &path, &key, "default profile");
    }
    if let Some((path, key)) = boto_files.iter().find_map(|p| {
        read(p)
            .and_then(|t| section_key(&t, &["Credentials"], CREDENTIAL_KEYS))
            .map(|k| (p, k))
    }) {
        replace("BOTO_CONFIG", path, &key, "boto [Credentials] section");
    }

    let set = |v: Option<&OsString>| v.is_some_and(|v| !v.is_empty());
    if !set(env.vars.get(OsStr::new("AWS_REGION")))
        && !set(env.vars.get(OsStr::new("AWS_DEFAULT_REGION")))
    {
        env.vars.insert("AWS_REGION".into(), region.into());
        env.vars.insert("AWS_DEFAULT_REGION".into(), region.into());
    }

    match credentials {
        Credentials::Endpoint { uri, token } => {
            env.vars
                .insert("AWS_CONTAINER_CREDENTIALS_FULL_URI".into(), uri.into());
            // Security: the token goes into the command's environment only.
            env.vars.insert(
                "AWS_CONTAINER_AUTHORIZATION_TOKEN".into(),
                token.expose_secret().into(),
            );
        }
        Credentials::Variables(c) => {
            env.vars
                .insert("AWS_ACCESS_KEY_ID".into(), c.access_key_id().into());
            // Security: the secret key and token go into the command's environment only.
            env.vars
                .insert("AWS_SECRET_ACCESS_KEY".into(), c.secret_access_key().into());
            env.vars
                .insert("AWS_SESSION_TOKEN".into(), c.session_token().into());
            env.vars.insert(
                "AWS_CREDENTIAL_EXPIRATION".into(),
                iamra::utc::rfc3339(c.expires_at()).into(),
            );
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parent(vars: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        vars.iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    fn get<'a>(env: &'a ChildEnv, k: &str) -> Option<&'a str> {
        env.vars.get(OsStr::new(k)).and_then(|v| v.to_str())
    }

    /// The endpoint-mode environment for `vars`, with `read` as the file system.
    fn endpoint_env(vars: &[(&str, &str)], read: &dyn Fn(&Path) -> Option<String>) -> ChildEnv {
        let token = SecretString::from("t");
        build(
            parent(vars),
            read,
            "us-east-1",
            &[],
            Credentials::Endpoint {
                uri: "u",
                token: &token,
            },
        )
    }

    fn files(map: &'static [(&'static str, &'static str)]) -> impl Fn(&Path) -> Option<String> {
        move |p: &Path| {
            map.iter()
                .find(|(name, _)| Path::new(name) == p)
                .map(|(_, text)| text.to_string())
        }
    }

    #[test]
    fn overriding_variables_are_removed_and_the_token_is_set() {
        let token = SecretString::from("t0ken");
        let env = build(
            parent(&[
                ("PATH", "/bin"),
                ("HOME", "/h"),
                ("AWS_PROFILE", "prod"),
                ("AWS_DEFAULT_PROFILE", "prod"),
                ("AWS_ACCESS_KEY_ID", "AKIAOLD"),
                ("AWS_SECRET_ACCESS_KEY", "old"),
                ("AWS_SESSION_TOKEN", "old"),
                ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
                ("AWS_ROLE_ARN", "arn:aws:iam::1:role/x"),
                ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/x"),
                ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/t"),
                ("IAMRA_PKCS11_PIN", "1234"),
                ("IAMRA_ROLE_ARN", "kept"),
                ("MY_KEY", "-----BEGIN"),
            ]),
            &files(&[]),
            "eu-west-1",
            &["MY_KEY".into()],
            Credentials::Endpoint {
                uri: "http://127.0.0.1:4242/v1/credentials",
                token: &token,
            },
        );
        let names: Vec<&str> = env.vars.keys().map(|k| k.to_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "AWS_DEFAULT_REGION",
                "AWS_REGION",
                "HOME",
                "IAMRA_ROLE_ARN",
                "PATH"
            ]
        );
        assert_eq!(
            get(&env, "AWS_CONTAINER_AUTHORIZATION_TOKEN"),
            Some("t0ken")
        );
        assert_eq!(get(&env, "AWS_REGION"), Some("eu-west-1"));
        assert_eq!(env.notes.len(), 2, "{:?}", env.notes);
        assert!(!format!("{env:?}").contains("t0ken"));
    }

    #[test]
    fn a_region_already_set_is_kept() {
        for set in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
            let env = endpoint_env(&[(set, "ap-south-1")], &files(&[]));
            assert_eq!(get(&env, set), Some("ap-south-1"));
            assert_eq!(env.vars.len(), 3, "only the two credential variables added");
        }
    }

    #[test]
    fn env_mode_exports_the_four_variables() {
        let exp = ::time::macros::datetime!(2026-12-02 09:00:00 UTC);
        let c = TemporaryCredentials::new(
            "ASIAX".into(),
            SecretString::from("sk"),
            SecretString::from("st"),
            iamra::utc::rfc3339(exp),
            exp,
        );
        let env = build(
            parent(&[]),
            &files(&[]),
            "us-east-1",
            &[],
            Credentials::Variables(&c),
        );
        assert_eq!(get(&env, "AWS_ACCESS_KEY_ID"), Some("ASIAX"));
        assert_eq!(get(&env, "AWS_SECRET_ACCESS_KEY"), Some("sk"));
        assert_eq!(get(&env, "AWS_SESSION_TOKEN"), Some("st"));
        assert_eq!(
            get(&env, "AWS_CREDENTIAL_EXPIRATION"),
            Some("2026-12-02T09:00:00Z")
        );
        assert!(get(&env, "AWS_CONTAINER_CREDENTIALS_FULL_URI").is_none());
    }

    #[test]
    fn files_giving_the_default_profile_credentials_are_hidden() {
        let read = files(&[
            (
                "/h/.aws/credentials",
                "[other]\naws_access_key_id = A\n[default]\n# c\naws_access_key_id=B\n",
            ),
            (
                "/h/cfg",
                "[profile  default]\nregion = eu-west-3\ncredential_process = x\n",
            ),
            ("/h/.boto", "[Credentials]\naws_access_key_id = C\n"),
        ]);
        let env = endpoint_env(&[("HOME", "/h"), ("AWS_CONFIG_FILE", "~/cfg")], &read);
        assert_eq!(get(&env, "AWS_SHARED_CREDENTIALS_FILE"), Some(NULL_FILE));
        assert_eq!(get(&env, "AWS_CONFIG_FILE"), Some(NULL_FILE));
        assert_eq!(get(&env, "BOTO_CONFIG"), Some(NULL_FILE));
        assert_eq!(env.notes.len(), 3);
        assert!(
            env.notes[1].contains("/h/cfg defines credential_process"),
            "{:?}",
            env.notes
        );
    }

    #[test]
    fn files_without_default_credentials_are_left_alone() {
        let read = files(&[
            (
                "/h/.aws/credentials",
                "[other]\naws_access_key_id = A\n[defaultx]\naws_access_key_id = B\n",
            ),
            (
                "/h/.aws/config",
                "[default]\nregion = eu-west-3\ns3 =\n  role_arn = nested\n[profile other]\nrole_arn = x\n",
            ),
        ]);
        let env = endpoint_env(&[("HOME", "/h")], &read);
        assert!(get(&env, "AWS_SHARED_CREDENTIALS_FILE").is_none());
        assert!(get(&env, "AWS_CONFIG_FILE").is_none());
        assert!(get(&env, "BOTO_CONFIG").is_none());
        assert!(env.notes.is_empty());
    }
}
