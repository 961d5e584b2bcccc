//! ARN syntax checks for the three `CreateSession` parameters.
//!
//! * trust anchor: `arn:PARTITION:rolesanywhere:REGION:ACCOUNT:trust-anchor/UUID`
//! * profile: `arn:PARTITION:rolesanywhere:REGION:ACCOUNT:profile/UUID`
//! * role: `arn:PARTITION:iam::ACCOUNT:role/NAME` or `…:role/PATH/NAME`
//!
//! PARTITION is `aws` or `aws-…` (lower-case letters and `-`), REGION like
//! `us-east-1` / `us-gov-west-1`, ACCOUNT 12 digits, UUID 8-4-4-4-12 hex digits,
//! role NAME 1 to 64 of `[A-Za-z0-9_+=,.@-]`, PATH printable ASCII.

/// The parts of a well-formed ARN that the endpoint uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn {
    /// Partition, e.g. `aws`.
    pub partition: String,
    /// Region (empty for IAM).
    pub region: String,
    /// Twelve-digit account id.
    pub account: String,
    /// Last component of the resource: the UUID or the role name.
    pub name: String,
}

/// Which kind of Roles Anywhere resource an ARN names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaKind {
    /// `trust-anchor/UUID`.
    TrustAnchor,
    /// `profile/UUID`.
    Profile,
}

impl RaKind {
    /// The resource-type prefix.
    fn prefix(self) -> &'static str {
        match self {
            RaKind::TrustAnchor => "trust-anchor/",
            RaKind::Profile => "profile/",
        }
    }
}

/// `aws` or `aws-` followed by lower-case letters and dashes.
fn valid_partition(p: &str) -> bool {
    p == "aws"
        || p.strip_prefix("aws-").is_some_and(|rest| {
            !rest.is_empty()
                && !rest.ends_with('-')
                && rest.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
        })
}

/// `xx-name[-name]-N`: lower-case groups separated by `-`, ending in a number.
pub fn valid_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    if parts.len() < 3 {
        return false;
    }
    let (last, groups) = match parts.split_last() {
        Some(x) => x,
        None => return false,
    };
    !last.is_empty()
        && last.len() <= 2
        && last.bytes().all(|b| b.is_ascii_digit())
        && groups
            .iter()
            .all(|g| !g.is_empty() && g.bytes().all(|b| b.is_ascii_lowercase()))
}

/// Twelve ASCII digits.
fn valid_account(a: &str) -> bool {
    a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit())
}

/// `8-4-4-4-12` hex digits.
fn valid_uuid(u: &str) -> bool {
    let groups: Vec<&str> = u.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    groups.len() == lens.len()
        && groups
            .iter()
            .zip(lens)
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether `c` is in the IAM name set `[\w+=,.@-]`.
pub fn is_iam_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'+' | b'=' | b',' | b'.' | b'@' | b'-')
}

/// Parses a Roles Anywhere trust-anchor or profile ARN.
pub fn parse_rolesanywhere(arn: &str, kind: RaKind) -> Option<Arn> {
    let mut it = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("rolesanywhere"), Some(region), Some(account)) =
        (it.next(), it.next(), it.next(), it.next(), it.next())
    else {
        return None;
    };
    let resource = it.next()?;
    let uuid = resource.strip_prefix(kind.prefix())?;
    (valid_partition(partition)
        && valid_region(region)
        && valid_account(account)
        && valid_uuid(uuid))
    .then(|| Arn {
        partition: partition.to_string(),
        region: region.to_string(),
        account: account.to_string(),
        name: uuid.to_string(),
    })
}

/// Parses an IAM role ARN.
pub fn parse_role(arn: &str) -> Option<Arn> {
    let mut it = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account)) =
        (it.next(), it.next(), it.next(), it.next(), it.next())
    else {
        return None;
    };
    let resource = it.next()?;
    let rest = resource.strip_prefix("role/")?;
    let (path, name) = match rest.rsplit_once('/') {
        Some((path, name)) => (path, name),
        None => ("", rest),
    };
    let name_ok = (1..=64).contains(&name.len()) && name.bytes().all(is_iam_name_byte);
    let path_ok = path.len() <= 510
        && path.bytes().all(|b| (0x21..=0x7e).contains(&b))
        && !path.contains("//")
        && !path.ends_with('/')
        && (path.is_empty() || !path.starts_with('/'));
    (valid_partition(partition) && valid_account(account) && name_ok && path_ok).then(|| Arn {
        partition: partition.to_string(),
        region: String::new(),
        account: account.to_string(),
        name: name.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TA: &str = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0";
    const PROFILE: &str =
        "arn:aws:rolesanywhere:us-east-1:123456789012:profile/1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d";

    #[test]
    fn rolesanywhere_arns_parse() {
        let a = parse_rolesanywhere(TA, RaKind::TrustAnchor).expect("trust anchor");
        assert_eq!(a.region, "us-east-1");
        assert_eq!(a.account, "123456789012");
        assert!(parse_rolesanywhere(PROFILE, RaKind::Profile).is_some());
        assert!(parse_rolesanywhere(TA, RaKind::Profile).is_none());
        assert!(parse_rolesanywhere(PROFILE, RaKind::TrustAnchor).is_none());
        let gov = "arn:aws-us-gov:rolesanywhere:us-gov-west-1:123456789012:profile/1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d";
        assert!(parse_rolesanywhere(gov, RaKind::Profile).is_some());
    }

    #[test]
    fn malformed_rolesanywhere_arns_are_refused() {
        for bad in [
            "",
            "arn:aws:rolesanywhere:us-east-1:123456789012:profile/",
            "arn:aws:rolesanywhere:us-east-1:12345678901:profile/1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d",
            "arn:aws:rolesanywhere:useast1:123456789012:profile/1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d",
            "arn:aws:iam:us-east-1:123456789012:profile/1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d",
            "arn:xyz:rolesanywhere:us-east-1:123456789012:profile/1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d",
            "arn:aws:rolesanywhere:us-east-1:123456789012:profile/1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6",
            "arn:aws:rolesanywhere:us-east-1:123456789012:profile/1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6dx",
        ] {
            assert!(parse_rolesanywhere(bad, RaKind::Profile).is_none(), "{bad}");
        }
    }

    #[test]
    fn role_arns_parse_with_and_without_path() {
        let r = parse_role("arn:aws:iam::123456789012:role/iamra-test-role").expect("role");
        assert_eq!(r.name, "iamra-test-role");
        let r = parse_role("arn:aws:iam::123456789012:role/a/b/My+Role=,.@-_").expect("path");
        assert_eq!(r.name, "My+Role=,.@-_");
        for bad in [
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:user/x",
            "arn:aws:iam:us-east-1:123456789012:role/x",
            "arn:aws:iam::12345678901a:role/x",
            "arn:aws:iam::123456789012:role/a//x",
            "arn:aws:iam::123456789012:role/bad name",
            "arn:aws:sts::123456789012:role/x",
        ] {
            assert!(parse_role(bad).is_none(), "{bad}");
        }
    }
}
