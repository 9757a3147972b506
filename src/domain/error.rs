//! The errors a command can be refused with.
//!
//! Each variant maps to one HTTP status in Ironic's API; the message is the text
//! Ironic uses for the same refusal, so clients and operators see familiar words.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum DomainError {
    /// The resource does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed or a value is not acceptable (400).
    #[error("{0}")]
    Invalid(String),
    /// The node's state does not allow the action (400, Ironic's `InvalidStateRequested`).
    #[error("{0}")]
    InvalidStateRequested(String),
    /// The action conflicts with the current state or another resource (409).
    #[error("{0}")]
    Conflict(String),
    /// The action is refused outright for this resource (403, Ironic's
    /// `NodeProtected`: a protected node cannot be undeployed, rebuilt or deleted).
    #[error("{0}")]
    Forbidden(String),
}

impl DomainError {
    /// Ironic's `NodeProtected` (403).
    pub fn node_protected(node: &str) -> Self {
        DomainError::Forbidden(format!(
            "Node {node} is protected and cannot be undeployed, rebuilt or deleted"
        ))
    }

    /// Ironic's `InvalidStateRequested` text.
    pub fn invalid_state(action: &str, node: &str, state: &str) -> Self {
        DomainError::InvalidStateRequested(format!(
            "The requested action \"{action}\" can not be performed on node \"{node}\" while it is in state \"{state}\"."
        ))
    }
}
