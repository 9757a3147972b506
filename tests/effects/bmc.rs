//! The BMC clients against real BMC emulators, the project's rigs under
//! `tests/rigs/bmc/`: sushy-tools' Redfish emulator (fake driver) and
//! OpenIPMI's `ipmi_sim`. Each test starts emulators of its own (a temporary
//! rig directory, a free loopback port), so no two tests share power state.
//! Every effect is read back through the emulator — its Redfish resource, its
//! access log, the chassis state files of `ipmi_sim` — not only through the
//! client under test.
//!
//! Needs: python3 with venv (the rig makes its virtualenv), `ipmi_sim`
//! (Debian `openipmi`) and `ipmitool`; `.ci/run` installs them. Tests fail,
//! never skip, when a rig cannot start.

use crate::common;

use common::bmc::{free_port, system_id, wait, Captured, Rig, PASSWORD};

use ironledger::domain::bmc_access::{self, Protocol};
use ironledger::effects::bmc::access;
use ironledger::effects::bmc::ipmi::{IpmiClient, IpmiConfig};
use ironledger::effects::bmc::poll::set_power_and_wait;
use ironledger::effects::bmc::redfish::{AuthType, RedfishClient, RedfishConfig, VerifyCa};
use ironledger::effects::bmc::{
    Bmc, BmcError, BmcErrorKind, BootDevice, BootMode, PowerAction, PowerState, Secret,
};
use ironledger::effects::process_manager::{PmConfig, ProcessManager};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

fn redfish(rig: &Rig, system: Option<u32>, auth: AuthType) -> RedfishClient {
    let mut c = RedfishConfig::new(rig.addr.clone());
    c.system_id = system.map(system_id);
    c.username = Some("admin".into());
    c.password = Some(Secret::new(PASSWORD));
    c.auth_type = auth;
    c.timeout = Duration::from_secs(10);
    RedfishClient::new(c).unwrap()
}

fn ipmi(port: u16, password: &str) -> IpmiClient {
    let mut c = IpmiConfig::new("127.0.0.1");
    c.port = Some(port);
    c.username = Some("admin".into());
    c.password = Some(Secret::new(password));
    c.retries = 1;
    c.retry_interval_secs = 1;
    c.timeout = Duration::from_secs(20);
    c.soft_off_wait = wait();
    // ipmi_sim does not answer ipmitool's discovery of cipher suites: name
    // the one it speaks, as an operator would for such a BMC.
    c.cipher_suite = Some(3);
    IpmiClient::new(c)
}

fn assert_no_secret(e: &BmcError) {
    let shown = format!("{e} {e:?}");
    assert!(
        !shown.contains(PASSWORD),
        "the password leaked into an error: {shown}"
    );
}

#[tokio::test]
async fn redfish_power_changes_the_emulated_machine() {
    let logs = Captured::default();
    let _g = logs.install();
    let rig = Rig::redfish(1, false, false);
    // One system: redfish_system_id may be left out.
    let bmc = redfish(&rig, None, AuthType::Basic);
    assert_eq!(bmc.power_state().await.unwrap(), PowerState::Off);

    set_power_and_wait(&bmc, PowerAction::PowerOn, wait())
        .await
        .unwrap();
    assert_eq!(rig.system(1).await["PowerState"], "On");

    set_power_and_wait(&bmc, PowerAction::Reboot, wait())
        .await
        .unwrap();
    assert_eq!(rig.system(1).await["PowerState"], "On");

    set_power_and_wait(&bmc, PowerAction::SoftPowerOff, wait())
        .await
        .unwrap();
    assert_eq!(rig.system(1).await["PowerState"], "Off");

    let resets: Vec<Value> = rig
        .access_log()
        .into_iter()
        .filter(|e| {
            e["path"]
                .as_str()
                .unwrap()
                .ends_with("/Actions/ComputerSystem.Reset")
        })
        .map(|e| e["body"]["ResetType"].clone())
        .collect();
    assert_eq!(resets, ["On", "ForceRestart", "GracefulShutdown"]);
    // The reset went to the target the system resource advertises.
    let target = rig.system(1).await["Actions"]["#ComputerSystem.Reset"]["target"].clone();
    assert!(rig
        .access_log()
        .iter()
        .any(|e| e["path"] == target && e["method"] == "POST"));
    assert!(
        logs.text().contains("redfish request"),
        "the client logs its calls"
    );
    assert!(
        !logs.text().contains(PASSWORD),
        "the password is in the logs"
    );
}

#[tokio::test]
async fn redfish_boot_device_persistent_and_once() {
    let rig = Rig::redfish(2, false, false);
    let bmc = redfish(&rig, Some(2), AuthType::Basic);

    bmc.set_boot_device(BootDevice::Pxe, true, None)
        .await
        .unwrap();
    assert_eq!(
        rig.system(2).await["Boot"]["BootSourceOverrideTarget"],
        "Pxe"
    );
    assert_eq!(
        rig.system(1).await["Boot"]["BootSourceOverrideTarget"],
        "Hdd",
        "only system 2 changed"
    );
    let info = bmc.boot_device().await.unwrap();
    assert_eq!(info.device, Some(BootDevice::Pxe));
    assert_eq!(info.persistent, Some(true));

    bmc.set_boot_device(BootDevice::Cdrom, false, Some(BootMode::Uefi))
        .await
        .unwrap();
    let sys = rig.system(2).await;
    assert_eq!(sys["Boot"]["BootSourceOverrideTarget"], "Cd");
    assert_eq!(sys["Boot"]["BootSourceOverrideMode"], "UEFI");

    bmc.set_boot_device(BootDevice::Disk, true, Some(BootMode::Bios))
        .await
        .unwrap();
    assert_eq!(
        rig.system(2).await["Boot"]["BootSourceOverrideMode"],
        "Legacy"
    );

    // The fake driver stores every override as Continuous: what was asked is
    // read from the emulator's access log. As Ironic does, the persistence
    // is sent only where it differs from what the system reports (so not
    // for a persistent set on this emulator), and the mode likewise.
    let patches: Vec<Value> = rig
        .access_log()
        .into_iter()
        .filter(|e| e["method"] == "PATCH")
        .map(|e| e["body"]["Boot"].clone())
        .collect();
    assert_eq!(patches.len(), 3);
    assert!(
        patches[0].get("BootSourceOverrideEnabled").is_none(),
        "{:?}",
        patches[0]
    );
    assert!(patches[0].get("BootSourceOverrideMode").is_none());
    assert_eq!(patches[1]["BootSourceOverrideEnabled"], "Once");
    assert_eq!(patches[1]["BootSourceOverrideTarget"], "Cd");
    assert_eq!(patches[2]["BootSourceOverrideTarget"], "Hdd");

    // The emulator allows Pxe, Cd, Hdd, UefiHttp: no BiosSetup.
    assert_eq!(
        bmc.supported_boot_devices().await.unwrap(),
        [BootDevice::Pxe, BootDevice::Disk, BootDevice::Cdrom]
    );
    let e = bmc
        .set_boot_device(BootDevice::Bios, true, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind, BmcErrorKind::Unsupported, "{e}");
    assert!(!e.transient);
    assert_eq!(
        rig.access_log()
            .iter()
            .filter(|e| e["method"] == "PATCH")
            .count(),
        3,
        "nothing sent"
    );
}

