//! The boot-from-volume guide (`../shared/reference/boot-from-volume.rst`),
//! verbatim, through operators' own client: python-ironicclient's `baremetal`
//! CLI from PyPI against a freshly started `ironledger serve`.
//!
//! The client lives in a cached virtualenv (`IRONLEDGER_CLIENT_VENV`, default
//! `/var/tmp/ironledger-client-venv`), created with `python3 -m venv` and
//! `pip install python-ironicclient` only when it is missing or broken; a lock
//! file next to it makes concurrent test processes wait for one another.
//!
//! Every command runs as `baremetal --os-endpoint http://127.0.0.1:PORT …`,
//! with the guide's `--os-baremetal-api-version 1.33` where the guide has it,
//! and `-f json` where the command can print, so the assertions read the parsed
//! output. Error cases assert the CLI's stderr text — the same text the real
//! Ironic produces for the same command (recorded with
//! `../shared/peers/ironic`; see also `tests/api/differential.rs`). Commands that
//! expect a 409 pass `--max-retries 0` (the CLI retries 409s otherwise).
//!
//! `node deploy` goes through the deploy process manager to `active` (the
//! node has the PXE port iPXE needs, an `external` boot target, no
//! `image_source`), and `node undeploy` back to `available`.

use crate::common;

use common::client::baremetal_bin;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CONFIG: &str = "[DEFAULT]\nenabled_storage_interfaces = cinder,external,noop\n";
const VOLUME_UUID: &str = "04452bed-5367-4202-8bf5-de4335ac56d2";
const VOLUME_UUID_2: &str = "7bb0e8e4-0a9c-4e4b-a1f8-4a8d3a0b3c11";

// ---------------------------------------------------------------------------
// The client's virtualenv.

// ---------------------------------------------------------------------------
// The server.

/// Kills the server when the test ends, pass or fail.
struct Server {
    /// None when the test runs against an external server (the oracle mode).
    child: Option<Child>,
    dir: tempfile::TempDir,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Server {
    fn start() -> Server {
        Self::start_with(CONFIG)
    }

    /// Starts `ironledger serve` with `config` as its ironic.conf.
    fn start_with(config: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("ironic.conf");
        std::fs::write(&conf, config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_ironledger"))
            .arg("--config-file")
            .arg(&conf)
            .args(["serve", "--port", "0"])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env_remove("DATABASE_URL")
            .env_remove("IRONLEDGER_DATA_DIR")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("server.log")).unwrap())
            .spawn()
            .expect("start ironledger");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("read the listening line");
        let Some(url) = line.trim().strip_prefix("ironledger listening on ") else {
            let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
            panic!("ironledger did not start: {line:?}\n{log}");
        };
        let url = url.to_string();
        Server {
            child: Some(child),
            dir,
            url,
        }
    }

