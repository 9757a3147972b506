//! Proof that the boot works (issue 6): a real iPXE firmware, in QEMU, boots
//! the script ironledger wrote, from a real iSCSI target.
//!
//! Each flow — storage interface `external`, then `cinder` — goes all the way:
//!
//! 1. a per-run volume image whose boot code shows a random token
//!    (`tests/e2e/images.sh`: an MBR boot sector for BIOS and an EFI system
//!    partition with a UEFI application, on one disk), served by `tgtd` on a
//!    free 127.0.0.1 port as a target with a random IQN, a random LUN (≥ 10, so
//!    its hex form differs from its decimal one) and random CHAP credentials;
//! 2. `ironledger serve` (embedded store, temporary data dir, `http_root` in
//!    the work dir, served under `/boot/` on the API listener);
//! 3. operators' own `baremetal` CLI: node (`ipxe` boot, the storage
//!    interface, `iscsi_boot:True`), a port with the VM's MAC, an `iqn`
//!    connector, a boot-index-0 iSCSI target — `external`: the tgtd
//!    IQN/LUN/CHAP at the portal `10.0.2.100:3260` as the guest sees it;
//!    `cinder`: a volume created in the Cinder rig, whose driver is pointed
//!    at that target (`$IRONLEDGER_RIG_ISCSI_FILE`) while the deploy attaches
//!    it —, `node unset --instance-info image_source`, manage, provide,
//!    deploy → `active`;
//! 4. QEMU/TCG, BIOS: the e1000 NIC's iPXE ROM gets
//!    `http://10.0.2.100/boot/boot.ipxe` from QEMU's DHCP, which chains
//!    `pxelinux.cfg/<mac>` → the node's script → CHAP login → `sanhook` →
//!    `sanboot`; the serial log must show `Registered SAN device 0x80` and the
//!    token, read from the LUN by the booted sector;
//! 5. the same in UEFI (OVMF + Debian's `ipxe.efi` as stage 0);
//! 6. the target's CHAP password changed on tgtd behind ironledger's back:
//!    the firmware must fail with "Operation not permitted" (and tgtd logs the
//!    failed authentication of the node's initiator IQN);
//! 7. `node undeploy`; the same machine boots again and finds no
//!    configuration for its MAC (no SAN device, no token).
//!
//! A third test boots once more, with the machine started by its BMC rather
//! than by the test (issue 10, item 7): after steps 1–3 (`external`) it
//! starts an `ipmi_sim` of its own (`tests/rigs/bmc/`) whose chassis control
//! runs the QEMU command line `boot-vm.sh --argv` wrote; ironledger's IPMI
//! client sets the boot device to pxe and powers on; the serial log must show
//! the SAN boot and the token; power off must leave no QEMU behind.
//!
//! The VM's network is QEMU user networking with `restrict=on`: the guest
//! reaches only 10.0.2.100:80 (→ ironledger) and 10.0.2.100:3260 (→ tgtd),
//! both forwarded to 127.0.0.1 (`tests/e2e/boot-vm.sh`). Nothing leaves
//! loopback.
//!
//! Needs root and Debian's `qemu-system-x86 ipxe-qemu ipxe tgt ovmf socat
//! mtools gnu-efi` (plus binutils and gcc; `openipmi ipmitool` for the
//! BMC-started boot), the client virtualenv (`IRONLEDGER_CLIENT_VENV`,
//! created like `tests/cli/cli_compat.rs` does) and, for the `cinder` flow, the
//! Cinder rig (`IRONLEDGER_TEST_CINDER_URL`);
//! `.ci/run` provides all of them. Missing pieces fail the test, they never
//! skip it. `IRONLEDGER_E2E_KEEP=1` keeps the work directory (serial logs,
//! tgtd and ironledger logs, the http root). Serial logs of every boot are
//! printed (`cargo test --test boot e2e_boot -- --nocapture` shows them).

use crate::common;

use common::client::baremetal_bin;
use rand::Rng;
use serde_json::{json, Value};
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The iSCSI portal as the guest sees it (forwarded to tgtd).
const GUEST_PORTAL: &str = "10.0.2.100:3260";
/// Upper bounds of one boot: a BIOS boot takes ~6 s, a UEFI one ~18 s here.
const BIOS_LIMIT: Duration = Duration::from_secs(60);
const UEFI_LIMIT: Duration = Duration::from_secs(100);
const DEFAULT_CINDER: &str = "http://127.0.0.1:8776/v3/4f3c2d1e0a9b8c7d6e5f4a3b2c1d0e9f";

/// Lines of the serial console after which a boot has nothing more to say.
const BOOT_ENDS: &[&str] = &[
    "IRONLEDGER-E2E-MBR: done",
    "IRONLEDGER-E2E-MBR: INT 13h read FAILED",
    "IRONLEDGER-E2E-EFI: done",
    // the node script gave up its retries (`[deploy] san_boot_retries`)
    "(ironledger: [deploy] san_boot_retries = ",
    // boot.ipxe, no script for this MAC (it would wait 180 s, then reboot)
    "No configuration found",
    // boot.ipxe, a chained script returned
    "Exiting pxe config",
];

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e")
}

// ---------------------------------------------------------------------------
// Prerequisites, randomness, small helpers.

fn on_path(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
        .unwrap_or(false)
}

