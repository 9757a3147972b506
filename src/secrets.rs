//! Secrets at rest: CHAP passwords and other secrets of a node are stored
//! encrypted, under a key per node that is destroyed with the node.
//!
//! # Keys
//!
//! - The **master key** (32 random bytes) comes from configuration:
//!   `[secrets] master_key` (base64) or the file `[secrets] master_key_file`
//!   (default `<data dir>/master.key`), which `serve` generates on first start,
//!   readable by its owner only (0600). Every process sharing a database needs
//!   the same master key.
//! - Each node gets a **data key** (32 random bytes) the first time one of its
//!   events carries a secret. It is stored in the database *wrapped* (encrypted)
//!   by the master key, as a claim of scope `data_key` owned by the node: it is
//!   written in the same transaction as the event that needed it, and
//!   `NodeDeleted` releases all of a node's claims — so deleting a node destroys
//!   its data key in the very transaction that records the deletion, and every
//!   secret in its events becomes unrecoverable (crypto-shredding). A node
//!   enrolled again under the same UUID gets a new key.
//!
//! # What is encrypted
//!
//! The values of sensitive keys (`domain::secrets::is_sensitive`: `password`,
//! `secret`, `token`, …, the list the API masks) and the keys
//! `domain::secrets::FIELD_SECRETS` names for one field (`image_url`,
//! `snmp_auth_key`, …, which the API masks by name) inside the parts of an event
//! that `domain::secrets::secret_scopes` names: volume target `properties` in
//! every event that carries a target, and node `instance_info`, `driver_info`,
//! `driver_internal_info`. Each value becomes a string
//! `ilenc:v1:<data key id>:<base64url(nonce ‖ ciphertext)>` (XChaCha20-Poly1305,
//! a random 192-bit nonce per value, the node's UUID as associated data, the
//! value's JSON text as plaintext), so the payload keeps its shape and the
//! projections, which never decrypt, store the ciphertext as it is (the API
//! masks those keys anyway).
//!
//! # Where secrets are decrypted
//!
//! Only for the write model: the cqrs-es repository decrypts the events it
//! loads for a command ([`crate::store::bridge::Sealing`]), and
//! `Engine::load_node` decrypts for the process manager, which renders the iPXE
//! script (written 0600). Exports, the audit tools and the read models see
//! ciphertext only. A value whose key is gone (the node was deleted) stays as
//! ciphertext.
//!
//! Events recorded before secrets at rest was enabled (or by an engine built
//! without a keyring, as in most tests) stay as they were written.

