//! `ironledger serve` as a child of the test: started on a directory of the
//! test's own (its `ironic.conf` there, its data dir that directory, a free
//! port), and killed when dropped, pass or fail.
//!
//! What differs between the tests that start one (the configuration, the
//! log filter, a crash point, whether the log is kept) is a parameter; the
//! tests name their own way of starting it (`Server::start`) in a trait of
//! their own.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_ironledger");

/// How a server runs, besides its `ironic.conf`.
#[derive(Default)]
pub struct Options<'a> {
    /// `RUST_LOG` of the server; `None` removes it (the server's own default).
    pub rust_log: Option<&'a str>,
    /// `IRONLEDGER_TEST_CRASH_AT`: the step at which the server kills itself
    /// (`None` removes it).
    pub crash_at: Option<&'a str>,
    /// Keeps the server's stderr, its log, in [`Server::log`]; `false`
    /// discards it.
    pub keep_log: bool,
}

/// A running `ironledger serve`; killed when dropped.
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT`, as the server printed it.
    pub base: String,
    /// `<dir>/ironledger.log`: the server's stderr when
    /// [`Options::keep_log`] was set.
    pub log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Writes `conf` to `<dir>/ironic.conf` and starts
    /// `ironledger --config-file <dir>/ironic.conf serve --port 0` with
    /// `IRONLEDGER_DATA_DIR=<dir>` and no `DATABASE_URL` (the database is
    /// `conf`'s, else the embedded default in `dir`); returns once it
    /// listens.
    pub fn spawn(dir: &Path, conf: &str, options: Options) -> Server {
        let conf_path = dir.join("ironic.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let log = dir.join("ironledger.log");
        let mut cmd = Command::new(BIN);
        cmd.args([
            "--config-file",
            conf_path.to_str().unwrap(),
            "serve",
            "--port",
            "0",
        ])
        .env_remove("DATABASE_URL")
        .env("IRONLEDGER_DATA_DIR", dir)
        .stdout(Stdio::piped());
        match options.rust_log {
            Some(filter) => cmd.env("RUST_LOG", filter),
            None => cmd.env_remove("RUST_LOG"),
        };
        match options.crash_at {
            Some(point) => cmd.env("IRONLEDGER_TEST_CRASH_AT", point),
            None => cmd.env_remove("IRONLEDGER_TEST_CRASH_AT"),
        };
        if options.keep_log {
            cmd.stderr(std::fs::File::create(&log).unwrap());
        } else {
            cmd.stderr(Stdio::null());
        }
        let mut child = cmd.spawn().expect("start ironledger");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("ironledger listening on ")
            .unwrap_or_else(|| panic!("server did not start: {line:?}"))
            .to_string();
        Server { child, base, log }
    }

    /// The log's lines, each a JSON object (`[DEFAULT] use_json = true`,
    /// [`Options::keep_log`]).
    pub fn log_lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    /// Waits for the process to die (it killed itself at its crash point,
    /// [`Options::crash_at`]).
    pub fn wait_for_crash(&mut self, point: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    !status.success(),
                    "the server exited cleanly instead of crashing at {point}"
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the server never reached crash point {point}");
    }
}