fn require_tools() {
    let mut missing: Vec<String> = [
        "qemu-system-x86_64",
        "tgtd",
        "tgtadm",
        "socat",
        "mformat",
        "mcopy",
        "mmd",
        "as",
        "ld",
        "objcopy",
        "gcc",
    ]
    .iter()
    .filter(|c| !on_path(c))
    .map(|c| c.to_string())
    .collect();
    for f in [
        "/usr/lib/ipxe/ipxe.efi",
        "/usr/share/OVMF/OVMF_CODE_4M.fd",
        "/usr/share/OVMF/OVMF_VARS_4M.fd",
        "/usr/lib/crt0-efi-x86_64.o",
    ] {
        if !Path::new(f).exists() {
            missing.push(f.to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "the iPXE end-to-end test needs {missing:?}: run .ci/run, which installs \
         Debian's qemu-system-x86 ipxe-qemu ipxe tgt ovmf socat mtools gnu-efi"
    );
}

fn hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs a command to completion; panics with its output when it fails.
fn must(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// One HTTP request (loopback only), returning the status and the body.
fn http(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&Value>) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let mut req = client.request(method.parse().unwrap(), url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = res.status().as_u16();
        (status, res.text().await.unwrap_or_default())
    })
}

/// Where a flow's time went.
struct Timings {
    start: Instant,
    last: Instant,
    steps: Vec<(String, Duration)>,
}

impl Timings {
    fn new() -> Self {
        let now = Instant::now();
        Timings {
            start: now,
            last: now,
            steps: vec![],
        }
    }
    fn mark(&mut self, what: &str) {
        let now = Instant::now();
        self.steps.push((what.to_string(), now - self.last));
        self.last = now;
    }
    fn report(&self) -> String {
        let mut s: Vec<String> = self
            .steps
            .iter()
            .map(|(w, d)| format!("{w} {:.1}s", d.as_secs_f64()))
            .collect();
        s.push(format!("total {:.1}s", self.start.elapsed().as_secs_f64()));
        s.join(", ")
    }
}

/// What one run's volume is: the target tgtd serves it as, and what it shows.
struct Volume {
    token: String,
    iqn: String,
    lun: u32,
    user: String,
    password: String,
}

impl Volume {
    fn random(flow: &str) -> Volume {
        Volume {
            token: format!("token-{}", hex(8)),
            iqn: format!("iqn.2025-06.org.ironledger.e2e:{flow}-{}", hex(4)),
            lun: rand::thread_rng().gen_range(10..=254),
            user: format!("e2e-{}", hex(3)),
            password: hex(8),
        }
    }
}

// ---------------------------------------------------------------------------
// tgtd: a userspace iSCSI target on 127.0.0.1.

struct Tgtd {
    child: Child,
    ctl: u16,
    port: u16,
    log: PathBuf,
    tids: Vec<u32>,
}

impl Tgtd {
    fn start(work: &Path) -> Tgtd {
        let log = work.join("tgtd.log");
        for _ in 0..5 {
            // tgtadm's control "port" is the number of a unix socket,
            // /var/run/tgtd/socket.N, and must be 0..=32767.
            let ctl: u16 = rand::thread_rng().gen_range(1000..32000);
            if Path::new(&format!("/var/run/tgtd/socket.{ctl}")).exists() {
                continue;
            }
            let port = free_port();
            let out = fs::File::create(&log).unwrap();
            let child = Command::new("tgtd")
                .args(["-f", "-C", &ctl.to_string(), "--iscsi"])
                .arg(format!("portal=127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .expect("start tgtd");
            let mut t = Tgtd {
                child,
                ctl,
                port,
                log: log.clone(),
                tids: vec![],
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if t.child.try_wait().unwrap().is_some() {
                    break;
                }
                if t.tgtadm(&["--op", "show", "--mode", "target"])
                    .status
                    .success()
                {
                    return t;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            eprintln!("tgtd did not come up:\n{}", tail(&log, 20));
        }
        panic!("could not start tgtd; log:\n{}", tail(&log, 20));
    }

    fn tgtadm(&self, args: &[&str]) -> Output {
        Command::new("tgtadm")
            .args(["-C", &self.ctl.to_string(), "--lld", "iscsi"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run tgtadm")
    }

    fn adm(&self, args: &[&str]) {
        let out = self.tgtadm(args);
        assert!(
            out.status.success(),
            "tgtadm {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A target with one LUN (LUN 0 is tgtd's controller) and a CHAP account.
    fn add_target(&mut self, tid: u32, v: &Volume, image: &Path) {
        let tid_s = tid.to_string();
        self.adm(&[
            "--op", "new", "--mode", "target", "--tid", &tid_s, "-T", &v.iqn,
        ]);
        self.tids.push(tid);
        self.adm(&[
            "--op",
            "new",
            "--mode",
            "logicalunit",
            "--tid",
            &tid_s,
            "--lun",
            &v.lun.to_string(),
            "-b",
            image.to_str().unwrap(),
        ]);
        self.adm(&[
            "--op", "bind", "--mode", "target", "--tid", &tid_s, "-I", "ALL",
        ]);
        self.add_account(tid, &v.user, &v.password, Chap::Incoming);
    }

    /// Creates a CHAP account and binds it to target `tid`, `way` round.
    fn add_account(&self, tid: u32, user: &str, password: &str, way: Chap) {
        let tid = tid.to_string();
        self.adm(&[
            "--op",
            "new",
            "--mode",
            "account",
            "--user",
            user,
            "--password",
            password,
        ]);
        let mut bind = vec![
            "--op", "bind", "--mode", "account", "--tid", &tid, "--user", user,
        ];
        if way == Chap::Outgoing {
            bind.push("--outgoing");
        }
        self.adm(&bind);
    }

    /// Changes an account's password on the target (tgtd has no update: the
    /// account is unbound, deleted, created again and bound again).
    fn set_password(&self, tid: u32, user: &str, password: &str, way: Chap) {
        let tid_s = tid.to_string();
        let mut unbind = vec![
            "--op", "unbind", "--mode", "account", "--tid", &tid_s, "--user", user,
        ];
        if way == Chap::Outgoing {
            unbind.push("--outgoing");
        }
        self.adm(&unbind);
        self.adm(&["--op", "delete", "--mode", "account", "--user", user]);
        self.add_account(tid, user, password, way);
    }
}

/// Which way a CHAP account of a target logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chap {
    /// The initiator to the target (`auth_username`/`auth_password`).
    Incoming,
    /// The target back to the initiator: mutual CHAP
    /// (`reverse_auth_username`/`reverse_auth_password`).
    Outgoing,
}

impl Drop for Tgtd {
    /// tgtd ignores SIGTERM and SIGINT: its targets are deleted and the
    /// system is shut down through tgtadm; SIGKILL only if that fails.
    fn drop(&mut self) {
        for tid in &self.tids {
            let _ = self.tgtadm(&[
                "--op",
                "delete",
                "--mode",
                "target",
                "--tid",
                &tid.to_string(),
                "--force",
            ]);
        }
        let _ = Command::new("tgtadm")
            .args([
                "-C",
                &self.ctl.to_string(),
                "--op",
                "delete",
                "--mode",
                "system",
            ])
            .stdin(Stdio::null())
            .output();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for suffix in ["", ".lock"] {
            let _ = fs::remove_file(format!("/var/run/tgtd/socket.{}{suffix}", self.ctl));
        }
    }
}

// ---------------------------------------------------------------------------
// ironledger serve.

struct Ironledger {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Drop for Ironledger {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Ironledger {
    fn start(work: &Path, cinder: Option<&str>) -> Ironledger {
        let mut conf = format!(
            "[DEFAULT]\nenabled_storage_interfaces = cinder,external,noop\n\n[deploy]\nhttp_root = {}\n\
             san_boot_retries = 1\n",
            work.join("httpboot").display()
        );
        if let Some(endpoint) = cinder {
            conf.push_str(&format!("\n[cinder]\nendpoint_override = {endpoint}\n"));
        }
        let conf_path = work.join("ironic.conf");
        fs::write(&conf_path, conf).unwrap();
        let log = work.join("ironledger.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ironledger"));
        cmd.arg("--config-file")
            .arg(&conf_path)
            .args(["serve", "--port", "0", "--data-dir"])
            .arg(work.join("data"))
            .env_remove("DATABASE_URL")
            .env_remove("IRONLEDGER_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&log).unwrap());
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("IRONLEDGER__") {
                cmd.env_remove(k);
            }
        }
        let mut child = cmd.spawn().expect("start ironledger");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("read the listening line");
        let Some(url) = line.trim().strip_prefix("ironledger listening on ") else {
            let _ = child.kill();
            panic!("ironledger did not start: {line:?}\n{}", tail(&log, 30));
        };
        Ironledger {
            url: url.to_string(),
            child,
            log,
        }
    }

    /// Waits (at most 60 s) until the node's provision state is `state`,
    /// reading the API directly: the CLI's `--wait` polls every 2 s and each
    /// `baremetal` run costs a second of Python start-up.
    fn wait_for(&self, node: &str, state: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = Value::Null;
        while Instant::now() < deadline {
            let (status, body) = http(
                "GET",
                &format!("{}/v1/nodes/{node}", self.url),
                &[("X-OpenStack-Ironic-API-Version", "latest")],
                None,
            );
            if status == 200 {
                last = serde_json::from_str(&body).unwrap_or(Value::Null);
                if last["provision_state"] == state && last["target_provision_state"].is_null() {
                    return last;
                }
                let failed = ["deploy failed", "error", "clean failed"];
                if failed.iter().any(|f| last["provision_state"] == *f) {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "node {node} did not reach {state}: {last:#}\nironledger log (tail):\n{}",
            tail(&self.log, 30)
        );
    }

    fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }
}

// ---------------------------------------------------------------------------
// The `baremetal` CLI (python-ironicclient) from the cached virtualenv.

struct Cli {
    bin: PathBuf,
    url: String,
    home: PathBuf,
    server_log: PathBuf,
}

impl Cli {
    fn run(&self, args: &[&str]) -> Output {
        common::client::baremetal_command(&self.bin, &self.url, &self.home)
            .args(args)
            .output()
            .expect("run baremetal")
    }

    /// Runs a command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "$ baremetal {}\nstdout:\n{}\nstderr:\n{}\nironledger log (tail):\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail(&self.server_log, 30)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("baremetal {}: not JSON ({e}):\n{out}", args.join(" ")))
    }
}

// ---------------------------------------------------------------------------
// The Cinder rig.

fn cinder_endpoint() -> String {
    std::env::var("IRONLEDGER_TEST_CINDER_URL").unwrap_or_else(|_| DEFAULT_CINDER.into())
}

fn cinder_token() -> String {
    format!("admin:{}", cinder_endpoint().rsplit('/').next().unwrap())
}

fn cinder_volume_status(id: &str) -> Value {
    let (status, body) = http(
        "GET",
        &format!("{}/volumes/{id}", cinder_endpoint()),
        &[("X-Auth-Token", &cinder_token())],
        None,
    );
    assert_eq!(status, 200, "GET volume {id}: {body}");
    serde_json::from_str::<Value>(&body).unwrap()["volume"].clone()
}

/// Creates a volume in Cinder and waits until it is `available`.
fn create_cinder_volume() -> String {
    let endpoint = cinder_endpoint();
    assert!(
        reachable(&endpoint),
        "Cinder is not reachable at {endpoint}: .ci/run starts the rig (tests/rigs/cinder/start.sh)"
    );
    let (status, body) = http(
        "POST",
        &format!("{endpoint}/volumes"),
        &[("X-Auth-Token", &cinder_token())],
        Some(&json!({"volume": {"size": 1, "name": format!("ironledger-e2e-{}", hex(4))}})),
    );
    assert!(
        status == 202 || status == 200,
        "create volume: {status} {body}"
    );
    let id = serde_json::from_str::<Value>(&body).unwrap()["volume"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("create volume: {body}"))
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if cinder_volume_status(&id)["status"] == "available" {
            return id;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("Cinder volume {id} never became available");
}

/// Whether something listens at the endpoint's host:port.
fn reachable(endpoint: &str) -> bool {
    let hostport = endpoint
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    std::net::TcpStream::connect_timeout(&hostport.parse().unwrap(), Duration::from_secs(2)).is_ok()
}

/// Points the rig driver's iSCSI answer (`initialize_connection`) at our tgtd
/// target while it lives; the file's previous content (or its absence) is
/// restored on drop, so other tests see the rig's defaults again. A lock file
/// beside it keeps two such runs (two developers' test runs on one machine)
/// from pointing the rig at each other's targets. Meanwhile every attach in
/// Cinder gets this target, so no other test that attaches volumes shares this
/// binary (`tests/boot/main.rs`).
struct RigPointer {
    path: PathBuf,
    previous: Option<Vec<u8>>,
    _lock: fs::File,
}

impl RigPointer {
    fn path() -> PathBuf {
        if let Some(p) = std::env::var_os("IRONLEDGER_RIG_ISCSI_FILE") {
            return PathBuf::from(p);
        }
        let rig = std::env::var_os("IRONLEDGER_CINDER_RIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/tmp/ironledger-cinder-rig"));
        rig.join("iscsi.json")
    }

    fn set(v: &Volume) -> RigPointer {
        let path = Self::path();
        let lock_path = PathBuf::from(format!("{}.lock", path.display()));
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .unwrap_or_else(|e| panic!("open {}: {e}", lock_path.display()));
        lock.lock().expect("lock the rig's iSCSI file");
        let previous = fs::read(&path).ok();
        let content = json!({
            "target_portal": GUEST_PORTAL,
            "target_iqn": v.iqn,
            "target_lun": v.lun,
            "auth_username": v.user,
            "auth_password": v.password,
        });
        write_replace(&path, content.to_string().as_bytes());
        RigPointer {
            path,
            previous,
            _lock: lock,
        }
    }
}

fn write_replace(path: &Path, content: &[u8]) {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    fs::write(&tmp, content).unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
    fs::rename(&tmp, path).unwrap();
}

impl Drop for RigPointer {
    fn drop(&mut self) {
        match &self.previous {
            Some(content) => write_replace(&self.path, content),
            None => {
                let _ = fs::remove_file(&self.path);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Booting the VM.

/// QEMU started by `tests/e2e/boot-vm.sh` (which `exec`s it) as the leader of
/// its own process group, so the per-connection `socat`s go with it.
struct Vm {
    child: Child,
}

impl Drop for Vm {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// A serial console as text: no carriage returns, no terminal escapes,
/// backspaces applied (iPXE's "Press Ctrl-B" countdown erases itself).
fn clean_serial(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {}
            '\u{8}' => {
                if out.ends_with(|c| c != '\n') {
                    out.pop();
                }
            }
            '\u{1b}' => {
                if chars.peek() == Some(&'[') {
                    chars.next();
                    // parameters and intermediates, then one final byte
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            c => out.push(c),
        }
    }
    out
}

struct Boot {
    name: String,
    log: String,
    ended: String,
    elapsed: Duration,
}

impl Boot {
    /// A boot as the serial console showed it; its summary goes to stderr.
    fn seen(name: &str, firmware: &str, log: String, ended: String, elapsed: Duration) -> Boot {
        let boot = Boot {
            name: name.to_string(),
            log,
            ended,
            elapsed,
        };
        eprintln!(
            "--- boot {name} ({firmware}): {} after {:.1}s\n{}",
            boot.ended,
            elapsed.as_secs_f64(),
            boot.summary()
        );
        boot
    }

    /// The lines worth reading in a report.
    fn summary(&self) -> String {
        const KEEP: &[&str] = &[
            "iPXE 1.",
            "Configuring",
            "Filename:",
            "http://10.0.2.100/",
            "Attempting to boot",
            "pxelinux.cfg/",
            "Registered SAN",
            "Booting from SAN",
            "Could not",
            "IRONLEDGER-E2E",
            "Failed to attach",
            "giving up",
            "No configuration",
            "Exiting pxe",
        ];
        self.log
            .lines()
            .filter(|l| KEEP.iter().any(|k| l.contains(k)))
            .map(|l| format!("    | {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn expect(&self, present: &[&str], absent: &[&str]) {
        let missing: Vec<&&str> = present.iter().filter(|s| !self.log.contains(**s)).collect();
        let found: Vec<&&str> = absent.iter().filter(|s| self.log.contains(**s)).collect();
        assert!(
            missing.is_empty() && found.is_empty(),
            "boot {}: {} after {:.1}s\nmissing from the serial log: {missing:?}\n\
             unexpected in the serial log: {found:?}\nserial log:\n{}",
            self.name,
            self.ended,
            self.elapsed.as_secs_f64(),
            self.log
        );
    }
}

/// Reads a serial log until it shows one of [`BOOT_ENDS`], `exited` says the
/// machine is gone (and why), or `limit` passes; the log and how it ended.
fn watch_serial(
    serial: &Path,
    limit: Duration,
    mut exited: impl FnMut() -> Option<String>,
) -> (String, String) {
    let deadline = Instant::now() + limit;
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let log = clean_serial(&fs::read(serial).unwrap_or_default());
        if let Some(end) = BOOT_ENDS.iter().find(|e| log.contains(**e)) {
            return (log, format!("ended with \"{end}\""));
        }
        if let Some(why) = exited() {
            return (log, why);
        }
        if Instant::now() > deadline {
            return (log, format!("no end of boot within {}s", limit.as_secs()));
        }
    }
}

struct Machine<'a> {
    work: &'a Path,
    mac: String,
    http_port: u16,
    iscsi_port: u16,
}

impl Machine<'_> {
    /// `tests/e2e/boot-vm.sh` for this machine: one command line, whether
    /// the test starts QEMU or a BMC rig does (`--argv`).
    fn boot_vm(&self, firmware: &str, serial: &Path) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(e2e_dir().join("boot-vm.sh"))
            .args(["--firmware", firmware, "--mac", &self.mac])
            .arg("--http")
            .arg(format!("127.0.0.1:{}", self.http_port))
            .arg("--iscsi")
            .arg(format!("127.0.0.1:{}", self.iscsi_port))
            .arg("--serial")
            .arg(serial)
            .arg("--work")
            .arg(self.work.join("vm"));
        cmd
    }

    /// Boots until the serial console shows one of [`BOOT_ENDS`], QEMU exits,
    /// or `limit` passes.
    fn boot(&self, firmware: &str, name: &str, limit: Duration) -> Boot {
        let serial = self.work.join(format!("serial-{name}.log"));
        let _ = fs::remove_file(&serial);
        let qemu_out = fs::File::create(self.work.join(format!("qemu-{name}.out"))).unwrap();
        let start = Instant::now();
        let child = self
            .boot_vm(firmware, &serial)
            .stdin(Stdio::null())
            .stdout(qemu_out.try_clone().unwrap())
            .stderr(qemu_out)
            .process_group(0)
            .spawn()
            .expect("start boot-vm.sh");
        let mut vm = Vm { child };
        let (log, ended) = watch_serial(&serial, limit, || {
            let status = vm.child.try_wait().ok().flatten()?;
            let out =
                fs::read_to_string(self.work.join(format!("qemu-{name}.out"))).unwrap_or_default();
            Some(format!("QEMU exited ({status}): {out}"))
        });
        let elapsed = start.elapsed();
        drop(vm);
        Boot::seen(name, firmware, log, ended, elapsed)
    }
}

// ---------------------------------------------------------------------------
// The flow.

/// A node that ironledger deployed (`active`) onto a real iSCSI target:
/// everything a boot needs but the machine. Dropped in field order: server,
/// target, then the work directory.
struct Deployed {
    t: Timings,
    server: Ironledger,
    tgt: Tgtd,
    cli: Cli,
    vol: Volume,
    mac: String,
    mac_file: String,
    initiator: String,
    node: String,
    /// ironledger's HTTP root as the test reaches it (`…/boot`).
    base: String,
    cinder_volume: Option<String>,
    /// The outgoing (mutual CHAP) account of the target, with external
    /// storage: `(user, password)`.
    reverse: Option<(String, String)>,
    /// The node's BMC, when it has one ([`deploy_by_bmc`]): it started the
    /// machine.
    bmc: Option<BmcMachine>,
    work: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

/// An `ipmi` node's BMC and what it runs: the rig, its password, and the
/// serial log of the machine it starts.
struct BmcMachine {
    rig: IpmiRig,
    serial: PathBuf,
}

/// Steps 1–3 of a flow: images, tgtd, ironledger, the node through the
/// `baremetal` CLI, deployed to `active`; the script it serves is fetched.
/// The machine is the test's to boot.
fn deploy(storage: &'static str) -> Deployed {
    deploy_with(storage, false, false)
}

/// [`deploy`] of an `ipmi` node whose BMC (an `ipmi_sim` of the test's own)
/// has the test's QEMU machine as its chassis: the test only writes the
/// machine's command line for the BMC; ironledger's deploy sets the boot
/// device and powers the node on, which starts the machine.
fn deploy_by_bmc(storage: &'static str) -> Deployed {
    deploy_with(storage, true, false)
}

/// The IQN of the first path of [`multipath`]'s target: no such target
/// exists on tgtd, so a login with it fails.
fn absent_iqn(vol: &Volume) -> String {
    format!("{}-absent", vol.iqn)
}

/// Deploys with `multipath`: the external target has two paths, each with
/// its own IQN and LUN (`target_portals`, `target_iqns`, `target_luns`); the
/// first names a target tgtd does not have, the second the real one.
fn deploy_with(storage: &'static str, by_bmc: bool, multipath: bool) -> Deployed {
    require_tools();
    let mut t = Timings::new();
    let baremetal = baremetal_bin();
    let tmp = tempfile::Builder::new()
        .prefix(&format!("ironledger-e2e-{storage}-"))
        .tempdir()
        .unwrap();
    let keep = std::env::var_os("IRONLEDGER_E2E_KEEP").is_some_and(|v| v == "1");
    let work = tmp.path().to_path_buf();
    let _tmp = if keep {
        eprintln!("work directory kept: {}", tmp.keep().display());
        None
    } else {
        Some(tmp)
    };

    // 1. The volume and its target.
    let vol = Volume::random(storage);
    let mac = format!("52:54:00:{}:{}:{}", hex(1), hex(1), hex(1));
    let mac_file = mac.replace(':', "-");
    let images = e2e_dir().join("images.sh");
    let bin = work.join("bin");
    let image = work.join("volume.img");
    must(
        Command::new("bash").arg(&images).arg("programs").arg(&bin),
        "images.sh programs",
    );
    must(
        Command::new("bash")
            .arg(&images)
            .arg("volume")
            .arg(&bin)
            .arg(&image)
            .arg(&vol.token),
        "images.sh volume",
    );
    fs::create_dir_all(work.join("vm")).unwrap();
    must(
        Command::new("bash")
            .arg(&images)
            .arg("stage0")
            .arg(work.join("vm/stage0.img")),
        "images.sh stage0",
    );
    t.mark("images");
    let mut tgt = Tgtd::start(&work);
    tgt.add_target(1, &vol, &image);
    // External storage boots with mutual CHAP: tgtd answers the initiator's
    // challenge with an outgoing account, which iPXE checks against the
    // target's reverse_auth_username / reverse_auth_password.
    // (Not with two paths: the firmware's iBFT has room for so many names
    // and secrets; see the multipath test.)
    let reverse =
        (storage == "external" && !multipath).then(|| (format!("e2e-rev-{}", hex(3)), hex(8)));
    if let Some((user, password)) = &reverse {
        tgt.add_account(1, user, password, Chap::Outgoing);
    }
    eprintln!(
        "{storage}: tgtd on 127.0.0.1:{}: {} LUN {} (URI field {:x}), CHAP user {}; token {}; MAC {mac}",
        tgt.port, vol.iqn, vol.lun, vol.lun, vol.user, vol.token
    );

    // 2. ironledger.
    let cinder = (storage == "cinder").then(cinder_endpoint);
    let server = Ironledger::start(&work, cinder.as_deref());
    let cli = Cli {
        bin: baremetal,
        url: server.url.clone(),
        home: work.clone(),
        server_log: server.log.clone(),
    };
    t.mark("tgtd + ironledger");

    // The BMC, with the machine it powers: nothing runs yet.
    let bmc = by_bmc.then(|| {
        let password = hex(8);
        let rig = IpmiRig::start(&work.join("bmc"), &password);
        let serial = work.join("serial-bmc.log");
        let machine = Machine {
            work: &work,
            mac: mac.clone(),
            http_port: server.port(),
            iscsi_port: tgt.port,
        };
        must(
            machine
                .boot_vm("bios", &serial)
                .arg("--argv")
                .arg(rig.dir.join("machine")),
            "boot-vm.sh --argv",
        );
        (BmcMachine { rig, serial }, password)
    });

    // 3. The node, through the baremetal CLI.
    let name = format!("e2e-{storage}");
    let mut create: Vec<String> = [
        "node",
        "create",
        "--name",
        &name,
        "--boot-interface",
        "ipxe",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    match &bmc {
        None => create.extend(["--driver".into(), "fake-hardware".into()]),
        Some((m, password)) => {
            create.extend(["--driver".into(), "ipmi".into()]);
            // ipmi_sim does not answer "Get Channel Cipher Suites": naming
            // the suite spares ipmitool a 9 s wait per call.
            for (k, v) in [
                ("ipmi_address", "127.0.0.1".to_string()),
                ("ipmi_port", m.rig.port.to_string()),
                ("ipmi_username", "admin".into()),
                ("ipmi_password", password.clone()),
                ("ipmi_cipher_suite", "3".into()),
            ] {
                create.extend(["--driver-info".into(), format!("{k}={v}")]);
            }
        }
    }
    create.extend(
        [
            "--storage-interface",
            storage,
            "--property",
            "capabilities=iscsi_boot:True",
            "-f",
            "json",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let node = cli.json(&create.iter().map(String::as_str).collect::<Vec<_>>());
    let n = node["uuid"].as_str().expect("node uuid").to_string();
    cli.ok(&["port", "create", &mac, "--node", &n]);
    let initiator = format!("iqn.2017-08.org.openstack.{n}");
    cli.ok(&[
        "volume",
        "connector",
        "create",
        "--node",
        &n,
        "--type",
        "iqn",
        "--connector-id",
        &initiator,
    ]);
    let cinder_volume = cinder.as_ref().map(|_| create_cinder_volume());
    let volume_id = cinder_volume
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut target_args = vec![
        "volume".to_string(),
        "target".into(),
        "create".into(),
        "--node".into(),
        n.clone(),
        "--type".into(),
        "iscsi".into(),
        "--boot-index".into(),
        "0".into(),
        "--volume-id".into(),
        volume_id.clone(),
        "-f".into(),
        "json".into(),
    ];
    if storage == "external" {
        let paths = if multipath {
            vec![
                (
                    "target_portals",
                    json!([GUEST_PORTAL, GUEST_PORTAL]).to_string(),
                ),
                (
                    "target_iqns",
                    json!([absent_iqn(&vol), vol.iqn]).to_string(),
                ),
                ("target_luns", json!([vol.lun + 1, vol.lun]).to_string()),
            ]
        } else {
            vec![
                ("target_portal", GUEST_PORTAL.to_string()),
                ("target_iqn", vol.iqn.clone()),
                ("target_lun", vol.lun.to_string()),
            ]
        };
        for (k, v) in paths.into_iter().chain([
            ("auth_method", "CHAP".into()),
            ("auth_username", vol.user.clone()),
            ("auth_password", vol.password.clone()),
        ]) {
            target_args.push("--property".into());
            target_args.push(format!("{k}={v}"));
        }
        if let Some((user, password)) = &reverse {
            for (k, v) in [
                ("reverse_auth_username", user),
                ("reverse_auth_password", password),
            ] {
                target_args.push("--property".into());
                target_args.push(format!("{k}={v}"));
            }
        }
    }
    let target = cli.json(&target_args.iter().map(String::as_str).collect::<Vec<_>>());
    let target_uuid = target["uuid"].as_str().expect("target uuid").to_string();
    // The guide: no image_source may remain (the CLI refuses to unset a key
    // that is not there, so there is one first).
    cli.ok(&[
        "node",
        "set",
        "--instance-info",
        "image_source=http://example.invalid/image.qcow2",
        &n,
    ]);
    cli.ok(&["node", "unset", "--instance-info", "image_source", &n]);
    cli.ok(&["node", "manage", &n]);
    server.wait_for(&n, "manageable");
    cli.ok(&["node", "provide", &n]);
    server.wait_for(&n, "available");
    let shown = {
        // cinder: the rig's driver answers initialize_connection with our
        // target only while the deploy attaches.
        let _rig = cinder.as_ref().map(|_| RigPointer::set(&vol));
        if bmc.is_some() {
            // As an operator does it: the CLI waits for `active`, which
            // the node reaches once its BMC reports it on.
            cli.ok(&["node", "deploy", &n, "--wait", "300"]);
            cli.json(&["node", "show", &n, "-f", "json"])
        } else {
            cli.ok(&["node", "deploy", &n]);
            server.wait_for(&n, "active")
        }
    };
    assert_eq!(
        shown["driver_internal_info"]["boot_from_volume"],
        json!(target_uuid),
        "{shown:#}"
    );
    if let Some(id) = &cinder_volume {
        // Cinder's connection info became the target's properties.
        let target = cli.json(&["volume", "target", "show", &target_uuid, "-f", "json"]);
        let p = &target["properties"];
        assert!(
            p["target_iqn"] == json!(vol.iqn)
                && p["target_lun"] == json!(vol.lun)
                && p["target_portal"] == json!(GUEST_PORTAL)
                && p["auth_username"] == json!(vol.user)
                && p["auth_password"] == "******",
            "the target's properties are not the rig's answer ({}): {target:#}",
            RigPointer::path().display()
        );
        let v = cinder_volume_status(id);
        assert_eq!(v["status"], "in-use", "{v:#}");
    }
    t.mark("CLI to active");

    // What the firmware will fetch (printed, not judged: the firmware judges).
    let base = format!("http://127.0.0.1:{}/boot", server.port());
    let (status, _) = http("GET", &format!("{base}/boot.ipxe"), &[], None);
    assert_eq!(status, 200, "GET {base}/boot.ipxe");
    let (status, script) = http("GET", &format!("{base}/pxelinux.cfg/{mac_file}"), &[], None);
    assert_eq!(status, 200, "GET {base}/pxelinux.cfg/{mac_file}: {script}");
    eprintln!(
        "--- {storage}: the script ironledger serves for {mac}:\n{}",
        script.replace(&vol.password, "<password>")
    );

    Deployed {
        t,
        server,
        tgt,
        cli,
        vol,
        mac,
        mac_file,
        initiator,
        node: n,
        base,
        cinder_volume,
        reverse,
        bmc: bmc.map(|(m, _)| m),
        work,
        _tmp,
    }
}

/// What a BIOS boot into the deployed volume must show, and must not.
fn bios_san_boot(mac_file: &str, vol: &Volume) -> (Vec<String>, Vec<String>) {
    (
        vec![
            "http://10.0.2.100/boot/boot.ipxe... ok".into(),
            format!("pxelinux.cfg/{mac_file}... ok"),
            "Registered SAN device 0x80".into(),
            "IRONLEDGER-E2E-MBR: boot sector running from drive 0x80".into(),
            format!("IRONLEDGER-E2E-MBR: LBA 1 reads: {}", vol.token),
        ],
        vec!["Failed to attach".into(), "Could not".into()],
    )
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn run_flow(storage: &'static str) {
    let d = deploy(storage);
    let Deployed {
        _tmp,
        work,
        mac,
        mut t,
        server,
        tgt,
        cli,
        vol,
        mac_file,
        initiator,
        node: n,
        base,
        cinder_volume,
        reverse,
        ..
    } = d;
    let machine = Machine {
        work: &work,
        mac: mac.clone(),
        http_port: server.port(),
        iscsi_port: tgt.port,
    };
    let chained = format!("pxelinux.cfg/{mac_file}... ok");
    let fetched = "http://10.0.2.100/boot/boot.ipxe... ok";

    // 4. BIOS.
    let bios = machine.boot("bios", &format!("{storage}-bios"), BIOS_LIMIT);
    let (present, absent) = bios_san_boot(&mac_file, &vol);
    bios.expect(&strs(&present), &strs(&absent));
    t.mark("BIOS boot");

    // 5. UEFI.
    let uefi = machine.boot("uefi", &format!("{storage}-uefi"), UEFI_LIMIT);
    uefi.expect(
        &[
            fetched,
            &chained,
            "Registered SAN device 0x80",
            "IRONLEDGER-E2E-EFI: application running",
            &format!("IRONLEDGER-E2E-EFI: token.txt reads: efi:{}", vol.token),
        ],
        &["Failed to attach", "Could not"],
    );
    t.mark("UEFI boot");

    // 6. The target's password changes behind ironledger's back.
    let tgtd_log_before = fs::read_to_string(&tgt.log).unwrap_or_default().len();
    tgt.set_password(1, &vol.user, &hex(8), Chap::Incoming);
    let bad = machine.boot("bios", &format!("{storage}-wrong-chap"), BIOS_LIMIT);
    bad.expect(
        &[
            &chained,
            "Could not open SAN device: Operation not permitted",
            // Bounded retries (`san_boot_retries = 1` here): one more try
            // 10 s later, then the console says the script gave up, and
            // boot.ipxe hands the machine back to the firmware. The boot
            // is stopped at that line (see BOOT_ENDS).
            "Failed to attach iSCSI volume(s) (attempt 1 of 2), retrying in 10 seconds.",
            "Failed to boot from the iSCSI volume(s) after 2 attempt(s); giving up.",
            "(ironledger: [deploy] san_boot_retries = ",
        ],
        &["Registered SAN device", &vol.token],
    );
    let tgtd_log = fs::read_to_string(&tgt.log).unwrap_or_default();
    let refused = format!("authentication of {initiator} failed");
    assert!(
        tgtd_log[tgtd_log_before.min(tgtd_log.len())..].contains(&refused),
        "tgtd did not log \"{refused}\":\n{tgtd_log}"
    );
    tgt.set_password(1, &vol.user, &vol.password, Chap::Incoming);
    t.mark("wrong-CHAP boot");

    // 6b. Mutual CHAP is checked by the firmware: a target that answers
    // with another secret than the node's reverse_auth_password is refused.
    if let Some((user, password)) = &reverse {
        tgt.set_password(1, user, &hex(8), Chap::Outgoing);
        let bad = machine.boot("bios", &format!("{storage}-wrong-reverse-chap"), BIOS_LIMIT);
        bad.expect(
            &[
                &chained,
                "Could not open SAN device",
                "Failed to boot from the iSCSI volume(s) after 2 attempt(s); giving up.",
            ],
            &["Registered SAN device", &vol.token],
        );
        tgt.set_password(1, user, password, Chap::Outgoing);
        t.mark("wrong-reverse-CHAP boot");
    }

    // 7. Undeploy: no configuration for this MAC any more.
    cli.ok(&["node", "undeploy", &n]);
    let shown = server.wait_for(&n, "available");
    assert!(shown["instance_info"] == json!({}), "{shown:#}");
    let (status, _) = http("GET", &format!("{base}/pxelinux.cfg/{mac_file}"), &[], None);
    assert_eq!(status, 404, "the MAC's script is gone after undeploy");
    if let Some(id) = &cinder_volume {
        let v = cinder_volume_status(id);
        assert_eq!(v["status"], "available", "detached at undeploy: {v:#}");
    }
    t.mark("undeploy");
    let none = machine.boot("bios", &format!("{storage}-undeployed"), BIOS_LIMIT);
    none.expect(
        &[
            fetched,
            &format!("pxelinux.cfg/{mac_file}... No such file or directory"),
            "No configuration found",
        ],
        &["Registered SAN device", "IRONLEDGER-E2E", &vol.token],
    );
    t.mark("boot after undeploy");

    if let Some(id) = &cinder_volume {
        let (status, body) = http(
            "DELETE",
            &format!("{}/volumes/{id}", cinder_endpoint()),
            &[("X-Auth-Token", &cinder_token())],
            None,
        );
        assert!(
            status == 202 || status == 204,
            "delete volume {id}: {status} {body}"
        );
    }
    drop(server);
    drop(tgt);
    eprintln!("=== e2e {storage}: {}", t.report());
}

#[test]
fn external_storage_boots_bios_and_uefi_then_undeploys() {
    run_flow("external");
}

#[test]
fn cinder_storage_boots_bios_and_uefi_then_undeploys() {
    run_flow("cinder");
}

// ---------------------------------------------------------------------------
// The machine started and stopped by its BMC.

/// An `ipmi_sim` of this test's own (`tests/rigs/bmc/ipmi-start.sh`, a rig
/// directory in the work directory, a free loopback UDP port) whose chassis
/// is the machine of the command line in `<dir>/machine`
/// (`tests/rigs/bmc/ipmi-chassis-control.sh`). Stopped, with its machine,
/// when dropped.
struct IpmiRig {
    dir: PathBuf,
    port: u16,
}

impl IpmiRig {
    fn script(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/rigs/bmc")
            .join(name)
    }

    fn start(dir: &Path, password: &str) -> IpmiRig {
        for c in ["ipmi_sim", "ipmitool"] {
            assert!(
                on_path(c),
                "{c} is missing: run .ci/run, which installs Debian's openipmi and ipmitool"
            );
        }
        fs::create_dir_all(dir).unwrap();
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        must(
            Command::new(Self::script("ipmi-start.sh"))
                .env("IRONLEDGER_BMC_RIG", dir)
                .env("IRONLEDGER_IPMI_PORT", port.to_string())
                .env("IRONLEDGER_IPMI_PASSWORD", password),
            "ipmi-start.sh",
        );
        IpmiRig {
            dir: dir.to_path_buf(),
            port,
        }
    }

    fn file(&self, name: &str) -> String {
        fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    /// The machine's pid, while the rig has one started.
    fn machine_pid(&self) -> Option<u32> {
        self.file("machine.pid").trim().parse().ok()
    }
}

impl Drop for IpmiRig {
    fn drop(&mut self) {
        let _ = Command::new(Self::script("ipmi-stop.sh"))
            .env("IRONLEDGER_BMC_RIG", &self.dir)
            .stdin(Stdio::null())
            .status();
    }
}

/// Whether a process runs: it exists and is not a zombie (the rig's machine
/// is orphaned, and a container's init may never reap it).
fn process_alive(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat.rsplit_once(") ").map(|(_, r)| r.chars().next());
    !matches!(state, Some(Some('Z' | 'X')) | None)
}

/// The command line of every live process that contains `needle`.
fn live_processes_with(needle: &str) -> Vec<String> {
    let mut found = vec![];
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) && process_alive(pid) {
            found.push(format!("{pid}: {cmdline}"));
        }
    }
    found
}

/// The whole loop with the machine's BMC (issue 10, item 7): the test does
/// not start QEMU. It writes the machine's command line for an `ipmi_sim` of
/// its own and then does only what an operator does, with the `baremetal`
/// CLI: an `ipmi` node with the BMC's `driver_info`, its port, connector and
/// target, `node deploy --wait`. ironledger's deploy sets the boot device to
/// pxe and powers the node on; the BMC starts the machine, whose firmware
/// boots the node's script into its iSCSI volume. `node undeploy --wait`
/// powers it off: no machine is left.
#[test]
fn ipmi_node_deploys_its_machine_into_its_volume_and_undeploy_stops_it() {
    let mut d = deploy_by_bmc("external");
    let start = Instant::now();
    let bmc = d.bmc.take().expect("deployed by its BMC");
    let rig = &bmc.rig;
    let pid = rig.machine_pid().expect("the deploy started no machine");
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let argv: Vec<String> = String::from_utf8_lossy(&cmdline)
        .split('\0')
        .map(String::from)
        .collect();
    assert!(
        argv[0].ends_with("qemu-system-x86_64")
            && argv.iter().any(|a| a.contains(&d.mac))
            && argv.windows(2).any(|w| w == ["-boot", "order=n"]),
        "the BMC's machine is not the test's QEMU booting from the network: {argv:?}"
    );
    let (log, ended) = watch_serial(&bmc.serial, BIOS_LIMIT, || {
        (!process_alive(pid)).then(|| format!("the machine stopped: {}", rig.file("machine.out")))
    });
    let boot = Boot::seen("external-bmc", "bios", log, ended, start.elapsed());
    let (present, absent) = bios_san_boot(&d.mac_file, &d.vol);
    boot.expect(&strs(&present), &strs(&absent));
    // The booted sector halts: the machine runs until its BMC stops it.
    assert!(process_alive(pid), "the machine stopped by itself");
    let shown = d.cli.json(&["node", "show", &d.node, "-f", "json"]);
    assert_eq!(shown["power_state"], "power on", "{shown:#}");
    d.t.mark("deploy --wait by the BMC, BIOS boot");

    d.cli.ok(&["node", "undeploy", &d.node, "--wait", "300"]);
    let shown = d.cli.json(&["node", "show", &d.node, "-f", "json"]);
    assert_eq!(shown["provision_state"], "available", "{shown:#}");
    assert_eq!(shown["power_state"], "power off", "{shown:#}");
    assert!(!process_alive(pid), "QEMU {pid} outlived the undeploy");
    let left = live_processes_with(&d.mac);
    assert!(left.is_empty(), "processes left after undeploy: {left:?}");
    // What the BMC was asked, in order, as its chassis control recorded it:
    // the node was off already (nothing to power off first), network boot,
    // on; undeploy: off.
    let events = rig.file("events");
    assert_eq!(
        events.lines().collect::<Vec<_>>(),
        ["boot pxe", "power 1", "power 0"]
    );
    d.t.mark("undeploy --wait");
    eprintln!("=== e2e ipmi: {}", d.t.report());
}

/// Multipath with each path's own IQN and LUN, under the real firmware: the
/// first path names a target the portal does not have (as an array whose
/// portals each export the volume under their own name would look from the
/// other portal), the second the real one. iPXE fails over to the second path
/// and boots the volume. Ironic's template writes the first IQN and LUN into
/// every path, so the same node would never boot there.
#[test]
fn per_portal_multipath_boots_through_the_path_with_its_own_iqn_and_lun() {
    let d = deploy_with("external", false, true);
    let machine = Machine {
        work: &d.work,
        mac: d.mac.clone(),
        http_port: d.server.port(),
        iscsi_port: d.tgt.port,
    };
    let (status, script) = http(
        "GET",
        &format!("{}/pxelinux.cfg/{}", d.base, d.mac_file),
        &[],
        None,
    );
    assert_eq!(status, 200, "{script}");
    let portal = GUEST_PORTAL.replace(':', "::");
    let paths = format!(
        "iscsi:{portal}:{:x}:{} iscsi:{portal}:{:x}:{}",
        d.vol.lun + 1,
        absent_iqn(&d.vol),
        d.vol.lun,
        d.vol.iqn
    );
    assert!(
        script
            .lines()
            .any(|l| l.starts_with("sanhook") && l.contains(&paths)),
        "each path with its own IQN and LUN ({paths}):\n{script}"
    );
    let boot = machine.boot("bios", "external-multipath", BIOS_LIMIT);
    let (present, _) = bios_san_boot(&d.mac_file, &d.vol);
    boot.expect(&strs(&present), &["Failed to attach", "giving up"]);
    let tgtd_log = fs::read_to_string(&d.tgt.log).unwrap_or_default();
    eprintln!("tgtd log:\n{tgtd_log}");
}