use crate::domain::secrets::{is_field_secret, is_sensitive, secret_scopes, Scope};
use crate::store::bridge::Sealing;
use crate::store::{ClaimOp, LogStore, StoreError};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use cqrs_es::persist::SerializedEvent;
use rand::RngCore;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The claim scope data keys are stored under.
pub const DATA_KEY_SCOPE: &str = "data_key";
/// How an encrypted value starts.
pub const ENVELOPE_PREFIX: &str = "ilenc:v1:";
const WRAPPED_PREFIX: &str = "dk1.";
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The data key of the value's node no longer exists: the node was deleted.
    #[error(
        "the data key {key_id} of {owner} is gone (deleted node): the secret is unrecoverable"
    )]
    Shredded { owner: String, key_id: String },
    #[error("data key of {owner} was wrapped by master key {wrapped_by}, but the configured master key is {configured} (is [secrets] master_key_file the one the other ironledger processes use?)")]
    WrongMasterKey {
        owner: String,
        wrapped_by: String,
        configured: String,
    },
    #[error("cannot decrypt: {0}")]
    Corrupt(String),
    #[error("master key file {path}: {message}")]
    KeyFile { path: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<SecretsError> for StoreError {
    fn from(e: SecretsError) -> Self {
        match e {
            SecretsError::Store(s) => s,
            SecretsError::Corrupt(m) => StoreError::Corrupt(m),
            other => StoreError::Database(other.to_string()),
        }
    }
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

/// A short identifier of a key (a key check value: the first 4 bytes of the
/// tag of an empty message), so that a ciphertext names the key it needs
/// without revealing anything about it.
fn key_id(cipher: &XChaCha20Poly1305) -> String {
    let tag = cipher
        .encrypt(
            XNonce::from_slice(&[0u8; NONCE_LEN]),
            Payload {
                msg: b"",
                aad: b"ironledger key check",
            },
        )
        .expect("encrypting an empty message cannot fail");
    tag[..4].iter().map(|b| format!("{b:02x}")).collect()
}

fn seal_bytes(cipher: &XChaCha20Poly1305, plaintext: &[u8], aad: &[u8]) -> String {
    let nonce = random::<NONCE_LEN>();
    let ct = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("XChaCha20-Poly1305 encryption cannot fail");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    URL_SAFE_NO_PAD.encode(out)
}

fn open_bytes(cipher: &XChaCha20Poly1305, sealed: &str, aad: &[u8]) -> Result<Vec<u8>, String> {
    let raw = URL_SAFE_NO_PAD
        .decode(sealed)
        .map_err(|e| format!("bad base64: {e}"))?;
    if raw.len() < NONCE_LEN + 16 {
        return Err("ciphertext too short".into());
    }
    let (nonce, ct) = raw.split_at(NONCE_LEN);
    cipher
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
        .map_err(|_| "authentication failed (wrong key or tampered data)".to_string())
}

/// The key that wraps the data keys.
pub struct MasterKey {
    cipher: XChaCha20Poly1305,
    id: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        let cipher = XChaCha20Poly1305::new(Key::from_slice(bytes));
        let id = key_id(&cipher);
        MasterKey { cipher, id }
    }

    /// A new random key.
    pub fn generate() -> Self {
        Self::from_bytes(&random::<32>())
    }

    /// A key given as base64 (standard or URL-safe alphabet) of 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let raw = STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
            .map_err(|e| format!("not base64: {e}"))?;
        let bytes: [u8; 32] = raw
            .try_into()
            .map_err(|r: Vec<u8>| format!("{} bytes, a master key has 32", r.len()))?;
        Ok(Self::from_bytes(&bytes))
    }

    /// The key in `path`, or a new one written there (mode 0600, directory
    /// created 0700) when the file does not exist. Returns the key and whether
    /// it was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), SecretsError> {
        let err = |message: String| SecretsError::KeyFile {
            path: path.display().to_string(),
            message,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    if let Ok(meta) = std::fs::metadata(path) {
                        if meta.permissions().mode() & 0o077 != 0 {
                            tracing::warn!(path = %path.display(), "the master key file is readable by others; chmod 600 it");
                        }
                    }
                }
                Ok((Self::from_base64(&text).map_err(err)?, false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    let mut builder = std::fs::DirBuilder::new();
                    builder.recursive(true);
                    #[cfg(unix)]
                    {
                        use std::os::unix::fs::DirBuilderExt;
                        builder.mode(0o700);
                    }
                    builder.create(dir).map_err(|e| err(e.to_string()))?;
                }
                let bytes = random::<32>();
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                match options.open(path) {
                    Ok(mut file) => {
                        use std::io::Write;
                        writeln!(file, "{}", STANDARD.encode(bytes))
                            .and_then(|_| file.sync_all())
                            .map_err(|e| err(e.to_string()))?;
                        Ok((Self::from_bytes(&bytes), true))
                    }
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::load_or_create(path)
                    }
                    Err(e) => Err(err(e.to_string())),
                }
            }
            Err(e) => Err(err(e.to_string())),
        }
    }

    /// The key's identifier (shown in wrapped data keys and error messages).
    pub fn id(&self) -> &str {
        &self.id
    }

    fn wrap_aad(owner: &str) -> Vec<u8> {
        [b"ironledger data key\0".as_slice(), owner.as_bytes()].concat()
    }

    /// A data key of `owner`, encrypted with this key: `dk1.<master id>.<…>`.
    pub fn wrap(&self, owner: &str, key: &DataKey) -> String {
        format!(
            "{WRAPPED_PREFIX}{}.{}",
            self.id,
            seal_bytes(&self.cipher, &key.bytes, &Self::wrap_aad(owner))
        )
    }

    /// The data key a [`wrap`](Self::wrap) made.
    pub fn unwrap(&self, owner: &str, wrapped: &str) -> Result<DataKey, SecretsError> {
        let rest = wrapped
            .strip_prefix(WRAPPED_PREFIX)
            .ok_or_else(|| SecretsError::Corrupt(format!("not a wrapped data key: {wrapped}")))?;
        let (by, sealed) = rest
            .split_once('.')
            .ok_or_else(|| SecretsError::Corrupt("wrapped data key without key id".into()))?;
        if by != self.id {
            return Err(SecretsError::WrongMasterKey {
                owner: owner.to_string(),
                wrapped_by: by.to_string(),
                configured: self.id.clone(),
            });
        }
        let raw = open_bytes(&self.cipher, sealed, &Self::wrap_aad(owner))
            .map_err(|m| SecretsError::Corrupt(format!("data key of {owner}: {m}")))?;
        let bytes: [u8; 32] = raw
            .try_into()
            .map_err(|_| SecretsError::Corrupt(format!("data key of {owner} has a bad length")))?;
        Ok(DataKey::from_bytes(bytes))
    }
}

