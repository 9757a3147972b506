//! Operators' own client: python-ironicclient's `baremetal` CLI from PyPI, in
//! a cached virtualenv (`IRONLEDGER_CLIENT_VENV`, default
//! `/var/tmp/ironledger-client-venv`), created with `python3 -m venv` and
//! `pip install python-ironicclient` only when missing or broken. A lock file
//! next to it makes concurrent test processes wait for one another.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const DEFAULT_VENV: &str = "/var/tmp/ironledger-client-venv";

pub fn venv_dir() -> PathBuf {
    std::env::var_os("IRONLEDGER_CLIENT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_VENV))
}

fn venv_works(venv: &Path) -> bool {
    Command::new(venv.join("bin/baremetal"))
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run_setup(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}\n(`python3 -m venv` needs Debian's python3-venv package; .ci/run installs it)",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `baremetal` executable, installing the client first if needed.
pub fn baremetal_bin() -> PathBuf {
    let venv = venv_dir();
    let bin = venv.join("bin/baremetal");
    if venv_works(&venv) {
        return bin;
    }
    std::fs::create_dir_all(venv.parent().expect("venv has a parent directory")).unwrap();
    let lock_path = venv.with_extension("lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("open {}: {e}", lock_path.display()));
    lock.lock().expect("lock the client venv");
    // Another process may have built it while we waited for the lock. A
    // half-built one (an interrupted run) does not pass `venv_works` and is
    // rebuilt. (Console scripts carry the venv's absolute path, so it is built
    // in place rather than elsewhere and moved.)
    if !venv_works(&venv) {
        eprintln!("installing python-ironicclient into {}", venv.display());
        let _ = std::fs::remove_dir_all(&venv);
        run_setup(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "python3 -m venv",
        );
        run_setup(
            Command::new(venv.join("bin/pip")).args([
                "install",
                "-q",
                "--disable-pip-version-check",
                "python-ironicclient",
            ]),
            "pip install python-ironicclient",
        );
        assert!(venv_works(&venv), "{} does not run", bin.display());
    }
    drop(lock);
    bin
}

/// `baremetal --os-endpoint <endpoint>` ready for its arguments, with
/// nothing from the caller's environment that could point the client
/// elsewhere (`OS_*`, a `clouds.yaml` under the real `HOME`): only `PATH`,
/// `HOME` (the test's own directory), a UTF-8 locale and Python's warnings
/// off; stdin closed.
pub fn baremetal_command(bin: &Path, endpoint: &str, home: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("--os-endpoint")
        .arg(endpoint)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("LANG", "C.UTF-8")
        .env("PYTHONWARNINGS", "ignore")
        .stdin(Stdio::null());
    cmd
}
