//! Errors of BMC calls. Each says which BMC action failed, at which BMC, and
//! why, in words an operator can act on; [`BmcError::transient`] tells the
//! saga whether retrying can help (a BMC that did not answer, timed out or
//! failed with a 5xx) or not (refused credentials, an unknown system, a value
//! the BMC does not accept). No password is ever part of one: the clients
//! never format a credential, and error texts taken from the BMC or from
//! ipmitool are cut to a bounded length.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BmcErrorKind {
    /// Nothing answered (refused connection, no route, timeout).
    Unreachable,
    /// The BMC refused the credentials (HTTP 401/403, a rejected IPMI session).
    Unauthorized,
    /// The system (or resource) named does not exist on the BMC.
    NotFound,
    /// The BMC does not offer what was asked (a reset type, a boot device).
    Unsupported,
    /// The BMC answered with an error.
    Failed,
    /// The node's `driver_info` cannot work (e.g. no system id where several exist).
    Config,
    /// The BMC accepted the request but never reached the state asked for.
    Timeout,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct BmcError {
    /// The action, e.g. `Redfish power on of https://10.0.0.5`.
    pub action: String,
    pub kind: BmcErrorKind,
    /// Why, e.g. `the BMC refused the credentials (HTTP 401)`.
    pub reason: String,
    /// Worth retrying.
    pub transient: bool,
}

impl fmt::Display for BmcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.action, self.reason)
    }
}

impl BmcError {
    pub fn new(action: impl Into<String>, kind: BmcErrorKind, reason: impl Into<String>) -> Self {
        let transient = matches!(kind, BmcErrorKind::Unreachable);
        BmcError {
            action: action.into(),
            kind,
            reason: bounded(&reason.into()),
            transient,
        }
    }

    pub fn transient(mut self, transient: bool) -> Self {
        self.transient = transient;
        self
    }
}

/// A text from the outside (a BMC's error body, ipmitool's stderr) cut to 300
/// characters on one line, so an error stays readable and bounded.
pub(crate) fn bounded(s: &str) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 300 {
        let mut t: String = one_line.chars().take(300).collect();
        t.push('…');
        t
    } else {
        one_line
    }
}
