//! A port's MAC address, the value type that parses it.
//!
//! A MAC is six two-digit hex octets, stored in lower case with `:` between
//! them, so the same card given as `52:54:00:AB:CD:01` and
//! `52-54-00-ab-cd-01` is one address (and one `port_address` claim). The
//! domain reads both separators ([`MacAddress::parse`]); Ironic's API accepts
//! only what oslo's `is_valid_mac` does, `:`-separated in any case
//! ([`MacAddress::parse_oslo`]), and ironledger's API answers as Ironic's.

use std::fmt;

/// A MAC address in Ironic's stored form (lower case, `:`-separated).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MacAddress(String);

impl MacAddress {
    /// Parses `:`- or `-`-separated octets (any case) and normalises; `None`
    /// if `raw` is not a MAC address.
    pub fn parse(raw: &str) -> Option<MacAddress> {
        Self::with_separators(raw, &[':', '-'])
    }

    /// oslo's `is_valid_mac`: `:`-separated octets only (any case).
    pub fn parse_oslo(raw: &str) -> Option<MacAddress> {
        Self::with_separators(raw, &[':'])
    }

    fn with_separators(raw: &str, separators: &[char]) -> Option<MacAddress> {
        let octets: Vec<&str> = raw.split(separators).collect();
        let valid = octets.len() == 6
            && octets
                .iter()
                .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
        valid.then(|| MacAddress(octets.join(":").to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalize_mac(raw: &str) -> Option<String> {
        MacAddress::parse(raw).map(MacAddress::into_string)
    }

    #[test]
    fn macs_normalise() {
        assert_eq!(
            normalize_mac("52:54:00:AB:cd:01").as_deref(),
            Some("52:54:00:ab:cd:01")
        );
        assert_eq!(
            normalize_mac("52-54-00-ab-cd-01").as_deref(),
            Some("52:54:00:ab:cd:01")
        );
        assert_eq!(normalize_mac("52:54:00:ab:cd"), None);
        assert_eq!(normalize_mac("52:54:00:ab:cd:0g"), None);
    }

    #[test]
    fn ironics_api_takes_colons_only() {
        assert_eq!(
            MacAddress::parse_oslo("52:54:00:AB:cd:01")
                .unwrap()
                .as_str(),
            "52:54:00:ab:cd:01"
        );
        for bad in [
            "52-54-00-ab-cd-01",
            "52:54:00-ab:cd:01",
            "5254.00ab.cd01",
            "52:54:00:ab:cd:01:02",
            "52:54:00:ab:cd:1",
            "",
        ] {
            assert_eq!(MacAddress::parse_oslo(bad), None, "{bad}");
        }
    }
}
