//! The HTTP boot root (`[deploy] http_root`), laid out like Ironic's:
//!
//! ```text
//! <root>/boot.ipxe                      the chain script (same for every machine)
//! <root>/<node uuid>/config             the node's boot-from-volume script
//! <root>/pxelinux.cfg/<mac-with-dashes> -> ../<node uuid>/config   (one per PXE-enabled port)
//! ```
//!
//! Files are written atomically (a temporary file in the same directory, then
//! `rename`), so a machine never fetches half a script; node files hold CHAP
//! secrets, so they are created `0600` in `0700` directories (the server that
//! serves them runs as the same user). Writing the same content again changes
//! nothing on disk, which makes the deploy step safe to repeat after a crash.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{symlink, DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::ipxe::{mac_file_name, render_boot_script};

pub const MAC_DIR: &str = "pxelinux.cfg";

#[derive(Debug, Clone)]
pub struct HttpRoot {
    root: PathBuf,
}

fn mkdir_private(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

/// Writes `content` to `path` atomically with mode `mode`, unless the file
/// already holds exactly that content. Returns whether it wrote.
pub fn write_atomic(path: &Path, content: &[u8], mode: u32) -> io::Result<bool> {
    if fs::read(path).ok().as_deref() == Some(content) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
        return Ok(false);
    }
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("no parent directory"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("f"),
        std::process::id()
    ));
    {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(true)
}

impl HttpRoot {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        HttpRoot { root: root.into() }
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn node_dir(&self, node_uuid: &str) -> PathBuf {
        self.root.join(node_uuid)
    }

    pub fn config_path(&self, node_uuid: &str) -> PathBuf {
        self.node_dir(node_uuid).join("config")
    }

    pub fn mac_path(&self, mac: &str) -> PathBuf {
        self.root.join(MAC_DIR).join(mac_file_name(mac))
    }

    /// Creates the root and writes `boot.ipxe` (world-readable: no secrets).
    pub fn prepare(&self) -> io::Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&self.root)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(self.root.join(MAC_DIR))?;
        write_atomic(
            &self.root.join("boot.ipxe"),
            render_boot_script().as_bytes(),
            0o644,
        )?;
        Ok(())
    }

    /// Writes a node's script and points each MAC (and only those) at it.
    /// Idempotent.
    pub fn write_node(&self, node_uuid: &str, script: &str, macs: &[String]) -> io::Result<()> {
        self.prepare()?;
        mkdir_private(&self.node_dir(node_uuid))?;
        write_atomic(&self.config_path(node_uuid), script.as_bytes(), 0o600)?;
        self.link_node(node_uuid, macs)
    }

    /// Points exactly `macs` at the node's script: links are made for new MACs
    /// and removed for MACs the node no longer has (a port deleted from a
    /// deployed node must not keep booting its volume). Idempotent.
    pub fn link_node(&self, node_uuid: &str, macs: &[String]) -> io::Result<()> {
        let target = PathBuf::from("..").join(node_uuid).join("config");
        let keep: Vec<PathBuf> = macs.iter().map(|m| self.mac_path(m)).collect();
        if let Ok(entries) = fs::read_dir(self.root.join(MAC_DIR)) {
            for e in entries.flatten() {
                if fs::read_link(e.path()).ok().as_deref() == Some(target.as_path())
                    && !keep.contains(&e.path())
                {
                    fs::remove_file(e.path())?;
                }
            }
        }
        for mac in macs {
            let link = self.mac_path(mac);
            if fs::read_link(&link).ok().as_deref() == Some(target.as_path()) {
                continue;
            }
            let tmp = link.with_extension(format!("tmp-{}", std::process::id()));
            let _ = fs::remove_file(&tmp);
            symlink(&target, &tmp)?;
            fs::rename(&tmp, &link)?;
        }
        Ok(())
    }

    /// Removes a node's script and MAC links (also links to it under MACs it
    /// no longer has). Idempotent.
    pub fn remove_node(&self, node_uuid: &str) -> io::Result<()> {
        let target = PathBuf::from("..").join(node_uuid).join("config");
        if let Ok(entries) = fs::read_dir(self.root.join(MAC_DIR)) {
            for e in entries.flatten() {
                if fs::read_link(e.path()).ok().as_deref() == Some(target.as_path()) {
                    fs::remove_file(e.path())?;
                }
            }
        }
        match fs::remove_dir_all(self.node_dir(node_uuid)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Whether the node has a script on disk.
    pub fn has_node(&self, node_uuid: &str) -> bool {
        self.config_path(node_uuid).exists()
    }

    /// Resolves a request path under the root for serving, refusing anything
    /// that would leave it (`..`, absolute paths, symlinks pointing outside).
    pub fn resolve(&self, request: &str) -> Option<PathBuf> {
        let rel = Path::new(request.trim_start_matches('/'));
        if rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return None;
        }
        let full = fs::canonicalize(self.root.join(rel)).ok()?;
        let root = fs::canonicalize(&self.root).ok()?;
        (full.starts_with(&root) && full.is_file()).then_some(full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_links_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let root = HttpRoot::new(dir.path().join("httpboot"));
        let node = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123";
        root.write_node(node, "#!ipxe\nsecret\n", &["52:54:00:AB:CD:01".into()])
            .unwrap();
        let cfg = root.config_path(node);
        assert_eq!(
            fs::metadata(&cfg).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(root.node_dir(node))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        let link = root.mac_path("52:54:00:ab:cd:01");
        assert_eq!(fs::read_to_string(&link).unwrap(), "#!ipxe\nsecret\n");
        assert!(link.ends_with("pxelinux.cfg/52-54-00-ab-cd-01"));
        assert!(root.path().join("boot.ipxe").exists());
        assert_eq!(
            root.resolve("pxelinux.cfg/52-54-00-ab-cd-01"),
            Some(fs::canonicalize(&cfg).unwrap())
        );
        assert_eq!(root.resolve("../etc/passwd"), None);
        assert_eq!(root.resolve("/etc/passwd"), None);

        // Same content: nothing rewritten.
        let before = fs::metadata(&cfg).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(10));
        root.write_node(node, "#!ipxe\nsecret\n", &["52:54:00:ab:cd:01".into()])
            .unwrap();
        assert_eq!(fs::metadata(&cfg).unwrap().modified().unwrap(), before);

        root.remove_node(node).unwrap();
        assert!(!cfg.exists());
        assert!(fs::symlink_metadata(&link).is_err());
        assert!(root.path().join("boot.ipxe").exists(), "boot.ipxe stays");
        root.remove_node(node).unwrap();
    }
}