#[tokio::test]
async fn redfish_failures_are_clear_and_keep_the_password() {
    let logs = Captured::default();
    let _g = logs.install();
    let rig = Rig::redfish(2, false, false);

    // Unreachable: a port nothing listens on.
    let mut c = RedfishConfig::new(format!("http://127.0.0.1:{}", free_port(false)));
    c.username = Some("admin".into());
    c.password = Some(Secret::new(PASSWORD));
    c.auth_type = AuthType::Basic;
    let e = RedfishClient::new(c)
        .unwrap()
        .power_state()
        .await
        .unwrap_err();
    assert_eq!(e.kind, BmcErrorKind::Unreachable, "{e}");
    assert!(e.transient);
    assert!(
        e.to_string().contains("power state") && e.to_string().contains("cannot reach the BMC"),
        "{e}"
    );
    assert_no_secret(&e);

    // Wrong credentials.
    let mut c = RedfishConfig::new(rig.addr.clone());
    c.system_id = Some(system_id(1));
    c.username = Some("admin".into());
    c.password = Some(Secret::new(format!("{PASSWORD}-wrong")));
    c.auth_type = AuthType::Basic;
    let e = RedfishClient::new(c)
        .unwrap()
        .set_power(PowerAction::PowerOn)
        .await
        .unwrap_err();
    assert_eq!(e.kind, BmcErrorKind::Unauthorized, "{e}");
    assert!(!e.transient);
    assert!(
        e.to_string().contains("refused the credentials (HTTP 401)"),
        "{e}"
    );
    assert!(!e.to_string().contains("-wrong"), "{e}");
    assert_no_secret(&e);

    // An unknown system.
    let mut c = RedfishConfig::new(rig.addr.clone());
    c.system_id = Some("no-such-system".into());
    c.username = Some("admin".into());
    c.password = Some(Secret::new(PASSWORD));
    let e = RedfishClient::new(c)
        .unwrap()
        .power_state()
        .await
        .unwrap_err();
    assert_eq!(e.kind, BmcErrorKind::NotFound, "{e}");
    assert!(
        e.to_string().contains("no-such-system") && e.to_string().contains(&system_id(2)),
        "{e}"
    );
    assert_no_secret(&e);

    // Two systems and no redfish_system_id.
    let e = redfish(&rig, None, AuthType::Basic)
        .power_state()
        .await
        .unwrap_err();
    assert_eq!(e.kind, BmcErrorKind::Config, "{e}");
    assert!(
        e.to_string().contains("redfish_system_id is required"),
        "{e}"
    );

    // No power change reached the emulator.
    assert_eq!(rig.system(1).await["PowerState"], "Off");
    assert!(
        !logs.text().contains(PASSWORD),
        "the password is in the logs"
    );
    assert!(!logs.text().contains("-wrong"));
}

#[tokio::test]
async fn redfish_session_auth() {
    let rig = Rig::redfish(1, true, false);
    for auth in [AuthType::Session, AuthType::Auto] {
        let bmc = redfish(&rig, None, auth);
        bmc.set_boot_device(BootDevice::Pxe, true, None)
            .await
            .unwrap();
        assert_eq!(bmc.power_state().await.unwrap(), PowerState::Off);
        bmc.close().await;
    }
    let log = rig.access_log();
    let sessions = log
        .iter()
        .filter(|e| e["method"] == "POST" && e["path"].as_str().unwrap().ends_with("/Sessions"))
        .count();
    assert_eq!(sessions, 2, "one session per client: {log:?}");
    assert!(
        log.iter().all(|e| e["auth"] != "basic"),
        "a session client sent basic auth: {log:?}"
    );
    assert!(log
        .iter()
        .any(|e| e["method"] == "PATCH" && e["auth"] == "token"));
    assert_eq!(
        log.iter()
            .filter(|e| e["method"] == "DELETE" && e["status"] == 204)
            .count(),
        2,
        "logged out"
    );

    // A rejected session login.
    let mut c = RedfishConfig::new(rig.addr.clone());
    c.username = Some("admin".into());
    c.password = Some(Secret::new("not-it"));
    c.auth_type = AuthType::Session;
    let e = RedfishClient::new(c)
        .unwrap()
        .power_state()
        .await
        .unwrap_err();
    assert_eq!(e.kind, BmcErrorKind::Unauthorized, "{e}");
    assert_no_secret(&e);

    // Without a SessionService: `session` is refused, `auto` falls back to basic.
    let plain = Rig::redfish(1, false, false);
    let e = redfish(&plain, None, AuthType::Session)
        .power_state()
        .await
        .unwrap_err();
    assert_eq!(e.kind, BmcErrorKind::Unsupported, "{e}");
    assert!(e.to_string().contains("no SessionService"), "{e}");
    assert_eq!(
        redfish(&plain, None, AuthType::Auto)
            .power_state()
            .await
            .unwrap(),
        PowerState::Off
    );
    assert!(plain
        .access_log()
        .iter()
        .any(|e| e["auth"] == "basic" && e["status"] == 200));
}

#[tokio::test]
async fn redfish_tls_is_verified() {
    let rig = Rig::redfish(1, false, true);
    assert!(rig.addr.starts_with("https://"));
    let before = rig.access_log().len(); // the start script's own check
                                         // Verification on by default: the self-signed certificate is refused.
    let e = redfish(&rig, None, AuthType::Basic)
        .power_state()
        .await
        .unwrap_err();
    assert_eq!(e.kind, BmcErrorKind::Unreachable, "{e}");
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
    assert_eq!(rig.access_log().len(), before, "no request got through");
    // A bare host means https; the CA bundle makes it trusted.
    for verify in [VerifyCa::Bundle(rig.cert()), VerifyCa::No] {
        let mut c = RedfishConfig::new(format!("127.0.0.1:{}", rig.port));
        c.username = Some("admin".into());
        c.password = Some(Secret::new(PASSWORD));
        c.auth_type = AuthType::Basic;
        c.verify_ca = verify;
        assert_eq!(
            RedfishClient::new(c).unwrap().power_state().await.unwrap(),
            PowerState::Off
        );
    }
    assert_eq!(VerifyCa::parse("False"), VerifyCa::No);
    assert_eq!(
        VerifyCa::parse("/etc/ssl/bmc.pem"),
        VerifyCa::Bundle("/etc/ssl/bmc.pem".into())
    );
}