    /// Oracle mode: `IRONLEDGER_CLI_COMPAT_AGAINST=http://127.0.0.1:PORT` runs the
    /// test against that server instead — the real Ironic with a fresh database
    /// (`PEER=/tmp/x IRONIC_PORT=6386 ../shared/peers/ironic/start-ironic.sh`),
    /// which shows that every expectation below is Ironic's own behaviour.
    fn external() -> Option<Server> {
        let url = std::env::var("IRONLEDGER_CLI_COMPAT_AGAINST").ok()?;
        Some(Server {
            child: None,
            dir: tempfile::tempdir().unwrap(),
            url,
        })
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

// ---------------------------------------------------------------------------
// Running the CLI.

struct Cli {
    bin: PathBuf,
    server: Server,
    commands: usize,
    /// Failed expectations so far: the test goes on after one (where later
    /// steps do not depend on it) so that a run reports every difference.
    failures: Vec<String>,
}

struct Out {
    line: String,
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Out {
    fn describe(&self) -> String {
        format!(
            "$ {}\nexit: {}\nstdout:\n{}\nstderr:\n{}",
            self.line,
            if self.ok { "0" } else { "non-zero" },
            self.stdout,
            self.stderr
        )
    }
}

impl Cli {
    /// Runs `baremetal --os-endpoint URL <args>`.
    fn run(&mut self, args: &[&str]) -> Out {
        self.commands += 1;
        let output =
            common::client::baremetal_command(&self.bin, &self.server.url, self.server.dir.path())
                .args(args)
                .output()
                .expect("run baremetal");
        Out {
            line: format!(
                "baremetal --os-endpoint {} {}",
                self.server.url,
                args.join(" ")
            ),
            ok: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Records a failed expectation about a command.
    fn fail(&mut self, out: &Out, why: &str) {
        self.failures.push(format!("{why}\n{}", out.describe()));
    }

    /// Records a failed expectation about a value.
    fn check(&mut self, cond: bool, what: &str, got: &Value) {
        if !cond {
            self.failures.push(format!(
                "{what}; got:\n{}",
                serde_json::to_string_pretty(got).unwrap()
            ));
        }
    }

    /// A string the rest of the test depends on: stops the test without it.
    fn need(&self, v: &Value, what: &str) -> String {
        match v.as_str() {
            Some(s) => s.to_string(),
            None => self.finish(Some(&format!("no {what} in {v}"))),
        }
    }

    /// Ends the test: passes when nothing failed, else reports every failure.
    fn finish(&self, fatal: Option<&str>) -> ! {
        let mut all = self.failures.clone();
        if let Some(f) = fatal {
            all.push(format!("FATAL (the test cannot go on): {f}"));
        }
        if all.is_empty() {
            panic!("finish() is only called on failure");
        }
        panic!(
            "{} failed expectation(s):\n\n{}\n\n--- ironledger log (tail) ---\n{}",
            all.len(),
            all.join("\n\n"),
            self.server.log_tail()
        )
    }

    /// Runs a command that must succeed; returns its stdout.
    fn ok(&mut self, args: &[&str]) -> String {
        let out = self.run(args);
        if !out.ok {
            self.fail(&out, "the command failed");
        }
        out.stdout
    }

    /// Runs a command that must succeed and print JSON (`-f json`).
    fn json(&mut self, args: &[&str]) -> Value {
        let out = self.run(args);
        if !out.ok {
            self.fail(&out, "the command failed");
            return Value::Null;
        }
        match serde_json::from_str(&out.stdout) {
            Ok(v) => v,
            Err(e) => {
                self.fail(&out, &format!("stdout is not JSON: {e}"));
                Value::Null
            }
        }
    }

    /// Runs a command that must fail with `text` on stderr.
    fn err(&mut self, args: &[&str], text: &str) -> Out {
        let out = self.run(args);
        if out.ok {
            self.fail(
                &out,
                &format!("the command succeeded; expected an error with {text:?}"),
            );
        } else if !out.stderr.contains(text) {
            self.fail(&out, &format!("stderr lacks {text:?}"));
        }
        out
    }

    fn show_node(&mut self, node: &str) -> Value {
        self.json(&["node", "show", node, "-f", "json"])
    }

    /// Shows the node until its power state is `state` (at most 30 s; Ironic
    /// applies power actions asynchronously).
    fn wait_power(&mut self, node: &str, state: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let shown = self.show_node(node);
            if shown["power_state"] == state || Instant::now() > deadline {
                return shown;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Shows the node until its provision state is `state` (at most 60 s).
    fn wait_for(&mut self, node: &str, state: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let shown = self.show_node(node);
            if shown["provision_state"] == state || Instant::now() > deadline {
                return shown;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// Two argument lists, one after the other.
fn cat<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<&'a str> {
    a.iter().chain(b).copied().collect()
}

fn field<'a>(v: &'a Value, key: &str) -> &'a Value {
    // `-f json` on list commands prints column names as keys (`UUID`,
    // `Node UUID`), on show commands field names; accept both spellings.
    let human = key
        .split('_')
        .map(|w| match w {
            "uuid" => "UUID".to_string(),
            "id" => "ID".to_string(),
            w => {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                    .unwrap_or_default()
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    v.get(key).or_else(|| v.get(&human)).unwrap_or(&Value::Null)
}

// ---------------------------------------------------------------------------

#[test]
fn boot_from_volume_guide_through_the_baremetal_cli() {
    let started = Instant::now();
    let bin = baremetal_bin();
    let installed = started.elapsed();
    let server = Server::external().unwrap_or_else(Server::start);
    // Ironic's fake deploy interface reaches `active` at once.
    let oracle = server.child.is_none();
    let mut cli = Cli {
        bin,
        server,
        commands: 0,
        failures: vec![],
    };
    let v133 = ["--os-baremetal-api-version", "1.33"];

    // --- a node for the `cinder` storage interface ------------------------------
    let node = cli.json(&[
        "node",
        "create",
        "--driver",
        "fake-hardware",
        "--name",
        "bfv-cinder",
        "-f",
        "json",
    ]);
    let n = cli.need(&node["uuid"], "node uuid");
    cli.check(
        node["provision_state"] == "enroll",
        "a new node is in enroll",
        &node,
    );
    cli.check(node["driver"] == "fake-hardware", "driver", &node);
    cli.check(
        node["storage_interface"] == "noop",
        "the default storage interface is noop",
        &node,
    );
    cli.check(node["name"] == "bfv-cinder", "name", &node);

    // Storage Interface: `openstack --os-baremetal-api-version 1.33 baremetal node set --storage-interface cinder $NODE_UUID`
    let out = cli.ok(&cat(
        &v133,
        &["node", "set", "--storage-interface", "cinder", &n],
    ));
    assert_eq!(out.trim(), "", "node set prints nothing");
    let shown = cli.show_node(&n);
    cli.check(
        shown["storage_interface"] == "cinder",
        "storage_interface is cinder",
        &shown,
    );

    // iSCSI Configuration: `node set --property capabilities=iscsi_boot:True`
    cli.ok(&cat(
        &v133,
        &[
            "node",
            "set",
            "--property",
            "capabilities=iscsi_boot:True",
            &n,
        ],
    ));
    let shown = cli.show_node(&n);
    cli.check(
        shown["properties"]["capabilities"] == "iscsi_boot:True",
        "capabilities is the string iscsi_boot:True",
        &shown,
    );

    // `volume connector create --node $NODE_UUID --type iqn --connector-id iqn.2017-08.org.openstack.$NODE_UUID`
    let iqn = format!("iqn.2017-08.org.openstack.{n}");
    let conn = cli.json(&cat(
        &v133,
        &[
            "volume",
            "connector",
            "create",
            "--node",
            &n,
            "--type",
            "iqn",
            "--connector-id",
            &iqn,
            "-f",
            "json",
        ],
    ));
    let c = cli.need(&conn["uuid"], "connector uuid");
    cli.check(
        conn["node_uuid"] == json!(n)
            && conn["type"] == "iqn"
            && conn["connector_id"] == json!(iqn),
        "the connector as created",
        &conn,
    );
    cli.check(conn["extra"] == json!({}), "extra is {}", &conn);

    // The same connector again: 409 (global uniqueness of type + connector id).
    cli.err(
        &cat(
            &["--max-retries", "0"],
            &cat(
                &v133,
                &[
                    "volume",
                    "connector",
                    "create",
                    "--node",
                    &n,
                    "--type",
                    "iqn",
                    "--connector-id",
                    &iqn,
                ],
            ),
        ),
        &format!(
            "A volume connector with type iqn and connector ID {iqn} already exists. (HTTP 409)"
        ),
    );

    // Use without the Compute Service: `volume target create --node $NODE_UUID --type iscsi --boot-index 0 --volume $VOLUME_UUID`
    let target = cli.json(&cat(
        &v133,
        &[
            "volume",
            "target",
            "create",
            "--node",
            &n,
            "--type",
            "iscsi",
            "--boot-index",
            "0",
            "--volume",
            VOLUME_UUID,
            "-f",
            "json",
        ],
    ));
    let t = cli.need(&target["uuid"], "target uuid");
    cli.check(
        target["node_uuid"] == json!(n)
            && target["volume_type"] == "iscsi"
            && target["boot_index"] == 0
            && target["volume_id"] == VOLUME_UUID
            && target["properties"] == json!({}),
        "the target as created",
        &target,
    );

    // Only one boot volume per node: a second boot index 0 is a 409.
    cli.err(
        &[
            "--max-retries",
            "0",
            "--os-baremetal-api-version",
            "1.33",
            "volume",
            "target",
            "create",
            "--node",
            &n,
            "--type",
            "iscsi",
            "--boot-index",
            "0",
            "--volume",
            VOLUME_UUID_2,
        ],
        "A volume target with boot index '0' for the same node already exists. (HTTP 409)",
    );

    // --- list / show / set / unset / delete of connectors and targets -------------
    let list = cli.json(&["volume", "connector", "list", "-f", "json"]);
    cli.check(
        list.as_array()
            .is_some_and(|l| l.len() == 1 && field(&l[0], "uuid") == &json!(c)),
        "connector list holds the connector",
        &list,
    );
    cli.check(
        field(&list[0], "connector_id") == &json!(iqn),
        "connector list shows the connector id",
        &list,
    );
    let list = cli.json(&[
        "volume",
        "connector",
        "list",
        "--node",
        &n,
        "--long",
        "-f",
        "json",
    ]);
    cli.check(
        list.as_array()
            .is_some_and(|l| l.len() == 1 && field(&l[0], "extra") == &json!({})),
        "connector list --node --long shows extra",
        &list,
    );
    let list = cli.json(&[
        "volume",
        "connector",
        "list",
        "--node",
        "bfv-cinder",
        "-f",
        "json",
    ]);
    cli.check(
        list.as_array().is_some_and(|l| l.len() == 1),
        "connector list --node <name>",
        &list,
    );
    let shown = cli.json(&["volume", "connector", "show", &c, "-f", "json"]);
    cli.check(
        shown["connector_id"] == json!(iqn) && shown["node_uuid"] == json!(n),
        "connector show",
        &shown,
    );
    let shown = cli.json(&[
        "volume",
        "connector",
        "show",
        &c,
        "--fields",
        "uuid",
        "type",
        "-f",
        "json",
    ]);
    cli.check(
        shown == json!({"uuid": c, "type": "iqn"}),
        "connector show --fields",
        &shown,
    );
    let list = cli.json(&["volume", "target", "list", "--node", &n, "-f", "json"]);
    cli.check(
        list.as_array()
            .is_some_and(|l| l.len() == 1 && field(&l[0], "uuid") == &json!(t)),
        "target list --node",
        &list,
    );
    let shown = cli.json(&["volume", "target", "show", &t, "-f", "json"]);
    cli.check(
        shown["volume_id"] == VOLUME_UUID && shown["boot_index"] == 0,
        "target show",
        &shown,
    );

    // Updates need the node powered off. A new fake node has no power state
    // (null), which Ironic also refuses.
    cli.err(
        &["volume", "connector", "set", "--extra", "rack=r1", &c],
        &format!("The requested action \"volume connector update\" can not be performed on node \"{n}\" while it is in state \"None\". (HTTP 400)"),
    );
    cli.ok(&["node", "power", "off", &n]);
    let shown = cli.wait_power(&n, "power off");
    cli.check(shown["power_state"] == "power off", "power off", &shown);
    cli.ok(&["volume", "connector", "set", "--extra", "rack=r1", &c]);
    let shown = cli.json(&["volume", "connector", "show", &c, "-f", "json"]);
    cli.check(
        shown["extra"] == json!({"rack": "r1"}),
        "connector set --extra",
        &shown,
    );
    cli.ok(&["volume", "connector", "unset", "--extra", "rack", &c]);
    cli.ok(&[
        "volume",
        "target",
        "set",
        "--extra",
        "owner=ops",
        "--property",
        "target_lun=1",
        &t,
    ]);
    let shown = cli.json(&["volume", "target", "show", &t, "-f", "json"]);
    cli.check(
        shown["extra"] == json!({"owner": "ops"}) && shown["properties"]["target_lun"] == 1,
        "target set --extra --property",
        &shown,
    );
    cli.ok(&[
        "volume",
        "target",
        "unset",
        "--extra",
        "owner",
        "--property",
        "target_lun",
        &t,
    ]);
    let shown = cli.json(&["volume", "target", "show", &t, "-f", "json"]);
    cli.check(
        shown["extra"] == json!({}) && shown["properties"] == json!({}),
        "target unset",
        &shown,
    );
    let shown = cli.json(&["volume", "connector", "show", &c, "-f", "json"]);
    cli.check(
        shown["extra"] == json!({}),
        "connector unset --extra",
        &shown,
    );

    // Powered on: updates are refused with Ironic's text.
    cli.ok(&["node", "power", "on", &n]);
    let shown = cli.wait_power(&n, "power on");
    cli.check(shown["power_state"] == "power on", "power on", &shown);
    cli.err(
        &["volume", "connector", "set", "--extra", "rack=r2", &c],
        &format!("The requested action \"volume connector update\" can not be performed on node \"{n}\" while it is in state \"power on\". (HTTP 400)"),
    );
    cli.err(
        &["volume", "target", "set", "--extra", "owner=ops", &t],
        &format!("The requested action \"volume target update\" can not be performed on node \"{n}\" while it is in state \"power on\". (HTTP 400)"),
    );

    // An old microversion: the volume API does not exist below 1.32.
    for args in [
        vec![
            "--os-baremetal-api-version",
            "1.31",
            "volume",
            "connector",
            "list",
        ],
        vec![
            "--os-baremetal-api-version",
            "1.31",
            "volume",
            "target",
            "show",
            &t,
        ],
    ] {
        let out = cli.err(&args, "(HTTP 404)");
        // Ironic's text: {"code": 404, "title": "Not Found", "description": ""} (HTTP 404)
        let msg = out
            .stderr
            .lines()
            .find(|l| l.contains("(HTTP 404)"))
            .unwrap_or_default();
        let body = msg.split(" (HTTP 404)").next().unwrap_or_default();
        let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        if parsed != json!({"code": 404, "title": "Not Found", "description": ""}) {
            cli.fail(&out, "expected Ironic's framework 404 body");
        }
    }

    // Delete: allowed in enroll whatever the power state (Ironic's DELETE_ALLOWED_STATES).
    let out = cli.ok(&["volume", "target", "delete", &t]);
    cli.check(
        out.contains(&format!("Deleted volume target {t}")),
        "target delete says so",
        &json!(out),
    );
    let out = cli.ok(&["volume", "connector", "delete", &c]);
    cli.check(
        out.contains(&format!("Deleted volume connector {c}")),
        "connector delete says so",
        &json!(out),
    );
    let list = cli.json(&["volume", "connector", "list", "--node", &n, "-f", "json"]);
    cli.check(list == json!([]), "no connectors left", &list);
    cli.err(
        &["volume", "connector", "show", &c],
        &format!("Volume connector {c} could not be found. (HTTP 404)"),
    );

    // --- Use Without Cinder: the `external` node, deployed ------------------------
    let node = cli.json(&[
        "node",
        "create",
        "--driver",
        "fake-hardware",
        "--name",
        "bfv-external",
        "-f",
        "json",
    ]);
    let m = cli.need(&node["uuid"], "node uuid");
    // `openstack baremetal node set --storage-interface external $NODE_UUID`
    cli.ok(&["node", "set", "--storage-interface", "external", &m]);
    cli.ok(&[
        "node",
        "set",
        "--property",
        "capabilities=iscsi_boot:True",
        &m,
    ]);
    // iPXE boots through the node's PXE port (its per-MAC entry point).
    let port = cli.json(&[
        "port",
        "create",
        "52:54:00:12:34:56",
        "--node",
        &m,
        "-f",
        "json",
    ]);
    cli.check(
        port["address"] == "52:54:00:12:34:56"
            && port["node_uuid"] == json!(m)
            && port["pxe_enabled"] == true,
        "port create",
        &port,
    );
    cli.err(
        &[
            "--max-retries",
            "0",
            "port",
            "create",
            "52:54:00:12:34:56",
            "--node",
            &m,
        ],
        "A port with MAC address 52:54:00:12:34:56 already exists. (HTTP 409)",
    );
    let list = cli.json(&["port", "list", "--node", &m, "-f", "json"]);
    cli.check(
        list.as_array()
            .is_some_and(|l| l.len() == 1 && field(&l[0], "address") == "52:54:00:12:34:56"),
        "port list --node",
        &list,
    );
    let miqn = format!("iqn.2017-08.org.openstack.{m}");
    cli.ok(&[
        "volume",
        "connector",
        "create",
        "--node",
        &m,
        "--type",
        "iqn",
        "--connector-id",
        &miqn,
    ]);
    // Setting a volume, verbatim (`--volume-id` and all the CHAP properties).
    let target = cli.json(&[
        "volume",
        "target",
        "create",
        "--node",
        &m,
        "--type",
        "iscsi",
        "--boot-index",
        "0",
        "--volume-id",
        VOLUME_UUID,
        "--property",
        "target_iqn=iqn.2010-10.com.example:vol-X",
        "--property",
        "target_lun=0",
        "--property",
        "target_portal=192.168.0.123:3260",
        "--property",
        "auth_method=CHAP",
        "--property",
        "auth_username=ABC",
        "--property",
        "auth_password=XYZ",
        "-f",
        "json",
    ]);
    let masked = json!({
        "target_iqn": "iqn.2010-10.com.example:vol-X",
        "target_lun": 0,
        "target_portal": "192.168.0.123:3260",
        "auth_method": "CHAP",
        "auth_username": "ABC",
        "auth_password": "******",
    });
    cli.check(
        target["properties"] == masked,
        "auth_password is masked in the create answer",
        &target,
    );
    let mt = cli.need(&target["uuid"], "target uuid");
    let shown = cli.json(&["volume", "target", "show", &mt, "-f", "json"]);
    cli.check(
        shown["properties"] == masked,
        "auth_password is masked in show",
        &shown,
    );
    let list = cli.json(&[
        "volume", "target", "list", "--node", &m, "--long", "-f", "json",
    ]);
    cli.check(
        list.as_array()
            .is_some_and(|l| l.len() == 1 && field(&l[0], "properties") == &masked),
        "auth_password is masked in list --long",
        &list,
    );
    let list = cli.json(&[
        "volume",
        "target",
        "list",
        "--fields",
        "uuid",
        "properties",
        "-f",
        "json",
    ]);
    cli.check(
        list.as_array()
            .is_some_and(|l| l.iter().any(|x| field(x, "properties") == &masked)),
        "auth_password is masked in list --fields properties",
        &list,
    );
    for args in [
        vec!["volume", "target", "show", &mt],
        vec!["volume", "target", "list", "--long"],
    ] {
        let out = cli.run(&args);
        cli.check(
            !out.stdout.contains("XYZ"),
            "the CHAP secret must not leak",
            &json!(out.stdout),
        );
    }

    // Ensure that no image_source is defined: `node unset --instance-info image_source`.
    // On a node that never had one, Ironic itself refuses the removal:
    cli.err(
        &["node", "unset", "--instance-info", "image_source", &m],
        "Couldn't apply patch '{'op': 'remove', 'path': '/instance_info/image_source'}'. Reason: can't remove a non-existent object 'image_source' (HTTP 400)",
    );
    cli.ok(&[
        "node",
        "set",
        "--instance-info",
        "image_source=http://example.com/img.qcow2",
        &m,
    ]);
    let shown = cli.show_node(&m);
    cli.check(
        shown["instance_info"]["image_source"] == "http://example.com/img.qcow2",
        "image_source set",
        &shown,
    );
    // ... and with one, the guide's command verbatim:
    cli.ok(&["node", "unset", "--instance-info", "image_source", &m]);
    let shown = cli.show_node(&m);
    cli.check(
        shown["instance_info"].get("image_source").is_none(),
        "image_source removed",
        &shown,
    );

    // manage / provide (waiting for the stable state, as operators do).
    cli.ok(&["node", "manage", "--wait", "30", &m]);
    let shown = cli.show_node(&m);
    cli.check(
        shown["provision_state"] == "manageable",
        "manage → manageable",
        &shown,
    );
    cli.ok(&["node", "provide", "--wait", "30", &m]);
    let shown = cli.show_node(&m);
    cli.check(
        shown["provision_state"] == "available" && shown["target_provision_state"].is_null(),
        "provide → available",
        &shown,
    );
    // A verb the state machine refuses: Ironic's text.
    cli.err(
        &["node", "provide", &m],
        &format!("The requested action \"provide\" can not be performed on node \"{m}\" while it is in state \"available\". (HTTP 400)"),
    );

    // Deploy the node: `openstack baremetal node deploy $NODE_UUID`.
    cli.ok(&["node", "deploy", &m]);
    let shown = cli.wait_for(&m, "active");
    cli.check(
        shown["provision_state"] == "active" && shown["target_provision_state"].is_null(),
        "deploy → active",
        &shown,
    );
    // The boot volume is the boot target (Ironic's `fake` deploy interface, the
    // oracle's, does not record it).
    cli.check(
        oracle || shown["driver_internal_info"]["boot_from_volume"] == json!(mt),
        "driver_internal_info.boot_from_volume names the boot target",
        &shown,
    );
    cli.check(shown["last_error"].is_null(), "no last_error", &shown);
    // Records of volume targets are removed upon the node being undeployed.
    cli.ok(&["node", "undeploy", &m]);
    let shown = cli.wait_for(&m, "available");
    cli.check(
        shown["provision_state"] == "available" && shown["target_provision_state"].is_null(),
        "undeploy → available",
        &shown,
    );
    cli.check(
        shown["instance_info"] == json!({}),
        "undeploy clears instance_info",
        &shown,
    );
    let list = cli.json(&["volume", "target", "list", "--node", &m, "-f", "json"]);
    // Ironic's `fake` deploy interface (the oracle's) skips tear_down_storage_configuration;
    // its real deploy interfaces, and ironledger's, remove the targets.
    cli.check(
        oracle || list == json!([]),
        "undeploy removes the targets",
        &list,
    );
    let list = cli.json(&["volume", "connector", "list", "--node", &m, "-f", "json"]);
    cli.check(
        list.as_array().is_some_and(|l| l.len() == 1),
        "undeploy keeps the connectors",
        &list,
    );

    // --- node show / node list ------------------------------------------------------
    let list = cli.json(&["node", "list", "-f", "json"]);
    let names: Vec<&Value> = list
        .as_array()
        .map(|l| l.iter().map(|x| field(x, "name")).collect())
        .unwrap_or_default();
    cli.check(
        names == vec!["bfv-cinder", "bfv-external"],
        "node list shows both nodes in creation order",
        &list,
    );
    let list = cli.json(&["node", "list", "--provision-state", "enroll", "-f", "json"]);
    cli.check(
        list.as_array()
            .is_some_and(|l| l.len() == 1 && field(&l[0], "uuid") == &json!(n)),
        "node list --provision-state enroll",
        &list,
    );
    let list = cli.json(&[
        "node",
        "list",
        "--fields",
        "uuid",
        "storage_interface",
        "-f",
        "json",
    ]);
    cli.check(
        list.as_array().is_some_and(|l| {
            l.len() == 2 && l.iter().all(|x| field(x, "storage_interface").is_string())
        }),
        "node list --fields uuid storage_interface",
        &list,
    );
    let shown = cli.json(&["node", "show", "bfv-external", "-f", "json"]);
    cli.check(
        shown["uuid"] == json!(m) && shown["storage_interface"] == "external",
        "node show by name",
        &shown,
    );
    let shown = cli.json(&[
        "--os-baremetal-api-version",
        "1.32",
        "node",
        "show",
        &m,
        "-f",
        "json",
    ]);
    cli.check(
        shown.get("storage_interface").is_none(),
        "storage_interface is hidden below 1.33",
        &shown,
    );
    cli.err(
        &["node", "show", "no-such-node"],
        "Node no-such-node could not be found. (HTTP 404)",
    );

    eprintln!(
        "cli_compat: {} baremetal commands in {:.1?} (client venv ready after {:.1?})",
        cli.commands,
        started.elapsed() - installed,
        installed
    );
    if !cli.failures.is_empty() {
        cli.finish(None);
    }
}

/// The guide's Cinder path: a volume created in the real Cinder, the node's
/// target naming it, `node deploy` attaching it (connection info written back
/// into the target, secrets masked), `node undeploy` detaching it.
#[test]
fn cinder_path_through_the_baremetal_cli() {
    let bin = baremetal_bin();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let volume = rt.block_on(common::cinder::create_volume(false));
    let config = format!(
        "{CONFIG}[cinder]\nendpoint_override = {}\naction_retries = 1\naction_retry_interval = 0.5\n",
        common::cinder::endpoint()
    );
    let mut cli = Cli {
        bin,
        server: Server::start_with(&config),
        commands: 0,
        failures: vec![],
    };

    let node = cli.json(&[
        "node",
        "create",
        "--driver",
        "fake-hardware",
        "--name",
        "bfv-cinder-deploy",
        "--boot-interface",
        "ipxe",
        "-f",
        "json",
    ]);
    let n = cli.need(&node["uuid"], "node uuid");
    cli.ok(&[
        "--os-baremetal-api-version",
        "1.33",
        "node",
        "set",
        "--storage-interface",
        "cinder",
        &n,
    ]);
    cli.ok(&[
        "node",
        "set",
        "--property",
        "capabilities=iscsi_boot:True",
        &n,
    ]);
    // As a Neutron-driven setup creates it: where the port is cabled.
    let port = cli.json(&[
        "port",
        "create",
        "--node",
        &n,
        "52:54:00:c1:de:01",
        "--local-link-connection",
        "switch_id=52:54:00:00:00:99",
        "--local-link-connection",
        "port_id=Ethernet1/7",
        "--physical-network",
        "physnet1",
        "-f",
        "json",
    ]);
    assert_eq!(
        port["local_link_connection"],
        json!({"switch_id": "52:54:00:00:00:99", "port_id": "Ethernet1/7"}),
        "{port}"
    );
    assert_eq!(port["physical_network"], "physnet1", "{port}");
    cli.ok(&[
        "volume",
        "connector",
        "create",
        "--node",
        &n,
        "--type",
        "iqn",
        "--connector-id",
        &format!("iqn.2017-08.org.openstack.{n}"),
    ]);
    let target = cli.json(&[
        "volume",
        "target",
        "create",
        "--node",
        &n,
        "--type",
        "iscsi",
        "--boot-index",
        "0",
        "--volume",
        &volume,
        "-f",
        "json",
    ]);
    let t = cli.need(&target["uuid"], "target uuid");
    cli.ok(&["node", "manage", "--wait", "30", &n]);
    cli.ok(&["node", "provide", "--wait", "30", &n]);
    cli.ok(&["node", "deploy", &n]);
    let shown = cli.wait_for(&n, "active");
    cli.check(
        shown["provision_state"] == "active",
        "cinder deploy → active",
        &shown,
    );
    cli.check(shown["last_error"].is_null(), "no last_error", &shown);

    // Cinder's connection info replaced the target's properties; the CHAP secret is masked.
    let target = cli.json(&["volume", "target", "show", &t, "-f", "json"]);
    cli.check(
        target["properties"]["target_iqn"]
            == json!(format!("iqn.2010-10.org.openstack:volume-{volume}")),
        "the target carries Cinder's connection info",
        &target,
    );
    cli.check(
        target["properties"]["auth_password"] == "******",
        "auth_password is masked",
        &target,
    );
    let attached = rt
        .block_on(common::cinder::client().get_volume(&volume))
        .unwrap();
    cli.check(
        attached.status == "in-use"
            && attached.attachments.len() == 1
            && attached.attachments[0].0 == n,
        "the volume is attached to the node in Cinder",
        &json!({"status": attached.status, "attachments": attached.attachments.len()}),
    );

    cli.ok(&["node", "undeploy", &n]);
    let shown = cli.wait_for(&n, "available");
    cli.check(
        shown["provision_state"] == "available",
        "cinder undeploy → available",
        &shown,
    );
    let detached = rt
        .block_on(common::cinder::client().get_volume(&volume))
        .unwrap();
    cli.check(
        detached.status == "available" && detached.attachments.is_empty(),
        "the volume is detached in Cinder",
        &json!({"status": detached.status, "attachments": detached.attachments.len()}),
    );
    let list = cli.json(&["volume", "target", "list", "--node", &n, "-f", "json"]);
    cli.check(list == json!([]), "undeploy removes the targets", &list);
    if !cli.failures.is_empty() {
        cli.finish(None);
    }
}

/// `[DEFAULT] auth_strategy = http_basic`: the CLI's `http_basic` auth type
/// works with an htpasswd file of bcrypt hashes; a wrong password is a 401.
#[test]
fn http_basic_auth_through_the_baremetal_cli() {
    let bin = baremetal_bin();
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    std::fs::write(&htpasswd, format!("operator:{hash}\n")).unwrap();
    let config = format!(
        "[DEFAULT]\nauth_strategy = http_basic\nhttp_basic_auth_user_file = {}\n",
        htpasswd.display()
    );
    let mut cli = Cli {
        bin,
        server: Server::start_with(&config),
        commands: 0,
        failures: vec![],
    };
    let auth = |user: &str, pass: &str| {
        vec![
            "--os-auth-type".to_string(),
            "http_basic".to_string(),
            "--os-username".to_string(),
            user.to_string(),
            "--os-password".to_string(),
            pass.to_string(),
        ]
    };
    let good = auth("operator", "s3cret");
    let mut args: Vec<&str> = good.iter().map(String::as_str).collect();
    args.extend([
        "node",
        "create",
        "--driver",
        "fake-hardware",
        "--name",
        "basic-auth",
        "-f",
        "json",
    ]);
    let node = cli.json(&args);
    cli.check(
        node["name"] == "basic-auth",
        "node create with http_basic credentials",
        &node,
    );

    let bad = auth("operator", "wrong");
    let mut args: Vec<&str> = bad.iter().map(String::as_str).collect();
    args.extend(["node", "list"]);
    let out = cli.run(&args);
    if out.ok || !out.stderr.contains("401") {
        cli.fail(&out, "a wrong password is refused with a 401");
    }
    let out = cli.run(&["node", "list"]);
    if out.ok {
        cli.fail(&out, "no credentials are refused");
    }
    if !cli.failures.is_empty() {
        cli.finish(None);
    }
}

/// A `redfish` and an `ipmi` node enrolled as an operator does, with the
/// real `baremetal` CLI: `node create --driver … --driver-info …`, the
/// password masked in `node show`, `node validate` reading `driver_info`
/// (Ironic's text when a value is missing), and `node deploy` / `node power
/// on` refused with the current limit's text.
#[test]
fn redfish_and_ipmi_nodes_through_the_baremetal_cli() {
    let mut cli = Cli {
        bin: baremetal_bin(),
        server: Server::start_with(CONFIG),
        commands: 0,
        failures: vec![],
    };
    let password = "Cli-Bmc-Pass-4471";
    let pw_rf = format!("redfish_password={password}");
    let pw_ipmi = format!("ipmi_password={password}");
    let cases: [(&str, Vec<&str>, &str); 2] = [
        (
            "redfish",
            vec![
                "--driver-info",
                "redfish_address=https://10.0.0.21",
                "--driver-info",
                "redfish_username=admin",
                "--driver-info",
                &pw_rf,
                "--driver-info",
                "redfish_system_id=/redfish/v1/Systems/1",
            ],
            "redfish",
        ),
        (
            "ipmi",
            vec![
                "--driver-info",
                "ipmi_address=10.0.0.22",
                "--driver-info",
                "ipmi_username=admin",
                "--driver-info",
                &pw_ipmi,
            ],
            "ipmitool",
        ),
    ];
    for (driver, info, interface) in cases {
        let mut args = vec!["node", "create", "--driver", driver];
        args.extend(info.iter().copied());
        args.extend(["-f", "json"]);
        let out = cli.run(&args);
        if out.stdout.contains(password) {
            cli.fail(&out, "node create printed the BMC password");
        }
        let node: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
        let n = cli.need(&node["uuid"], "node uuid");
        cli.check(
            node["power_interface"] == interface,
            "power interface",
            &node,
        );
        cli.check(
            node["management_interface"] == interface,
            "management interface",
            &node,
        );
        let shown = cli.show_node(&n);
        cli.check(
            !shown.to_string().contains(password),
            "node show masks the password",
            &shown,
        );
        let key = format!("{driver}_password");
        cli.check(
            shown["driver_info"][&key] == "******",
            "the password is ******",
            &shown,
        );

        let validated = cli.json(&["node", "validate", &n, "-f", "json"]);
        for kind in ["power", "management"] {
            let row = validated
                .as_array()
                .and_then(|rows| rows.iter().find(|r| field(r, "interface") == kind))
                .cloned()
                .unwrap_or(Value::Null);
            cli.check(
                field(&row, "result") == true,
                &format!("{kind} validates"),
                &validated,
            );
        }

        for v in ["manage", "provide"] {
            cli.ok(&["node", v, &n]);
        }
        // Deploy and power act on the BMC: tests/effects/bmc.rs drives them with
        // the CLI against the emulators (these addresses are not on
        // loopback, so nothing is asked of them here).
        let shown = cli.show_node(&n);
        cli.check(
            shown["provision_state"] == "available",
            "manage and provide leave the node available",
            &shown,
        );
    }

    // Missing address: Ironic's text in `node validate`.
    let node = cli.json(&["node", "create", "--driver", "redfish", "-f", "json"]);
    let n = cli.need(&node["uuid"], "node uuid");
    let validated = cli.json(&["node", "validate", &n, "-f", "json"]);
    let want = format!(
        "Missing the following Redfish properties in node {n} driver_info: ['redfish_address']"
    );
    cli.check(
        validated.to_string().contains(&want),
        "validate names the missing redfish_address",
        &validated,
    );
    if !cli.failures.is_empty() {
        cli.finish(None);
    }
}

/// `baremetal node boot device set/show [--supported]` on a `fake-hardware`
/// node (no BMC: the BMC nodes' side is `tests/effects/bmc.rs`): the client's
/// requests are the ones ironledger serves, the setting is shown back, and a
/// device the interface does not take is Ironic's error on stderr.
#[test]
fn boot_device_through_the_baremetal_cli() {
    let mut cli = Cli {
        bin: baremetal_bin(),
        server: Server::start(),
        commands: 0,
        failures: vec![],
    };
    let node = cli.json(&["node", "create", "--driver", "fake-hardware", "-f", "json"]);
    let n = cli.need(&node["uuid"], "node uuid");
    let shown = cli.json(&["node", "boot", "device", "show", &n, "-f", "json"]);
    cli.check(
        shown == serde_json::json!({"boot_device": "pxe", "persistent": false}),
        "Ironic's fake answer before anything is set",
        &shown,
    );
    cli.ok(&["node", "boot", "device", "set", &n, "pxe", "--persistent"]);
    let shown = cli.json(&["node", "boot", "device", "show", &n, "-f", "json"]);
    cli.check(
        shown == serde_json::json!({"boot_device": "pxe", "persistent": true}),
        "the setting is shown back",
        &shown,
    );
    let supported = cli.json(&[
        "node",
        "boot",
        "device",
        "show",
        &n,
        "--supported",
        "-f",
        "json",
    ]);
    cli.check(
        supported.to_string().contains("pxe") && !supported.to_string().contains("disk"),
        "fake management supports pxe only",
        &supported,
    );
    cli.err(
        &["node", "boot", "device", "set", &n, "disk"],
        "Invalid boot device disk specified.",
    );
    if !cli.failures.is_empty() {
        cli.finish(None);
    }
}
