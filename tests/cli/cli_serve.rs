//! The binary as operators run it: `ironledger serve` on the embedded default,
//! `--help`, and a configuration error at start.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_ironledger");

/// Kills the server when the test ends, pass or fail.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `ironledger serve --port 0` and returns it with the address it printed.
fn serve(data_dir: &std::path::Path, extra: &[&str]) -> (Server, String) {
    let mut child = Command::new(BIN)
        .args(extra)
        .args(["serve", "--port", "0"])
        .env("IRONLEDGER_DATA_DIR", data_dir)
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ironledger");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the listening line");
    let addr = line
        .trim()
        .strip_prefix("ironledger listening on ")
        .expect(&line)
        .to_string();
    (Server(child), addr)
}

fn get(url: &str) -> (u16, serde_json::Value) {
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", url])
        .output()
        .expect("curl");
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (
        code.parse().unwrap(),
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn serve_starts_on_the_embedded_store_with_health() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, addr) = serve(dir.path(), &[]);
    assert!(
        addr.starts_with("http://127.0.0.1:"),
        "listens on loopback by default: {addr}"
    );
    let (code, body) = get(&format!("{addr}/health"));
    assert_eq!(code, 200);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["store"], "sqlite");
    assert_eq!(body["head"], 0);
    // At the head of the (empty) log, the read models went inline at once.
    assert_eq!(body["projections"]["nodes"], "inline");
    assert!(
        dir.path().join("ironledger.db").exists(),
        "the SQLite file lives in the data directory"
    );
}

#[test]
fn database_is_chosen_from_an_ironic_conf() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("from-conf.db");
    let conf = dir.path().join("ironic.conf");
    std::fs::write(
        &conf,
        format!(
            "[database]\nconnection = sqlite:///{}\n[pxe]\nunknown_here = 1\n",
            db.display()
        ),
    )
    .unwrap();
    let (_server, addr) = serve(dir.path(), &["--config-file", conf.to_str().unwrap()]);
    let (code, _) = get(&format!("{addr}/health"));
    assert_eq!(code, 200);
    assert!(db.exists(), "[database] connection was used");
}

#[test]
fn help_explains_and_bad_config_fails_clearly() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for word in [
        "serve",
        "--config-file",
        "--database-url",
        "--data-dir",
        "[database] connection",
    ] {
        assert!(help.contains(word), "--help mentions {word}");
    }

    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("bad.conf");
    std::fs::write(&conf, "[api]\nport = seventy\n").unwrap();
    let out = Command::new(BIN)
        .args(["--config-file", conf.to_str().unwrap(), "serve"])
        .env("IRONLEDGER_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("invalid value for [api] port"), "{err}");

    let out = Command::new(BIN)
        .args([
            "--database-url",
            "mysql+pymysql://root@localhost/ironic",
            "serve",
        ])
        .env("IRONLEDGER_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("[database] connection"), "{err}");
}

/// The embedded store takes one server: a second `serve` on the same file
/// would work the same nodes twice (its leases live in the process). It is
/// refused with a message that says what to do; the first keeps serving, and
/// once it is gone another may start.
#[test]
fn a_second_server_on_the_same_sqlite_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (first, addr) = serve(dir.path(), &[]);
    let out = Command::new(BIN)
        .args(["serve", "--port", "0"])
        .env("IRONLEDGER_DATA_DIR", dir.path())
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("another `ironledger serve` is running on")
            && err.contains("run several on PostgreSQL"),
        "{err}"
    );
    assert_eq!(get(&format!("{addr}/health")).0, 200);
    drop(first);
    let (_second, addr) = serve(dir.path(), &[]);
    assert_eq!(get(&format!("{addr}/health")).0, 200);
}

/// `ironledger config` shows every option in effect with its source, masks
/// secrets, and lists what it ignores; the options ironledger uses that
/// Ironic's `ironic.conf` carries (`[DEFAULT] host`, `[conductor]
/// deploy_kernel`/`deploy_ramdisk`) are known, not warned about.
#[test]
fn config_shows_the_effective_options_and_their_sources() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("ironic.conf");
    std::fs::write(
        &conf,
        "[DEFAULT]\nhost = conductor-7\ndebug = True\n\
         [conductor]\ndeploy_kernel = http://images/k\ndeploy_ramdisk = http://images/r\n\
         [cinder]\nendpoint_override = http://127.0.0.1:8776/v3/abc\nauth_type = token\ntoken = Tok-Secret-3141\n\
         [pxe]\nipxe_timeout = 30\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args([
            "--config-file",
            conf.to_str().unwrap(),
            "config",
            "-o",
            "json",
        ])
        .env("IRONLEDGER_DATA_DIR", dir.path())
        .env("IRONLEDGER__API__PORT", "7001")
        .env("DATABASE_URL", "postgresql://u:Pw-Secret-2718@db/ironic")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    for secret in ["Tok-Secret-3141", "Pw-Secret-2718"] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} shown"
        );
    }
    for option in ["host", "deploy_kernel", "deploy_ramdisk", "debug"] {
        assert!(
            !stderr.contains(&format!("option=\"{option}\"")),
            "{option} warned about: {stderr}"
        );
    }
    assert!(stderr.contains("ipxe_timeout"), "{stderr}");
    let shown: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let option = |section: &str, name: &str| -> serde_json::Value {
        shown["options"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["section"] == section && o["option"] == name)
            .unwrap_or_else(|| panic!("[{section}] {name} missing from {stdout}"))
            .clone()
    };
    let conf_text = conf.to_str().unwrap();
    assert_eq!(option("DEFAULT", "host")["value"], "conductor-7");
    assert_eq!(option("DEFAULT", "host")["source"], conf_text);
    assert_eq!(
        option("conductor", "deploy_kernel")["value"],
        "http://images/k"
    );
    assert_eq!(option("api", "port")["value"], "7001");
    assert_eq!(
        option("api", "port")["source"],
        "environment IRONLEDGER__API__PORT"
    );
    assert_eq!(option("api", "host_ip")["value"], "127.0.0.1");
    assert_eq!(option("api", "host_ip")["source"], serde_json::Value::Null);
    assert_eq!(option("cinder", "token")["value"], "******");
    assert_eq!(
        option("database", "connection")["value"],
        "postgresql://u:***@db/ironic"
    );
    assert_eq!(
        shown["ignored"],
        serde_json::json!([{"section": "pxe", "option": "ipxe_timeout", "source": conf_text}])
    );

    // The text form says the same, a value and its source per line.
    let out = Command::new(BIN)
        .args(["--config-file", conf.to_str().unwrap(), "config"])
        .env("IRONLEDGER_DATA_DIR", dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("[conductor]\n"), "{text}");
    let host = text.lines().find(|l| l.starts_with("host = ")).unwrap();
    assert!(
        host.contains("conductor-7") && host.ends_with(&format!("# {conf_text}")),
        "{host}"
    );
    assert!(text.contains("#   [pxe] ipxe_timeout"), "{text}");
}
