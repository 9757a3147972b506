//! `baremetal node history list/get` (python-ironicclient, the operators'
//! client) against `ironledger serve`, and the history API's pagination
//! followed link by link.
//!
//! The client comes from the virtualenv `tests/cli/cli_compat.rs` builds
//! (`IRONLEDGER_CLIENT_VENV`, default `/var/tmp/ironledger-client-venv`);
//! it is built here the same way if missing.

use crate::common;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The `baremetal` executable (the shared cached virtualenv).
fn baremetal() -> PathBuf {
    common::client::baremetal_bin()
}

struct Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ironledger"))
        .args(["serve", "--port", "0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env_remove("DATABASE_URL")
        .env_remove("IRONLEDGER_DATA_DIR")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("server.log")).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("ironledger listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    Server {
        child,
        url,
        _dir: dir,
    }
}

fn bm(server: &Server, args: &[&str]) -> String {
    let out = Command::new(baremetal())
        .args(["--os-endpoint", &server.url])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "baremetal {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn bm_json(server: &Server, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-f", "json"]);
    serde_json::from_str(&bm(server, &all)).unwrap()
}

#[test]
fn baremetal_node_history_list_and_get() {
    let server = serve();
    let node = bm_json(
        &server,
        &[
            "node",
            "create",
            "--driver",
            "fake-hardware",
            "--name",
            "hist-0",
            "--storage-interface",
            "cinder",
            "--property",
            "capabilities=iscsi_boot:True",
        ],
    );
    let uuid = node["uuid"].as_str().unwrap().to_string();
    bm(&server, &["node", "manage", "hist-0", "--wait", "30"]);
    bm(&server, &["node", "provide", "hist-0", "--wait", "30"]);
    bm(
        &server,
        &[
            "node",
            "maintenance",
            "set",
            "hist-0",
            "--reason",
            "fan noise",
        ],
    );
    bm(&server, &["node", "maintenance", "unset", "hist-0"]);
    // A node the guide would deploy (a port, a connector, a boot volume),
    // on a server with no Block Storage endpoint: the deploy is accepted
    // and fails once it needs Cinder (an ERROR entry).
    bm(
        &server,
        &["port", "create", "52:54:00:aa:bb:01", "--node", &uuid],
    );
    bm(
        &server,
        &[
            "volume",
            "connector",
            "create",
            "--node",
            &uuid,
            "--type",
            "iqn",
            "--connector-id",
            "iqn.2024-01.org.example:hist-0",
        ],
    );
    bm(
        &server,
        &[
            "volume",
            "target",
            "create",
            "--node",
            &uuid,
            "--type",
            "iscsi",
            "--boot-index",
            "0",
            "--volume-id",
            "vol-hist-0",
        ],
    );
    bm(&server, &["node", "deploy", "hist-0"]);
    for _ in 0..100 {
        let state = bm_json(
            &server,
            &["node", "show", "hist-0", "-c", "provision_state"],
        );
        if state["provision_state"] == "deploy failed" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    let list = bm_json(&server, &["node", "history", "list", "hist-0"]);
    let list = list.as_array().unwrap();
    let texts: Vec<&str> = list.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert!(texts[0].starts_with("Node enrolled"), "{texts:?}");
    assert!(
        texts.contains(&"Maintenance mode set: fan noise"),
        "{texts:?}"
    );
    for e in list {
        let keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["created_at", "event", "severity", "uuid"],
            "standard fields only"
        );
    }
    let error = list
        .iter()
        .find(|e| e["severity"] == "ERROR")
        .expect("the failed deploy is an ERROR entry");
    let shown = bm_json(&server, &["node", "show", "hist-0"]);
    assert_eq!(error["event"], shown["last_error"]);
    assert_eq!(shown["provision_state"], "deploy failed");

    // --long: the detail fields (at 1.78, no project/state/duration values).
    let long = bm_json(&server, &["node", "history", "list", "hist-0", "--long"]);
    let first = &long.as_array().unwrap()[0];
    assert_eq!(first["event_type"], "provisioning");
    assert!(first["conductor"].as_str().is_some_and(|c| !c.is_empty()));
    assert_eq!(long.as_array().unwrap().len(), list.len());

    // get: always the detail form.
    let one = bm_json(
        &server,
        &[
            "node",
            "history",
            "get",
            &uuid,
            error["uuid"].as_str().unwrap(),
        ],
    );
    assert_eq!(one["severity"], "ERROR");
    assert_eq!(one["event_type"], "provisioning");
    assert_eq!(one["uuid"], error["uuid"]);

    // Pagination: following `next` walks the whole history, nothing pruned.
    let get = |url: &str| -> Value {
        let out = Command::new("curl")
            .args(["-sf", "-H", "X-OpenStack-Ironic-API-Version: 1.78", url])
            .output()
            .unwrap();
        assert!(out.status.success(), "GET {url}");
        serde_json::from_slice(&out.stdout).unwrap()
    };
    for detail in ["false", "true"] {
        let mut url = format!(
            "{}/v1/nodes/hist-0/history?limit=2&detail={detail}",
            server.url
        );
        let mut seen = vec![];
        loop {
            let page = get(&url);
            let items = page["history"]
                .as_array()
                .unwrap_or_else(|| panic!("{page}"));
            for e in items {
                assert_eq!(e.get("event_type").is_some(), detail == "true", "{e}");
                seen.push(e["uuid"].clone());
            }
            match page["next"].as_str() {
                Some(next) => url = next.to_string(),
                None => break,
            }
        }
        let all: Vec<Value> = list.iter().map(|e| e["uuid"].clone()).collect();
        assert_eq!(seen, all, "detail={detail}");
    }
}