/// One node's key for its secrets.
pub struct DataKey {
    bytes: [u8; 32],
    cipher: XChaCha20Poly1305,
    id: String,
}

impl DataKey {
    fn from_bytes(bytes: [u8; 32]) -> Self {
        let cipher = XChaCha20Poly1305::new(Key::from_slice(&bytes));
        let id = key_id(&cipher);
        DataKey { bytes, cipher, id }
    }

    pub fn generate() -> Self {
        Self::from_bytes(random::<32>())
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn aad(owner: &str) -> Vec<u8> {
        [b"ironledger secret\0".as_slice(), owner.as_bytes()].concat()
    }

    /// `value` encrypted for `owner`, as an envelope string.
    pub fn seal(&self, owner: &str, value: &Value) -> String {
        let text = serde_json::to_vec(value).expect("a JSON value serializes");
        format!(
            "{ENVELOPE_PREFIX}{}:{}",
            self.id,
            seal_bytes(&self.cipher, &text, &Self::aad(owner))
        )
    }

    /// The value an envelope of `owner` holds.
    pub fn open(&self, owner: &str, envelope: &str) -> Result<Value, SecretsError> {
        let (_, sealed) = parse_envelope(envelope)
            .ok_or_else(|| SecretsError::Corrupt("not an encrypted value".into()))?;
        let text = open_bytes(&self.cipher, sealed, &Self::aad(owner))
            .map_err(|m| SecretsError::Corrupt(format!("secret of {owner}: {m}")))?;
        // Stored data: decoded like every other (see `store::json`).
        crate::store::json::decode_slice(&text).map_err(|e| SecretsError::Corrupt(e.to_string()))
    }
}

/// The data key id and the sealed part of an envelope.
fn parse_envelope(s: &str) -> Option<(&str, &str)> {
    s.strip_prefix(ENVELOPE_PREFIX)?.split_once(':')
}

/// Whether a JSON value is an encrypted value.
pub fn is_envelope(v: &Value) -> bool {
    v.as_str().is_some_and(|s| parse_envelope(s).is_some())
}

/// Calls `f` on every value that is a secret in `scope` (a value of a
/// sensitive key, not an object, not null, not yet sealed), recursively.
fn visit_secrets(v: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                if is_sensitive(k) && !child.is_object() && !child.is_null() {
                    if !is_envelope(child) {
                        f(child);
                    }
                } else {
                    visit_secrets(child, f);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| visit_secrets(i, f)),
        _ => {}
    }
}

/// Calls `f` on every secret of a node event's payload (see module docs).
pub fn visit_event_secrets(event_type: &str, payload: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    fn follow(v: &mut Value, scope: &Scope, path: &[&str], f: &mut dyn FnMut(&mut Value)) {
        match path.split_first() {
            None => {
                // Whole values first: a `configdrive` object is sealed as one.
                if let (Some(field), Value::Object(m)) = (scope.field, &mut *v) {
                    for (k, child) in m.iter_mut() {
                        if is_field_secret(field, k, child) && !is_envelope(child) {
                            f(child);
                        }
                    }
                }
                visit_secrets(v, f)
            }
            Some((&"*", rest)) => {
                if let Value::Array(items) = v {
                    items.iter_mut().for_each(|i| follow(i, scope, rest, f));
                }
            }
            Some((key, rest)) => {
                if let Some(child) = v.get_mut(*key) {
                    follow(child, scope, rest, f);
                }
            }
        }
    }
    for scope in secret_scopes(event_type) {
        follow(payload, scope, scope.path, f);
    }
}

