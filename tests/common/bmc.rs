//! The project's BMC rigs (`tests/rigs/bmc/`) as the tests start them: one
//! emulator per test (its own rig directory and loopback port), read back
//! through its own state — the Redfish resource, its access log, the chassis
//! files of `ipmi_sim` — and stopped when dropped. Faults can be injected
//! into the Redfish emulator while a client runs ([`Rig::set_faults`]).

use ironledger::effects::bmc::poll::PowerWait;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const PASSWORD: &str = "rig-pw-7c1e9b";

pub fn rigs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rigs/bmc")
}

pub fn free_port(udp: bool) -> u16 {
    if udp {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    } else {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }
}

/// One emulator of a test's own; stopped when dropped.
pub struct Rig {
    pub dir: tempfile::TempDir,
    pub stop: &'static str,
    /// The last line the start script printed (URL, or host:port).
    pub addr: String,
    pub port: u16,
}

impl Rig {
    pub fn start(script: &str, stop: &'static str, udp: bool, env: &[(&str, String)]) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port(udp);
        let mut cmd = Command::new(rigs().join(script));
        cmd.env("IRONLEDGER_BMC_RIG", dir.path());
        let port_var = if udp {
            "IRONLEDGER_IPMI_PORT"
        } else {
            "IRONLEDGER_REDFISH_PORT"
        };
        cmd.env(port_var, port.to_string());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run the rig's start script");
        assert!(
            out.status.success(),
            "{script} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let addr = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap()
            .trim()
            .to_string();
        Rig {
            dir,
            stop,
            addr,
            port,
        }
    }

    pub fn redfish(systems: u32, sessions: bool, tls: bool) -> Rig {
        Rig::start(
            "redfish-start.sh",
            "redfish-stop.sh",
            false,
            &[
                ("IRONLEDGER_REDFISH_SYSTEMS", systems.to_string()),
                ("IRONLEDGER_REDFISH_PASSWORD", PASSWORD.into()),
                (
                    "IRONLEDGER_REDFISH_SESSIONS",
                    if sessions { "1" } else { "0" }.into(),
                ),
                ("IRONLEDGER_REDFISH_TLS", if tls { "1" } else { "0" }.into()),
            ],
        )
    }

    /// A Redfish emulator (basic auth, one system per `systems`) whose power
    /// changes land after 1–2 s instead of 1–11 s: for tests that power
    /// machines many times.
    pub fn redfish_quick(systems: u32) -> Rig {
        Rig::start(
            "redfish-start.sh",
            "redfish-stop.sh",
            false,
            &[
                ("IRONLEDGER_REDFISH_SYSTEMS", systems.to_string()),
                ("IRONLEDGER_REDFISH_PASSWORD", PASSWORD.into()),
                ("IRONLEDGER_REDFISH_MAX_DELAY", "2".into()),
            ],
        )
    }

    /// The Redfish calls in the access log: `METHOD path body` each, the
    /// body compact (`-` when none).
    pub fn calls(&self) -> Vec<String> {
        self.access_log()
            .iter()
            .map(|r| {
                format!(
                    "{} {} {}",
                    r["method"].as_str().unwrap_or_default(),
                    r["path"].as_str().unwrap_or_default(),
                    if r["body"].is_null() {
                        "-".to_string()
                    } else {
                        r["body"].to_string()
                    }
                )
            })
            .collect()
    }

    pub fn ipmi() -> Rig {
        Rig::start(
            "ipmi-start.sh",
            "ipmi-stop.sh",
            true,
            &[("IRONLEDGER_IPMI_PASSWORD", PASSWORD.into())],
        )
    }

    pub fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// The emulator's access log, one JSON object per request.
    pub fn access_log(&self) -> Vec<Value> {
        self.file("access.jsonl")
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Replaces the Redfish emulator's injected faults (see
    /// `redfish_rig.py`): `[]` clears them.
    pub fn set_faults(&self, rules: Value) {
        std::fs::write(self.dir.path().join("faults.json"), rules.to_string()).unwrap();
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// A system's resource read straight from the emulator.
    pub async fn system(&self, n: u32) -> Value {
        let mut b = reqwest::Client::builder();
        if self.cert().exists() {
            b = b.add_root_certificate(
                reqwest::Certificate::from_pem(&std::fs::read(self.cert()).unwrap()).unwrap(),
            );
        }
        b.build()
            .unwrap()
            .get(format!("{}/redfish/v1/Systems/{}", self.addr, system_id(n)))
            .basic_auth("admin", Some(PASSWORD))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = Command::new(rigs().join(self.stop))
            .env("IRONLEDGER_BMC_RIG", self.dir.path())
            .status();
    }
}

pub fn system_id(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// sushy-tools applies a reset after 1–11 s.
pub fn wait() -> PowerWait {
    PowerWait {
        timeout: Duration::from_secs(30),
        interval: Duration::from_millis(300),
    }
}

/// Logs of the calling thread, at every level, into a buffer.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);
impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}
impl Captured {
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let sub = tracing_subscriber::fmt()
            .with_writer(self.clone())
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_default(sub)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}
