//! ARNs of trust anchors, profiles and roles, checked before any request.

/// Which ARN a value was meant to be (names the setting in errors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArnKind {
    /// `arn:PARTITION:rolesanywhere:REGION:ACCOUNT:trust-anchor/ID`
    TrustAnchor,
    /// `arn:PARTITION:rolesanywhere:REGION:ACCOUNT:profile/ID`
    Profile,
    /// `arn:PARTITION:iam::ACCOUNT:role/PATH/NAME`
    Role,
}

impl ArnKind {
    /// The setting that carries this ARN.
    pub fn field(self) -> crate::error::Field {
        match self {
            ArnKind::TrustAnchor => crate::error::Field::TrustAnchorArn,
            ArnKind::Profile => crate::error::Field::ProfileArn,
            ArnKind::Role => crate::error::Field::RoleArn,
        }
    }

    fn expected(self) -> &'static str {
        match self {
            ArnKind::TrustAnchor => "arn:aws:rolesanywhere:REGION:ACCOUNT:trust-anchor/ID",
            ArnKind::Profile => "arn:aws:rolesanywhere:REGION:ACCOUNT:profile/ID",
            ArnKind::Role => "arn:aws:iam::ACCOUNT:role/NAME",
        }
    }
}

/// An ARN failed its local check.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{} {} is not a valid ARN: {reason} (expected {})", kind.field(), crate::error::quote(value), kind.expected())]
#[non_exhaustive]
pub struct ArnError {
    /// Which ARN.
    pub kind: ArnKind,
    /// The value given (ARNs are not secret).
    pub value: String,
    /// What is wrong.
    pub reason: &'static str,
}

/// A checked ARN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arn {
    value: String,
    partition: String,
    region: String,
    account: String,
    resource: String,
}

impl Arn {
    /// Parses and checks `value` as an ARN of `kind`.
    pub fn parse(kind: ArnKind, value: &str) -> Result<Self, ArnError> {
        let err = |reason| ArnError {
            kind,
            value: value.to_string(),
            reason,
        };
        if value.is_empty() {
            return Err(err("it is empty"));
        }
        if value.len() > 2048 || !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(err("it holds spaces or characters outside printable ASCII"));
        }
        let mut parts = value.splitn(6, ':');
        let (
            Some("arn"),
            Some(partition),
            Some(service),
            Some(region),
            Some(account),
            Some(resource),
        ) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        )
        else {
            return Err(err(
                "it does not have six ':'-separated fields starting with 'arn'",
            ));
        };
        if !matches!(
            partition,
            "aws"
                | "aws-cn"
                | "aws-us-gov"
                | "aws-iso"
                | "aws-iso-b"
                | "aws-iso-e"
                | "aws-iso-f"
                | "aws-eusc"
        ) {
            return Err(err("unknown partition"));
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("the account is not 12 digits"));
        }
        let valid_region = |r: &str| {
            !r.is_empty()
                && r.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        match kind {
            ArnKind::TrustAnchor | ArnKind::Profile => {
                if service != "rolesanywhere" {
                    return Err(err("the service is not 'rolesanywhere'"));
                }
                if !valid_region(region) {
                    return Err(err("the region is missing or malformed"));
                }
                let prefix = if kind == ArnKind::TrustAnchor {
                    "trust-anchor/"
                } else {
                    "profile/"
                };
                let Some(id) = resource.strip_prefix(prefix) else {
                    return Err(if kind == ArnKind::TrustAnchor {
                        err("the resource is not 'trust-anchor/ID'")
                    } else {
                        err("the resource is not 'profile/ID'")
                    });
                };
                if !is_uuid(id) {
                    return Err(err("the ID is not a UUID"));
                }
            }
            ArnKind::Role => {
                if service != "iam" {
                    return Err(err("the service is not 'iam'"));
                }
                if !region.is_empty() {
                    return Err(err("an IAM role ARN has no region"));
                }
                let Some(name) = resource.strip_prefix("role/") else {
                    return Err(err("the resource is not 'role/NAME'"));
                };
                let ok = |b: u8| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b);
                if name.is_empty() || name.ends_with('/') || !name.bytes().all(ok) {
                    return Err(err("the role name is empty or holds invalid characters"));
                }
            }
        }
        Ok(Self {
            value: value.to_string(),
            partition: partition.to_string(),
            region: region.to_string(),
            account: account.to_string(),
            resource: resource.to_string(),
        })
    }

    /// The ARN text.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The partition (`aws`, `aws-cn`, ...).
    pub fn partition(&self) -> &str {
        &self.partition
    }

    /// The region (empty for IAM roles).
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The account id.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The resource part (`trust-anchor/ID`, `role/NAME`).
    pub fn resource(&self) -> &str {
        &self.resource
    }
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_well_formed_arns() {
        let ta = Arn::parse(
            ArnKind::TrustAnchor,
            "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0",
        )
        .unwrap();
        assert_eq!(ta.region(), "us-east-1");
        assert_eq!(ta.partition(), "aws");
        Arn::parse(
            ArnKind::Role,
            "arn:aws-cn:iam::123456789012:role/path/My+Role",
        )
        .unwrap();
    }

    #[test]
    fn rejects_malformed_arns_naming_the_setting() {
        let e = Arn::parse(
            ArnKind::Profile,
            "arn:aws:rolesanywhere:us-east-1:123:profile/x",
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("profile ARN "), "{e}");
        assert_eq!(e.reason, "the account is not 12 digits");
        for bad in [
            "",
            "arn:aws:iam::123456789012:role/x",
            "arn:aws:rolesanywhere::123456789012:trust-anchor/0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0",
            "arn:aws:rolesanywhere:us-east-1:123456789012:profile/0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0",
            "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/not-a-uuid",
            "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0 ",
        ] {
            assert!(Arn::parse(ArnKind::TrustAnchor, bad).is_err(), "{bad:?}");
        }
        assert!(Arn::parse(ArnKind::Role, "arn:aws:iam:us-east-1:123456789012:role/x").is_err());
        assert!(Arn::parse(ArnKind::Role, "arn:aws:iam::123456789012:user/x").is_err());
    }
}