#[tokio::test]
async fn ipmi_power_changes_the_emulated_chassis() {
    let rig = Rig::ipmi();
    let bmc = ipmi(rig.port, PASSWORD);
    assert_eq!(bmc.power_state().await.unwrap(), PowerState::Off);

    set_power_and_wait(&bmc, PowerAction::PowerOn, wait())
        .await
        .unwrap();
    assert_eq!(rig.file("power"), "1");

    set_power_and_wait(&bmc, PowerAction::Reboot, wait())
        .await
        .unwrap();
    assert_eq!(rig.file("power"), "1");

    set_power_and_wait(&bmc, PowerAction::SoftReboot, wait())
        .await
        .unwrap();
    set_power_and_wait(&bmc, PowerAction::SoftPowerOff, wait())
        .await
        .unwrap();
    assert_eq!(rig.file("power"), "0");
    set_power_and_wait(&bmc, PowerAction::PowerOn, wait())
        .await
        .unwrap();
    set_power_and_wait(&bmc, PowerAction::PowerOff, wait())
        .await
        .unwrap();
    assert_eq!(rig.file("power"), "0");

    // What ipmi_sim did, in order: on; cycle (off, then on 1 s later); soft
    // off, on; soft off; on; off.
    let events: Vec<String> = rig.file("events").lines().map(String::from).collect();
    assert_eq!(
        events,
        [
            "power 1",
            "power 0",
            "power 1",
            "shutdown 1",
            "power 1",
            "shutdown 1",
            "power 1",
            "power 0"
        ]
    );
}

#[tokio::test]
async fn ipmi_boot_device() {
    let rig = Rig::ipmi();
    let bmc = ipmi(rig.port, PASSWORD);
    for (device, sim) in [
        (BootDevice::Pxe, "pxe"),
        (BootDevice::Cdrom, "cdrom"),
        (BootDevice::Bios, "bios"),
        (BootDevice::Disk, "default"),
    ] {
        bmc.set_boot_device(device, true, None).await.unwrap();
        assert_eq!(rig.file("boot"), sim);
        assert_eq!(bmc.boot_device().await.unwrap().device, Some(device));
    }
    bmc.set_boot_device(BootDevice::Pxe, false, None)
        .await
        .unwrap();
    assert_eq!(rig.file("boot"), "pxe");
    // ipmi_sim keeps the device only: it answers "next boot only" whatever
    // was sent, so persistence is checked on the arguments (unit tests of
    // ipmi::bootdev_args), not read back here.
    assert_eq!(bmc.boot_device().await.unwrap().persistent, Some(false));
}

#[tokio::test]
async fn ipmi_failures_are_clear_and_keep_the_password() {
    let rig = Rig::ipmi();
    let wrong = format!("{PASSWORD}-wrong");
    let e = ipmi(rig.port, &wrong)
        .set_power(PowerAction::PowerOn)
        .await
        .unwrap_err();
    assert_eq!(e.kind, BmcErrorKind::Unauthorized, "{e}");
    assert!(!e.transient);
    assert!(
        e.to_string().starts_with("IPMI power on of 127.0.0.1:"),
        "{e}"
    );
    assert!(!e.to_string().contains(&wrong));
    assert_no_secret(&e);
    assert_eq!(rig.file("power"), "0", "nothing reached the chassis");

    let e = ipmi(free_port(true), PASSWORD)
        .power_state()
        .await
        .unwrap_err();
    assert_eq!(e.kind, BmcErrorKind::Unreachable, "{e}");
    assert!(e.transient);
    assert_no_secret(&e);
}

/// While ipmitool runs, its command line and environment (what `ps` and
/// `/proc` show any user) hold no password; it reads it from a 0600 file
/// that is gone once the call ends.
#[tokio::test]
async fn ipmi_password_never_on_the_command_line() {
    let port = free_port(true); // nothing answers: the call lasts its retries
    let mut c = IpmiConfig::new("127.0.0.1");
    c.port = Some(port);
    c.username = Some("admin".into());
    c.password = Some(Secret::new(PASSWORD));
    c.retries = 3;
    c.retry_interval_secs = 1;
    let bmc = IpmiClient::new(c);
    let call = tokio::spawn(async move { bmc.power_state().await });

    let needle = format!("{port}");
    let mut seen = None;
    for _ in 0..200 {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if args.first().is_some_and(|a| a.ends_with("ipmitool")) && args.contains(&needle) {
                let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
                seen = Some((args, environ));
                break;
            }
        }
        if seen.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (args, environ) = seen.expect("the ipmitool child was never seen in /proc");
    assert!(
        !args.iter().any(|a| a.contains(PASSWORD)),
        "password on the command line: {args:?}"
    );
    assert!(
        !String::from_utf8_lossy(&environ).contains(PASSWORD),
        "password in the environment"
    );
    let file = PathBuf::from(&args[args.iter().position(|a| a == "-f").unwrap() + 1]);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let e = call.await.unwrap().unwrap_err();
    assert_no_secret(&e);
    assert!(!file.exists(), "the password file outlived the call");
}

/// A node enrolled through the API with its BMC's `driver_info`: the clients
/// built from its parsed access (`domain::bmc_access` → `effects::bmc::access`)
/// power the emulated machines, read back through the emulators. This proves
/// the conversion end to end, without the deploy saga.
#[tokio::test]
async fn clients_built_from_a_nodes_driver_info_power_the_emulators() {
    let api = common::api::start(common::memory().await).await;
    let rf_rig = Rig::redfish(1, true, false);
    let ipmi_rig = Rig::ipmi();
    let cases = [
        (
            serde_json::json!({"driver": "redfish", "driver_info": {
                "redfish_address": rf_rig.addr, "redfish_username": "admin",
                "redfish_password": PASSWORD, "redfish_auth_type": "session"}}),
            "redfish",
        ),
        (
            serde_json::json!({"driver": "ipmi", "driver_info": {
                "ipmi_address": "127.0.0.1", "ipmi_port": ipmi_rig.port.to_string(),
                "ipmi_username": "admin", "ipmi_password": PASSWORD,
                "ipmi_priv_level": "ADMINISTRATOR"}}),
            "ipmi",
        ),
    ];
    for (body, kind) in cases {
        let a = api.post("/v1/nodes", body).await;
        assert_eq!(a.status, reqwest::StatusCode::CREATED, "{:?}", a.body);
        assert!(!a.body.to_string().contains(PASSWORD));
        let uuid = uuid::Uuid::parse_str(a.body["uuid"].as_str().unwrap()).unwrap();
        let node = api.engine.load_node(uuid).await.unwrap();
        let protocol = Protocol::of_interface(node.interface("power")).unwrap();
        let parsed = bmc_access::parse(protocol, &node.id(), &node.driver_info, |_| false).unwrap();
        assert!(!format!("{parsed:?}").contains(PASSWORD), "{parsed:?}");
        let bmc = access::client(&parsed).unwrap();
        assert_eq!(bmc.power_state().await.unwrap(), PowerState::Off, "{kind}");
        set_power_and_wait(bmc.as_ref(), PowerAction::PowerOn, wait())
            .await
            .unwrap();
        bmc.set_boot_device(BootDevice::Pxe, true, None)
            .await
            .unwrap();
        if kind == "redfish" {
            let sys = rf_rig.system(1).await;
            assert_eq!(sys["PowerState"], "On");
            assert_eq!(sys["Boot"]["BootSourceOverrideTarget"], "Pxe");
            // The session the driver_info asked for was used.
            assert!(rf_rig
                .access_log()
                .iter()
                .any(|r| r.to_string().contains("Sessions")));
        } else {
            assert_eq!(ipmi_rig.file("power"), "1");
        }
        set_power_and_wait(bmc.as_ref(), PowerAction::PowerOff, wait())
            .await
            .unwrap();
        if kind == "redfish" {
            assert_eq!(rf_rig.system(1).await["PowerState"], "Off");
        } else {
            assert_eq!(ipmi_rig.file("power"), "0");
        }
    }
}