/// Calls `f` on every encrypted value anywhere in `v`.
fn visit_envelopes(v: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    match v {
        Value::String(_) if is_envelope(v) => f(v),
        Value::Object(m) => m.values_mut().for_each(|c| visit_envelopes(c, f)),
        Value::Array(items) => items.iter_mut().for_each(|c| visit_envelopes(c, f)),
        _ => {}
    }
}

/// Whether any value in `v` is encrypted.
pub fn has_envelopes(v: &Value) -> bool {
    let mut v = v.clone();
    let mut found = false;
    visit_envelopes(&mut v, &mut |_| found = true);
    found
}

/// The master key and the node data keys in one store: implements the
/// repository's [`Sealing`] and decrypts for `Engine::load_node`.
pub struct Keyring {
    master: MasterKey,
    store: Arc<dyn LogStore>,
    /// Unwrapped data keys by their wrapped form (a data key never changes;
    /// which keys a node has is always read from the store).
    cache: Mutex<HashMap<String, Arc<DataKey>>>,
}

impl Keyring {
    pub fn new(master: MasterKey, store: Arc<dyn LogStore>) -> Arc<Self> {
        Arc::new(Keyring {
            master,
            store,
            cache: Mutex::new(HashMap::new()),
        })
    }

    pub fn master(&self) -> &MasterKey {
        &self.master
    }

    /// The data keys `owner` has now (normally one; none once deleted).
    pub async fn keys_of(&self, owner: &str) -> Result<Vec<Arc<DataKey>>, SecretsError> {
        let wrapped = self
            .store
            .claims_in_scope(DATA_KEY_SCOPE, Some(owner))
            .await?;
        let mut keys = vec![];
        for (w, _) in wrapped {
            if let Some(k) = self.cache.lock().expect("key cache").get(&w) {
                keys.push(k.clone());
                continue;
            }
            let k = Arc::new(self.master.unwrap(owner, &w)?);
            self.cache.lock().expect("key cache").insert(w, k.clone());
            keys.push(k);
        }
        Ok(keys)
    }

    /// Decrypts one encrypted value of `owner`.
    pub async fn open_value(&self, owner: &str, envelope: &str) -> Result<Value, SecretsError> {
        let (id, _) = parse_envelope(envelope)
            .ok_or_else(|| SecretsError::Corrupt("not an encrypted value".into()))?;
        let keys = self.keys_of(owner).await?;
        let key = keys
            .iter()
            .find(|k| k.id() == id)
            .ok_or_else(|| SecretsError::Shredded {
                owner: owner.to_string(),
                key_id: id.to_string(),
            })?;
        key.open(owner, envelope)
    }

    /// Decrypts every encrypted value of `owner`'s payloads in place; values
    /// whose key is gone stay encrypted. Returns how many stayed encrypted.
    pub async fn open_payloads(
        &self,
        owner: &str,
        payloads: &mut [&mut Value],
    ) -> Result<usize, SecretsError> {
        if !payloads.iter().any(|p| has_envelopes(p)) {
            return Ok(0);
        }
        let keys = self.keys_of(owner).await?;
        let mut left = 0;
        let mut failure = None;
        for p in payloads.iter_mut() {
            visit_envelopes(p, &mut |v| {
                let envelope = v.as_str().unwrap_or_default().to_string();
                let id = parse_envelope(&envelope).map(|(id, _)| id).unwrap_or("");
                match keys.iter().find(|k| k.id() == id) {
                    Some(k) => match k.open(owner, &envelope) {
                        Ok(clear) => *v = clear,
                        Err(e) => failure = Some(e),
                    },
                    None => left += 1,
                }
            });
        }
        if let Some(e) = failure {
            return Err(e);
        }
        if left > 0 {
            tracing::debug!(owner, left, "secrets of a deleted data key stay encrypted");
        }
        Ok(left)
    }
}

