//! Which node fields exist, from which microversion, and which a client may ask
//! for, sort by or patch (Ironic's `VERSIONED_FIELDS`, `_get_fields_for_node_query`,
//! `invalid_sort_key_list`, `PATCH_ALLOWED_FIELDS`).

use super::super::error::{ApiError, ApiResult};
use super::super::version::{not_acceptable, Version};

/// Fields that appeared after 1.1, with the minor version that added them.
/// Fields newer than the negotiated version are hidden in answers and refused
/// (406) in `fields=`, `sort_key=`, POST and PATCH.
pub const VERSIONED: &[(&str, u32)] = &[
    ("driver_internal_info", 3),
    ("name", 5),
    ("inspection_finished_at", 6),
    ("inspection_started_at", 6),
    ("clean_step", 7),
    ("raid_config", 12),
    ("target_raid_config", 12),
    ("network_interface", 20),
    ("resource_class", 21),
    ("boot_interface", 31),
    ("console_interface", 31),
    ("deploy_interface", 31),
    ("inspect_interface", 31),
    ("management_interface", 31),
    ("power_interface", 31),
    ("raid_interface", 31),
    ("vendor_interface", 31),
    ("storage_interface", 33),
    ("traits", 37),
    ("rescue_interface", 38),
    ("bios_interface", 40),
    ("fault", 42),
    ("deploy_step", 44),
    ("conductor_group", 46),
    ("automated_clean", 47),
    ("protected", 48),
    ("protected_reason", 48),
    ("conductor", 49),
    ("owner", 50),
    ("description", 51),
    ("allocation_uuid", 52),
    ("events", 54),
    ("retired", 61),
    ("retired_reason", 61),
    ("lessee", 65),
    ("network_data", 66),
    ("boot_mode", 75),
    ("secure_boot", 75),
    ("shard", 82),
    ("parent_node", 83),
    ("firmware_interface", 86),
    ("service_step", 87),
    ("disable_power_off", 95),
    ("instance_name", 104),
    ("health", 109),
];

/// The minor version a field appeared in (1 for the original fields).
pub fn since(field: &str) -> u32 {
    VERSIONED
        .iter()
        .find(|(f, _)| *f == field)
        .map(|(_, v)| *v)
        .unwrap_or(1)
}

/// Whether the field exists at `version`.
pub fn allowed(field: &str, version: Version) -> bool {
    version.at_least(since(field))
}

/// Every field a client may name in `fields=` (before the version check).
pub const SELECTABLE: &[&str] = &[
    "uuid",
    "traits",
    "allocation_uuid",
    "chassis_uuid",
    "conductor",
    "automated_clean",
    "bios_interface",
    "boot_interface",
    "boot_mode",
    "clean_step",
    "conductor_group",
    "console_enabled",
    "console_interface",
    "disable_power_off",
    "deploy_interface",
    "deploy_step",
    "description",
    "driver",
    "driver_info",
    "driver_internal_info",
    "extra",
    "fault",
    "firmware_interface",
    "health",
    "inspection_finished_at",
    "inspection_started_at",
    "inspect_interface",
    "instance_info",
    "instance_name",
    "instance_uuid",
    "last_error",
    "lessee",
    "maintenance",
    "maintenance_reason",
    "management_interface",
    "name",
    "network_data",
    "network_interface",
    "owner",
    "parent_node",
    "power_interface",
    "power_state",
    "properties",
    "protected",
    "protected_reason",
    "provision_state",
    "provision_updated_at",
    "raid_config",
    "raid_interface",
    "rescue_interface",
    "reservation",
    "resource_class",
    "retired",
    "retired_reason",
    "secure_boot",
    "service_step",
    "shard",
    "storage_interface",
    "target_power_state",
    "target_provision_state",
    "target_raid_config",
    "traits",
    "vendor_interface",
];

/// Sort keys that are columns of Ironic's node table but not selectable
/// fields (the internal ones are always empty in ironledger).
pub const SORT_ONLY: &[&str] = &[
    "id",
    "created_at",
    "updated_at",
    "chassis_id",
    "allocation_id",
    "conductor_affinity",
    "version",
];

/// The fields a list shows without `fields` or `detail` (Ironic's
/// `_DEFAULT_RETURN_FIELDS`, in its order, which the `next` link repeats).
pub const DEFAULT_LIST: &[&str] = &[
    "instance_uuid",
    "maintenance",
    "power_state",
    "provision_state",
    "uuid",
    "name",
];

/// Columns Ironic refuses as sort keys with its unquoted message.
pub const UNSORTABLE: &[&str] = &[
    "properties",
    "driver_info",
    "extra",
    "instance_info",
    "driver_internal_info",
    "clean_step",
    "deploy_step",
    "raid_config",
    "target_raid_config",
    "traits",
    "network_data",
    "service_step",
];

/// Fields that are not database columns: sorting by them is refused with the
/// quoted "invalid field for sorting" message.
pub const NOT_COLUMNS: &[&str] = &["allocation_uuid", "chassis_uuid", "conductor"];

/// The root fields a node patch may touch, in Ironic's order (its 400 lists them so).
pub const PATCHABLE: &[&str] = &[
    "automated_clean",
    "bios_interface",
    "boot_interface",
    "chassis_uuid",
    "conductor_group",
    "console_interface",
    "deploy_interface",
    "description",
    "disable_power_off",
    "driver",
    "driver_info",
    "extra",
    "inspect_interface",
    "instance_info",
    "instance_name",
    "instance_uuid",
    "lessee",
    "maintenance",
    "management_interface",
    "name",
    "network_data",
    "network_interface",
    "owner",
    "power_interface",
    "properties",
    "protected",
    "protected_reason",
    "raid_interface",
    "rescue_interface",
    "resource_class",
    "retired",
    "retired_reason",
    "shard",
    "storage_interface",
    "vendor_interface",
    "parent_node",
    "firmware_interface",
];

/// Ironic's `args.string_list`: comma-separated, trimmed, lower-cased, unique.
pub fn string_list(raw: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in raw.split(',') {
        let p = part.trim().to_lowercase();
        if !p.is_empty() && !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// `fields=` before a node is rendered: 406 below 1.8 or for a field newer
/// than the version; then 400 for an unknown field.
pub fn check_requested(fields: &[String], version: Version) -> ApiResult<()> {
    if !version.at_least(8) {
        return Err(not_acceptable());
    }
    check_versions(fields, version)?;
    for f in fields {
        if !SELECTABLE.contains(&f.as_str()) {
            return Err(ApiError::bad_request(format!(
                "Field {f} is not a valid field."
            )));
        }
    }
    Ok(())
}

/// 406 when any named field is newer than the version (`check_allowed_fields`).
pub fn check_versions(fields: &[String], version: Version) -> ApiResult<()> {
    if fields.iter().any(|f| !allowed(f, version)) {
        return Err(not_acceptable());
    }
    Ok(())
}
