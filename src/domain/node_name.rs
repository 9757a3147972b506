//! A node's logical name, the value type that parses it.
//!
//! Ironic lets a node be named so that clients can use the name wherever a
//! UUID goes (`/v1/nodes/<name>`). That works only if a name can never be
//! mistaken for a UUID and fits in a URL path segment unescaped, so a name is
//! 1 to 255 of RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`) and
//! does not parse as a UUID. Clients older than API 1.10 were held to the
//! stricter host-name shape ([`is_hostname_safe`]); that version gate, the
//! reserved words and the wording of every refusal are the API's
//! (`docs/ironic-behaviour.md` §4.2).

use std::fmt;
use uuid::Uuid;

/// A name that passed [`NodeName::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeName(String);

/// Why a string is not a node name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidName {
    /// Empty, longer than 255, or a character outside RFC 3986's unreserved set.
    Shape,
    /// It parses as a UUID, so `/v1/nodes/<it>` would be ambiguous.
    LooksLikeUuid,
}

impl NodeName {
    /// Parses a logical node name.
    pub fn parse(s: &str) -> Result<NodeName, InvalidName> {
        if !is_logical_name(s) {
            Err(InvalidName::Shape)
        } else if Uuid::parse_str(s).is_ok() {
            Err(InvalidName::LooksLikeUuid)
        } else {
            Ok(NodeName(s.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for NodeName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The shape of a logical name (RFC 3986 unreserved characters, 1 to 255),
/// without the UUID exclusion: what a path segment naming a node by UUID or
/// name must look like.
pub fn is_logical_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
}

/// [`is_logical_name`] as a regular expression, for the OpenAPI document (a
/// UUID matches it too, so it describes a node path segment whole).
pub const LOGICAL_NAME_PATTERN: &str = "^[A-Za-z0-9._~-]{1,255}$";

/// Ironic's host-name rule, which names had to follow before API 1.10: dot-
/// separated labels of 1 to 63 lower-case letters, digits and `-`, neither
/// starting nor ending with `-`, 255 characters in all, one trailing dot allowed.
pub fn is_hostname_safe(name: &str) -> bool {
    if name.len() > 255 {
        return false;
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    name.split('.').all(|part| {
        let b = part.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    })
}

/// Words a node may not be named: they are the node resource's own
/// sub-paths (`/v1/nodes/detail`, `…/validate`), which a name would shadow.
pub const RESERVED_NAMES: &[&str] = &[
    "maintenance",
    "management",
    "states",
    "vendor_passthru",
    "detail",
    "validate",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unreserved_characters_and_not_uuids() {
        assert_eq!(
            NodeName::parse("rack1-node_07.a~b").unwrap().as_str(),
            "rack1-node_07.a~b"
        );
        assert_eq!(NodeName::parse(""), Err(InvalidName::Shape));
        assert_eq!(NodeName::parse("has space"), Err(InvalidName::Shape));
        assert_eq!(NodeName::parse("é"), Err(InvalidName::Shape));
        assert_eq!(NodeName::parse(&"a".repeat(256)), Err(InvalidName::Shape));
        assert!(NodeName::parse(&"a".repeat(255)).is_ok());
        assert_eq!(
            NodeName::parse("4a7b5c2e-0d1f-4e3a-9b8c-7d6e5f4a3b2c"),
            Err(InvalidName::LooksLikeUuid)
        );
        assert!(is_logical_name("4a7b5c2e-0d1f-4e3a-9b8c-7d6e5f4a3b2c"));
    }

    #[test]
    fn old_clients_get_host_names() {
        assert!(is_hostname_safe("node-1.rack2.example."));
        assert!(!is_hostname_safe("Node-1"));
        assert!(!is_hostname_safe("-node"));
        assert!(!is_hostname_safe("node..x"));
        assert!(!is_hostname_safe(&format!("{}.x", "a".repeat(64))));
    }
}