/// Whether a process runs: it exists and is not a zombie (the rig's machine
/// is orphaned, and a container's init may never reap it).
fn process_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat.rsplit_once(") ").and_then(|(_, r)| r.chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

/// With a `machine` command line in its directory, the IPMI rig's chassis is
/// that process (here a shell that records its arguments, then sleeps; the
/// e2e test puts QEMU there): power on starts it with the boot order of the
/// boot device, power cycle and soft reboot start a new one, power status is
/// whether it lives, power off kills it.
#[tokio::test]
async fn ipmi_rig_chassis_is_the_machine_behind_it() {
    let rig = Rig::ipmi();
    let dir = rig.dir.path();
    let args_file = dir.join("args");
    let script = format!("echo \"$*\" >>'{}'; exec sleep 600", args_file.display());
    std::fs::write(dir.join("machine"), format!("sh\n-c\n{script}\nmachine\n")).unwrap();
    let pid = || -> Option<u32> { rig.file("machine.pid").parse().ok() };
    let args = || -> Vec<String> {
        std::fs::read_to_string(&args_file)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    };
    let bmc = ipmi(rig.port, PASSWORD);
    assert_eq!(bmc.power_state().await.unwrap(), PowerState::Off);
    assert_eq!(pid(), None, "nothing runs before power on");

    // The boot device the rig starts with is disk.
    set_power_and_wait(&bmc, PowerAction::PowerOn, wait())
        .await
        .unwrap();
    let first = pid().expect("power on started no machine");
    assert!(process_alive(first));
    assert_eq!(args(), ["-boot order=c"]);

    // Power cycle: off, then a new machine, from the network now.
    bmc.set_boot_device(BootDevice::Pxe, true, None)
        .await
        .unwrap();
    set_power_and_wait(&bmc, PowerAction::Reboot, wait())
        .await
        .unwrap();
    let second = pid().expect("no machine after power cycle");
    assert!(second != first && !process_alive(first) && process_alive(second));
    assert_eq!(args(), ["-boot order=c", "-boot order=n"]);

    // Soft reboot: soft off (the machine is killed), then on.
    set_power_and_wait(&bmc, PowerAction::SoftReboot, wait())
        .await
        .unwrap();
    let third = pid().expect("no machine after soft reboot");
    assert!(third != second && !process_alive(second) && process_alive(third));

    // A machine that stops by itself reads as off.
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &third.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert_eq!(bmc.power_state().await.unwrap(), PowerState::Off);

    set_power_and_wait(&bmc, PowerAction::PowerOn, wait())
        .await
        .unwrap();
    let fourth = pid().expect("no machine after power on");
    set_power_and_wait(&bmc, PowerAction::PowerOff, wait())
        .await
        .unwrap();
    assert!(!process_alive(fourth), "the machine outlived power off");
    assert_eq!(pid(), None);
    assert_eq!(bmc.power_state().await.unwrap(), PowerState::Off);
    assert_eq!(args().len(), 4, "{:?}", args());
}

/// A process manager on `api`'s engine (power waits shortened to the rig's
/// pace), started once the test has looked at the pending requests.
fn power_manager(api: &common::api::Api) -> Arc<ProcessManager> {
    let root = tempfile::tempdir().unwrap().keep();
    let mut config = PmConfig::new(root, None);
    config.poll = Duration::from_millis(50);
    config.sweep = Duration::from_millis(300);
    config.step_backoff = Duration::from_millis(100);
    config.step_attempts = 2;
    config.power_wait = wait();
    ProcessManager::new(api.engine.clone(), config).unwrap()
}

/// Reads the node until no power change is pending (bounded, so a broken
/// manager fails the test rather than hanging it).
async fn settled(api: &common::api::Api, uuid: &str) -> Value {
    for _ in 0..600 {
        let n = api.get(&format!("/v1/nodes/{uuid}")).await;
        if n.body["target_power_state"].is_null() {
            return n.body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the power change of {uuid} never finished");
}

async fn put_power(api: &common::api::Api, uuid: &str, target: &str) -> common::api::Answer {
    api.put(
        &format!("/v1/nodes/{uuid}/states/power"),
        serde_json::json!({ "target": target }),
    )
    .await
}

/// `PUT …/states/power` on a redfish and an ipmi node over real HTTP: the
/// request is accepted (202) and shown (`target_power_state`), a second one
/// meanwhile is Ironic's NodeLocked (409); the process manager — started only
/// afterwards, so it resumes the request from the log as after a crash —
/// changes the emulated machine's power (read back from the emulator) and
/// the node shows the new `power_state`. Then off and a reboot.
#[tokio::test]
async fn power_requests_over_http_drive_the_emulators() {
    let api = common::api::start(common::memory().await).await;
    let rf_rig = Rig::redfish(1, false, false);
    let ipmi_rig = Rig::ipmi();
    let rf = api
        .post(
            "/v1/nodes",
            serde_json::json!({"driver": "redfish", "driver_info": {
                "redfish_address": rf_rig.addr, "redfish_username": "admin",
                "redfish_password": PASSWORD, "redfish_auth_type": "basic"}}),
        )
        .await;
    let ipmi = api
        .post(
            "/v1/nodes",
            serde_json::json!({"driver": "ipmi", "driver_info": {
                "ipmi_address": "127.0.0.1", "ipmi_port": ipmi_rig.port.to_string(),
                "ipmi_username": "admin", "ipmi_password": PASSWORD, "ipmi_cipher_suite": "3"}}),
        )
        .await;
    let rf = rf.body["uuid"].as_str().unwrap().to_string();
    let ipmi = ipmi.body["uuid"].as_str().unwrap().to_string();
    let redfish_power = || async { rf_rig.system(1).await["PowerState"].clone() };

    for uuid in [&rf, &ipmi] {
        let a = put_power(&api, uuid, "power on").await;
        assert_eq!(a.status, reqwest::StatusCode::ACCEPTED, "{:?}", a.body);
        let n = api.get(&format!("/v1/nodes/{uuid}")).await.body;
        assert_eq!(n["target_power_state"], "power on");
        assert!(n["power_state"].is_null(), "{n}");
        let again = put_power(&api, uuid, "power off").await;
        assert_eq!(again.status, reqwest::StatusCode::CONFLICT);
        assert!(
            again
                .error()
                .contains(&format!("Node {uuid} is locked by host")),
            "{}",
            again.error()
        );
    }
    assert_eq!(redfish_power().await, "Off", "nothing asked of the BMC yet");
    assert_eq!(ipmi_rig.file("power"), "0");

    power_manager(&api).spawn();
    for uuid in [&rf, &ipmi] {
        let n = settled(&api, uuid).await;
        assert_eq!(n["power_state"], "power on", "{n}");
        assert!(n["last_error"].is_null(), "{n}");
        assert!(n["driver_internal_info"]["last_power_state_change"].is_string());
    }
    assert_eq!(redfish_power().await, "On");
    assert_eq!(ipmi_rig.file("power"), "1");

    // Already on: power on asks the BMC for no reset.
    let resets = |rig: &Rig| -> Vec<String> {
        rig.access_log()
            .iter()
            .filter(|r| r.to_string().contains("Reset"))
            .map(|r| r.to_string())
            .collect()
    };
    let before = resets(&rf_rig).len();
    assert_eq!(put_power(&api, &rf, "power on").await.status, 202);
    assert_eq!(settled(&api, &rf).await["power_state"], "power on");
    assert_eq!(resets(&rf_rig).len(), before, "{:?}", resets(&rf_rig));

    for uuid in [&rf, &ipmi] {
        assert_eq!(put_power(&api, uuid, "power off").await.status, 202);
        assert_eq!(settled(&api, uuid).await["power_state"], "power off");
    }
    assert_eq!(redfish_power().await, "Off");
    assert_eq!(ipmi_rig.file("power"), "0");

    // A reboot of a running node: off, then on, as Ironic does it.
    for uuid in [&rf, &ipmi] {
        assert_eq!(put_power(&api, uuid, "power on").await.status, 202);
        settled(&api, uuid).await;
        assert_eq!(put_power(&api, uuid, "rebooting").await.status, 202);
        let n = settled(&api, uuid).await;
        assert_eq!(n["power_state"], "power on", "{n}");
        assert!(n["last_error"].is_null(), "{n}");
    }
    assert_eq!(redfish_power().await, "On");
    assert_eq!(ipmi_rig.file("power"), "1");
    let tail: Vec<String> = resets(&rf_rig).into_iter().rev().take(2).collect();
    assert!(
        tail[1].contains("ForceOff") && tail[0].contains("\"On\""),
        "{tail:?}"
    );
    let events: Vec<String> = ipmi_rig.file("events").lines().map(String::from).collect();
    assert!(!events.is_empty());
    for uuid in [&rf, &ipmi] {
        let n = api.get(&format!("/v1/nodes/{uuid}")).await;
        assert!(!n.body.to_string().contains(PASSWORD));
    }
}

/// A BMC that cannot be reached, and BMCs that refuse the credentials: the
/// request ends, `target_power_state` cleared, with `last_error` naming the
/// power change and the BMC action that failed, and no password in the
/// answer or the logs.
#[tokio::test]
async fn power_failures_end_in_last_error_without_the_password() {
    let logs = Captured::default();
    let _guard = logs.install();
    let api = common::api::start(common::memory().await).await;
    let rf_rig = Rig::redfish(1, false, false);
    let ipmi_rig = Rig::ipmi();
    let wrong = format!("{PASSWORD}-wrong");
    let cases = [
        (
            serde_json::json!({"driver": "redfish", "driver_info": {
                "redfish_address": format!("http://127.0.0.1:{}", free_port(false)),
                "redfish_username": "admin", "redfish_password": PASSWORD}}),
            "Redfish",
            "unreachable",
        ),
        (
            serde_json::json!({"driver": "redfish", "driver_info": {
                "redfish_address": rf_rig.addr, "redfish_username": "admin",
                "redfish_password": wrong, "redfish_auth_type": "basic"}}),
            "Redfish",
            "credentials",
        ),
        (
            serde_json::json!({"driver": "ipmi", "driver_info": {
                "ipmi_address": "127.0.0.1", "ipmi_port": ipmi_rig.port.to_string(),
                "ipmi_username": "admin", "ipmi_password": wrong, "ipmi_cipher_suite": "3"}}),
            "IPMI",
            "credentials",
        ),
    ];
    let mut nodes = vec![];
    for (body, protocol, _) in &cases {
        let a = api.post("/v1/nodes", body.clone()).await;
        let uuid = a.body["uuid"].as_str().unwrap().to_string();
        assert_eq!(put_power(&api, &uuid, "power on").await.status, 202);
        nodes.push((uuid, *protocol));
    }
    power_manager(&api).spawn();
    for ((uuid, protocol), (_, _, why)) in nodes.iter().zip(&cases) {
        let n = settled(&api, uuid).await;
        let err = n["last_error"].as_str().unwrap_or_default();
        assert!(
            err.starts_with("Failed to change power state to 'power on' by 'power on'. Error: ")
                && err.contains(&format!("{protocol} power sta")),
            "{why}: {err}"
        );
        assert!(!n.to_string().contains(PASSWORD), "{why}: {n}");
        assert_ne!(n["power_state"], "power on", "{why}: {n}");
    }
    assert_eq!(rf_rig.system(1).await["PowerState"], "Off");
    assert_eq!(ipmi_rig.file("power"), "0");
    // A failed request no longer holds the node: the next one is accepted.
    assert_eq!(put_power(&api, &nodes[0].0, "power off").await.status, 202);
    assert!(!logs.text().contains(PASSWORD), "a password in the logs");
}

fn boot_device_path(uuid: &str) -> String {
    format!("/v1/nodes/{uuid}/management/boot_device")
}

/// `PUT`/`GET …/management/boot_device` over real HTTP on a redfish and an
/// ipmi node: the BMC is asked at once (read back from the emulator, not the
/// client), the answer is 204 only after it took the setting, `GET` reads the
/// BMC, and the history records `BootDeviceSet`. A device the interface does
/// not take reaches no BMC.
#[tokio::test]
async fn boot_device_over_http_drives_the_emulators() {
    let api = common::api::start(common::memory().await).await;
    let rf_rig = Rig::redfish(1, false, false);
    let ipmi_rig = Rig::ipmi();
    let rf = api
        .post(
            "/v1/nodes",
            serde_json::json!({"driver": "redfish", "driver_info": {
                "redfish_address": rf_rig.addr, "redfish_username": "admin",
                "redfish_password": PASSWORD, "redfish_auth_type": "basic"}}),
        )
        .await;
    let ipmi = api
        .post(
            "/v1/nodes",
            serde_json::json!({"driver": "ipmi", "driver_info": {
                "ipmi_address": "127.0.0.1", "ipmi_port": ipmi_rig.port.to_string(),
                "ipmi_username": "admin", "ipmi_password": PASSWORD, "ipmi_cipher_suite": "3"}}),
        )
        .await;
    let rf = rf.body["uuid"].as_str().unwrap().to_string();
    let ipmi = ipmi.body["uuid"].as_str().unwrap().to_string();

    // Redfish: network boot, persistently.
    assert_eq!(
        rf_rig.system(1).await["Boot"]["BootSourceOverrideTarget"],
        "Hdd"
    );
    let a = api
        .put(
            &boot_device_path(&rf),
            serde_json::json!({"boot_device": "pxe", "persistent": true}),
        )
        .await;
    assert_eq!(a.status, 204, "{:?}", a.body);
    let boot = rf_rig.system(1).await["Boot"].clone();
    assert_eq!(boot["BootSourceOverrideTarget"], "Pxe", "{boot}");
    assert_eq!(boot["BootSourceOverrideEnabled"], "Continuous", "{boot}");
    let patches: Vec<Value> = rf_rig
        .access_log()
        .into_iter()
        .filter(|e| e["method"] == "PATCH")
        .map(|e| e["body"].clone())
        .collect();
    // The real Ironic's body (recording 13): the emulator reports
    // Continuous already, so no BootSourceOverrideEnabled; its HttpBootUri
    // is cleared.
    assert_eq!(
        patches,
        [
            serde_json::json!({"Boot": {"BootSourceOverrideTarget": "Pxe",
                                     "HttpBootUri": null}})
        ]
    );
    let a = api.get(&boot_device_path(&rf)).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(
        a.body,
        serde_json::json!({"boot_device": "pxe", "persistent": true})
    );
    // Disk for the next boot only: what was sent is in the access log (the
    // fake driver stores every override as Continuous).
    let a = api
        .put(
            &boot_device_path(&rf),
            serde_json::json!({"boot_device": "disk"}),
        )
        .await;
    assert_eq!(a.status, 204, "{:?}", a.body);
    assert_eq!(
        rf_rig.system(1).await["Boot"]["BootSourceOverrideTarget"],
        "Hdd"
    );
    let last_patch = rf_rig
        .access_log()
        .into_iter()
        .rfind(|e| e["method"] == "PATCH")
        .unwrap();
    assert_eq!(
        last_patch["body"]["Boot"]["BootSourceOverrideEnabled"],
        "Once"
    );
    assert_eq!(
        api.get(&boot_device_path(&rf)).await.body["boot_device"],
        "disk"
    );

    // A device Redfish has no target for: Ironic's text, no BMC call.
    let calls = rf_rig.access_log().len();
    let a = api
        .put(
            &boot_device_path(&rf),
            serde_json::json!({"boot_device": "safe"}),
        )
        .await;
    assert_eq!(a.status, 400, "{:?}", a.body);
    assert_eq!(a.error(), "Invalid boot device safe specified.");
    assert_eq!(rf_rig.access_log().len(), calls, "the BMC was not asked");
    // supported asks no BMC either (as Ironic: its recorded calls are none).
    let a = api
        .get(&format!("{}/supported", boot_device_path(&rf)))
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(rf_rig.access_log().len(), calls);

    // IPMI: pxe, then cdrom persistently; GET reads ipmi_sim's chassis.
    let a = api
        .put(
            &boot_device_path(&ipmi),
            serde_json::json!({"boot_device": "pxe"}),
        )
        .await;
    assert_eq!(a.status, 204, "{:?}", a.body);
    assert_eq!(ipmi_rig.file("boot"), "pxe");
    let a = api.get(&boot_device_path(&ipmi)).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["boot_device"], "pxe");
    // ipmi_sim answers "next boot only" whatever was sent.
    assert_eq!(a.body["persistent"], false);
    let a = api
        .put(
            &boot_device_path(&ipmi),
            serde_json::json!({"boot_device": "cdrom", "persistent": "true"}),
        )
        .await;
    assert_eq!(a.status, 204, "{:?}", a.body);
    assert_eq!(ipmi_rig.file("boot"), "cdrom");
    assert_eq!(
        api.get(&boot_device_path(&ipmi)).await.body["boot_device"],
        "cdrom"
    );

    // The history says what each BMC was told.
    for (uuid, expected) in [
        (
            &rf,
            vec![
                "Boot device set to pxe (persistent).",
                "Boot device set to disk.",
            ],
        ),
        (
            &ipmi,
            vec![
                "Boot device set to pxe.",
                "Boot device set to cdrom (persistent).",
            ],
        ),
    ] {
        let h = api.get(&format!("/v1/nodes/{uuid}/history")).await;
        let texts: Vec<String> = h.body["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["event"].as_str())
            .filter(|t| t.starts_with("Boot device"))
            .map(String::from)
            .collect();
        assert_eq!(texts, expected, "{uuid}");
        let n = api.get(&format!("/v1/nodes/{uuid}")).await;
        assert!(!n.body.to_string().contains(PASSWORD));
    }
}

/// A BMC that does not answer and one that refuses the credentials: 500 with
/// Ironic's driver text (Redfish's names the BMC action), no password in the
/// answer or the logs, and nothing recorded.
#[tokio::test]
async fn boot_device_failures_are_ironics_500_without_the_password() {
    let logs = Captured::default();
    let _guard = logs.install();
    let api = common::api::start(common::memory().await).await;
    let rf_rig = Rig::redfish(1, false, false);
    let ipmi_rig = Rig::ipmi();
    let wrong = format!("{PASSWORD}-wrong");
    let cases = [
        (
            serde_json::json!({"driver": "redfish", "driver_info": {
                "redfish_address": format!("http://127.0.0.1:{}", free_port(false)),
                "redfish_username": "admin", "redfish_password": PASSWORD}}),
            "unreachable redfish",
        ),
        (
            serde_json::json!({"driver": "redfish", "driver_info": {
                "redfish_address": rf_rig.addr, "redfish_username": "admin",
                "redfish_password": wrong, "redfish_auth_type": "basic"}}),
            "redfish credentials",
        ),
        (
            serde_json::json!({"driver": "ipmi", "driver_info": {
                "ipmi_address": "127.0.0.1", "ipmi_port": free_port(true).to_string(),
                "ipmi_username": "admin", "ipmi_password": PASSWORD, "ipmi_cipher_suite": "3"}}),
            "unreachable ipmi",
        ),
        (
            serde_json::json!({"driver": "ipmi", "driver_info": {
                "ipmi_address": "127.0.0.1", "ipmi_port": ipmi_rig.port.to_string(),
                "ipmi_username": "admin", "ipmi_password": wrong, "ipmi_cipher_suite": "3"}}),
            "ipmi credentials",
        ),
    ];
    for (body, why) in &cases {
        let uuid = api.post("/v1/nodes", body.clone()).await.body["uuid"]
            .as_str()
            .unwrap()
            .to_string();
        let before = api.event_count(uuid.parse().unwrap()).await;
        let set = api
            .put(
                &boot_device_path(&uuid),
                serde_json::json!({"boot_device": "pxe", "persistent": true}),
            )
            .await;
        let get = api.get(&boot_device_path(&uuid)).await;
        for a in [&set, &get] {
            assert_eq!(a.status, 500, "{why}: {:?}", a.body);
            assert!(
                !a.body.to_string().contains(PASSWORD),
                "{why}: {:?}",
                a.body
            );
        }
        let (set, get) = (set.error(), get.error());
        match *why {
            "unreachable redfish" => {
                let start = format!("Redfish connection failed for node {uuid}: Redfish ");
                assert!(set.starts_with(&start), "{set}");
                assert!(get.starts_with(&start), "{get}");
            }
            "redfish credentials" => {
                assert!(
                    set.starts_with(&format!(
                        "Redfish exception occurred. Error: Redfish set boot device failed for node {uuid}. Error: Redfish "
                    )),
                    "{set}"
                );
                assert!(set.contains("credentials"), "{set}");
                assert!(
                    get.starts_with("Redfish exception occurred. Error: Redfish "),
                    "{get}"
                );
            }
            _ => {
                assert_eq!(
                    set, "IPMI call failed: chassis bootdev pxe options=persistent.",
                    "{why}"
                );
                assert_eq!(get, "IPMI call failed: chassis bootparam get 5.", "{why}");
            }
        }
        assert_eq!(
            api.event_count(uuid.parse().unwrap()).await,
            before,
            "{why}: a failed call records nothing"
        );
    }
    assert_eq!(
        rf_rig.system(1).await["Boot"]["BootSourceOverrideTarget"],
        "Hdd"
    );
    assert!(!logs.text().contains(PASSWORD), "a password in the logs");
    assert!(
        logs.text().contains("boot device call to the BMC failed"),
        "the reason is logged"
    );
}

// ---- the periodic power-state sync ---------------------------------------------

use ironledger::config::PowerSyncConfig;
use ironledger::effects::power_sync::{PowerSync, SyncConfig};

/// A power-state sync on `api`'s engine: `force` as `[conductor]
/// force_power_state_during_sync`, `max_retries` as
/// `power_state_sync_max_retries`, rounds every `interval` when spawned.
fn power_sync(
    api: &common::api::Api,
    force: bool,
    max_retries: u32,
    interval: Duration,
) -> Arc<PowerSync> {
    let mut config = SyncConfig::new(PowerSyncConfig {
        interval: Some(interval),
        force,
        max_retries,
        recovery_interval: Some(interval),
    });
    config.power_wait = wait();
    PowerSync::new(api.engine.clone(), config)
}

/// A redfish and an ipmi node of the rigs, taken to `manageable` (the sync
/// leaves nodes in `enroll` alone, as Ironic).
async fn sync_nodes(api: &common::api::Api, rf_rig: &Rig, ipmi_rig: &Rig) -> [String; 2] {
    let bodies = [
        serde_json::json!({"driver": "redfish", "driver_info": {
            "redfish_address": rf_rig.addr, "redfish_username": "admin",
            "redfish_password": PASSWORD, "redfish_auth_type": "basic"}}),
        // Cipher suite 3 named: ipmitool's discovery of suites, which
        // ipmi_sim does not answer, costs ~9 s a call.
        serde_json::json!({"driver": "ipmi", "driver_info": {
            "ipmi_address": "127.0.0.1", "ipmi_port": ipmi_rig.port.to_string(),
            "ipmi_username": "admin", "ipmi_password": PASSWORD,
            "ipmi_cipher_suite": "3"}}),
    ];
    let mut uuids = vec![];
    for body in bodies {
        let a = api.post("/v1/nodes", body).await;
        assert_eq!(a.status, reqwest::StatusCode::CREATED, "{:?}", a.body);
        let uuid = a.body["uuid"].as_str().unwrap().to_string();
        let m = api
            .put(
                &format!("/v1/nodes/{uuid}/states/provision"),
                serde_json::json!({"target": "manage"}),
            )
            .await;
        assert_eq!(m.status, reqwest::StatusCode::ACCEPTED, "{:?}", m.body);
        uuids.push(uuid);
    }
    [uuids[0].clone(), uuids[1].clone()]
}

/// Changes the emulated machines' power behind ironledger's back: a Reset
/// posted to the Redfish emulator, `ipmitool chassis power` against
/// `ipmi_sim`; returns once both emulators report the new state.
async fn out_of_band(rf_rig: &Rig, ipmi_rig: &Rig, on: bool) {
    let reset = reqwest::Client::new()
        .post(format!(
            "{}/redfish/v1/Systems/{}/Actions/ComputerSystem.Reset",
            rf_rig.addr,
            system_id(1)
        ))
        .basic_auth("admin", Some(PASSWORD))
        .json(&serde_json::json!({"ResetType": if on { "On" } else { "ForceOff" }}))
        .send()
        .await
        .unwrap();
    assert!(reset.status().is_success(), "{}", reset.status());
    let out = Command::new("ipmitool")
        .args(["-I", "lanplus", "-H", "127.0.0.1", "-p"])
        .arg(ipmi_rig.port.to_string())
        .args(["-U", "admin", "-E", "-C", "3", "chassis", "power"])
        .arg(if on { "on" } else { "off" })
        .env("IPMI_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (rf, ipmi) = if on { ("On", "1") } else { ("Off", "0") };
    for _ in 0..300 {
        if rf_rig.system(1).await["PowerState"] == rf && ipmi_rig.file("power") == ipmi {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the emulators never reported {rf}");
}

/// The node's history texts (in full: the list cuts them at 255 characters).
async fn history_texts(api: &common::api::Api, uuid: &str) -> Vec<String> {
    let h = api
        .get(&format!("/v1/nodes/{uuid}/history?detail=True"))
        .await;
    assert_eq!(h.status, reqwest::StatusCode::OK, "{:?}", h.body);
    h.body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A power change made behind ironledger's back, on a redfish and an ipmi
/// node: with `force_power_state_during_sync` off, the spawned sync loop
/// records it as a change made out of band (the history says from what to
/// what and when it was seen); with it on, the sync has the BMC put the
/// recorded state back — read back from the emulators. A node whose lease
/// another worker holds is left alone.
#[tokio::test]
async fn power_sync_records_or_reverts_out_of_band_changes() {
    let api = common::api::start(common::memory().await).await;
    let rf_rig = Rig::redfish(1, false, false);
    let ipmi_rig = Rig::ipmi();
    let nodes = sync_nodes(&api, &rf_rig, &ipmi_rig).await;

    // First round: nothing recorded yet, so the BMCs' states are recorded.
    let recorder = power_sync(&api, false, 3, Duration::from_millis(200));
    let first = recorder.sync_round().await.unwrap();
    assert_eq!((first.checked, first.recorded), (2, 2), "{first:?}");
    for uuid in &nodes {
        let n = api.get(&format!("/v1/nodes/{uuid}")).await.body;
        assert_eq!(n["power_state"], "power off", "{n}");
    }

    // A node held by another worker (a deploy, a power request) is skipped.
    let store = api.engine.store().clone();
    let lease = format!("node/{}", nodes[0]);
    assert!(store
        .try_lease(&lease, "someone-else", Duration::from_secs(30))
        .await
        .unwrap());
    out_of_band(&rf_rig, &ipmi_rig, true).await;
    let held = recorder.sync_round().await.unwrap();
    assert_eq!((held.locked, held.checked), (1, 1), "{held:?}");
    let n = api.get(&format!("/v1/nodes/{}", nodes[0])).await.body;
    assert_eq!(n["power_state"], "power off", "a held node was synced: {n}");
    store.release_lease(&lease, "someone-else").await.unwrap();

    // force off: the loop, spawned, records what the BMCs report.
    let loops = recorder.spawn();
    for uuid in &nodes {
        let mut n = Value::Null;
        for _ in 0..100 {
            n = api.get(&format!("/v1/nodes/{uuid}")).await.body;
            if n["power_state"] == "power on" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(n["power_state"], "power on", "never recorded: {n}");
        assert!(n["driver_internal_info"]["last_power_state_change"].is_string());
        assert!(!n["maintenance"].as_bool().unwrap(), "{n}");
        let texts = history_texts(&api, uuid).await;
        assert!(
            texts.iter().any(|t| t.starts_with(
                "Power state changed out of band from power off to power on, seen at "
            )),
            "{texts:?}"
        );
    }
    for l in loops {
        l.abort();
    }
    assert_eq!(rf_rig.system(1).await["PowerState"], "On", "the sync acted");

    // force on: turned off behind its back, the nodes are powered on again.
    let forcer = power_sync(&api, true, 3, Duration::from_secs(60));
    out_of_band(&rf_rig, &ipmi_rig, false).await;
    let round = forcer.sync_round().await.unwrap();
    assert_eq!((round.checked, round.recorded), (2, 2), "{round:?}");
    assert_eq!(rf_rig.system(1).await["PowerState"], "On");
    assert_eq!(ipmi_rig.file("power"), "1");
    for uuid in &nodes {
        let n = api.get(&format!("/v1/nodes/{uuid}")).await.body;
        assert_eq!(n["power_state"], "power on", "{n}");
        assert!(n["last_error"].is_null(), "{n}");
        let texts = history_texts(&api, uuid).await;
        let restored = texts
            .iter()
            .find(|t| {
                t.starts_with(
                    "Power state changed out of band from power on to power off, seen at ",
                )
            })
            .unwrap_or_else(|| panic!("{texts:?}"));
        assert!(
            restored.contains("; restored to power on at "),
            "{restored}"
        );
        assert!(!n.to_string().contains(PASSWORD));
    }
    // In the recorded state: nothing to do, no failure counted.
    let calm = forcer.sync_round().await.unwrap();
    assert_eq!((calm.checked, calm.recorded), (2, 0), "{calm:?}");
    for uuid in &nodes {
        assert_eq!(forcer.failures(uuid::Uuid::parse_str(uuid).unwrap()), 0);
    }
}

/// A BMC that stops answering: each round counts, and the round after
/// `power_state_sync_max_retries` puts the node in maintenance with Ironic's
/// reason and the `power failure` fault (its power state unknown, as Ironic
/// records it). The sync then leaves it alone; the power-failure recovery
/// takes it out of maintenance once its BMC answers again (here: once its
/// `driver_info` names the right address).
#[tokio::test]
async fn power_sync_puts_an_unreachable_bmc_in_maintenance_and_recovery_clears_it() {
    let logs = Captured::default();
    let _guard = logs.install();
    let api = common::api::start(common::memory().await).await;
    let rf_rig = Rig::redfish(1, false, false);
    let a = api
        .post(
            "/v1/nodes",
            serde_json::json!({"driver": "redfish", "driver_info": {
                "redfish_address": rf_rig.addr, "redfish_username": "admin",
                "redfish_password": PASSWORD, "redfish_auth_type": "basic"}}),
        )
        .await;
    let uuid = a.body["uuid"].as_str().unwrap().to_string();
    let id = uuid::Uuid::parse_str(&uuid).unwrap();
    let node_url = format!("/v1/nodes/{uuid}");
    assert_eq!(
        api.put(
            &format!("{node_url}/states/provision"),
            serde_json::json!({"target": "manage"})
        )
        .await
        .status,
        reqwest::StatusCode::ACCEPTED
    );
    let sync = power_sync(&api, true, 2, Duration::from_secs(60));
    sync.sync_round().await.unwrap();
    assert_eq!(api.get(&node_url).await.body["power_state"], "power off");

    let dead = format!("http://127.0.0.1:{}", free_port(false));
    let point_at = |address: String| serde_json::json!([{"op": "replace", "path": "/driver_info/redfish_address", "value": address}]);
    let p = api.patch(&node_url, point_at(dead.clone())).await;
    assert_eq!(p.status, reqwest::StatusCode::OK, "{:?}", p.body);

    for attempt in 1..=2 {
        sync.sync_round().await.unwrap();
        assert_eq!(sync.failures(id), attempt);
        let n = api.get(&node_url).await.body;
        assert_eq!(n["maintenance"], false, "attempt {attempt}: {n}");
        assert_eq!(n["power_state"], "power off");
    }
    sync.sync_round().await.unwrap();
    let n = api.get(&node_url).await.body;
    assert_eq!(n["maintenance"], true, "{n}");
    assert_eq!(n["fault"], "power failure", "{n}");
    assert!(n["power_state"].is_null(), "{n}");
    let reason = n["maintenance_reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!(
            "During sync_power_state, max retries exceeded for node {uuid}, node state None does not match expected state 'power off'. Updating DB state to 'None' Switching node to maintenance mode. Error: Redfish power state of {dead}"
        )),
        "{reason}"
    );
    assert_eq!(n["last_error"], n["maintenance_reason"]);
    assert!(!n.to_string().contains(PASSWORD));
    assert!(history_texts(&api, &uuid).await.iter().any(|t| t == reason));

    // In maintenance the sync leaves it alone; the recovery tries it, and
    // while the BMC does not answer it stays.
    let skipped = sync.sync_round().await.unwrap();
    assert_eq!(skipped.checked, 0, "{skipped:?}");
    let still = sync.recovery_round().await.unwrap();
    assert_eq!((still.checked, still.recorded), (1, 0), "{still:?}");
    assert_eq!(api.get(&node_url).await.body["maintenance"], true);

    let p = api.patch(&node_url, point_at(rf_rig.addr.clone())).await;
    assert_eq!(p.status, reqwest::StatusCode::OK, "{:?}", p.body);
    let back = sync.recovery_round().await.unwrap();
    assert_eq!((back.checked, back.recorded), (1, 1), "{back:?}");
    let n = api.get(&node_url).await.body;
    assert_eq!(n["maintenance"], false, "{n}");
    assert!(n["maintenance_reason"].is_null(), "{n}");
    assert!(n["fault"].is_null(), "{n}");
    assert_eq!(n["power_state"], "power off", "{n}");
    assert_eq!(sync.failures(id), 0);
    // And the sync looks at it again.
    let again = sync.sync_round().await.unwrap();
    assert_eq!(again.checked, 1, "{again:?}");
    assert!(!logs.text().contains(PASSWORD), "a password in the logs");
}