#[async_trait::async_trait]
impl Sealing for Keyring {
    async fn seal(
        &self,
        events: &[SerializedEvent],
    ) -> Result<(Vec<SerializedEvent>, Vec<ClaimOp>), StoreError> {
        let mut out = events.to_vec();
        let mut claims = vec![];
        let mut keys: HashMap<String, Arc<DataKey>> = HashMap::new();
        for e in out.iter_mut() {
            if e.aggregate_type != "Node" {
                continue;
            }
            let mut count = 0;
            visit_event_secrets(&e.event_type, &mut e.payload.clone(), &mut |_| count += 1);
            if count == 0 {
                continue;
            }
            let owner = e.aggregate_id.clone();
            let key = match keys.get(&owner) {
                Some(k) => k.clone(),
                None => {
                    let key = match self.keys_of(&owner).await?.into_iter().next() {
                        Some(k) => k,
                        None => {
                            let k = Arc::new(DataKey::generate());
                            claims.push(ClaimOp::Acquire {
                                scope: DATA_KEY_SCOPE.into(),
                                key: self.master.wrap(&owner, &k),
                                owner: owner.clone(),
                            });
                            k
                        }
                    };
                    keys.insert(owner.clone(), key.clone());
                    key
                }
            };
            visit_event_secrets(&e.event_type, &mut e.payload, &mut |v| {
                *v = Value::String(key.seal(&owner, v));
            });
        }
        Ok((out, claims))
    }

    async fn open(
        &self,
        mut events: Vec<SerializedEvent>,
    ) -> Result<Vec<SerializedEvent>, StoreError> {
        let mut by_owner: HashMap<String, Vec<&mut Value>> = HashMap::new();
        for e in events.iter_mut() {
            by_owner
                .entry(e.aggregate_id.clone())
                .or_default()
                .push(&mut e.payload);
        }
        for (owner, mut payloads) in by_owner {
            self.open_payloads(&owner, &mut payloads).await?;
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_round_trip_and_are_bound_to_their_node() {
        let k = DataKey::generate();
        let sealed = k.seal("n1", &json!("s3cret"));
        assert!(sealed.starts_with(ENVELOPE_PREFIX));
        assert!(!sealed.contains("s3cret"));
        assert_eq!(k.open("n1", &sealed).unwrap(), json!("s3cret"));
        assert!(k.open("n2", &sealed).is_err());
        let n = k.seal("n1", &json!(1234));
        assert_eq!(k.open("n1", &n).unwrap(), json!(1234));
    }

    #[test]
    fn data_keys_wrap_under_the_master_key_only() {
        let m = MasterKey::generate();
        let k = DataKey::generate();
        let w = m.wrap("n1", &k);
        assert_eq!(m.unwrap("n1", &w).unwrap().id(), k.id());
        assert!(m.unwrap("n2", &w).is_err());
        let other = MasterKey::generate();
        assert!(matches!(
            other.unwrap("n1", &w),
            Err(SecretsError::WrongMasterKey { .. })
        ));
    }

    #[test]
    fn only_secrets_in_scope_are_visited() {
        let mut p = json!({"TargetCreated": {"target": {
            "uuid": "u", "volume_id": "v", "properties": {
                "auth_password": "p", "auth_username": "u", "nested": {"discovery_auth_password": "d"},
                "empty_password": null
            },
            "extra": {"password": "shown by the API, not sealed"}
        }}});
        let mut seen = vec![];
        visit_event_secrets("TargetCreated", &mut p, &mut |v| seen.push(v.clone()));
        assert_eq!(seen, vec![json!("p"), json!("d")]);
        let mut none = vec![];
        visit_event_secrets("PortAdded", &mut p, &mut |v| none.push(v.clone()));
        assert!(none.is_empty());
    }

    #[test]
    fn a_master_key_file_is_created_0600_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/master.key");
        let (a, created) = MasterKey::load_or_create(&path).unwrap();
        assert!(created);
        let (b, created) = MasterKey::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(a.id(), b.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
