//! The two volume resources: connectors and targets (`docs/ironic-behaviour.md`
//! §7.2, §7.3).

use super::VolumeKind;
use crate::api::child_record::{fields_of, object_of, string_of, Kind};
use crate::api::error::ApiResult;
use crate::api::links::BaseUrl;
use crate::api::listing::ListSpec;
use crate::api::masking;
use crate::api::schema::{Prop, Schema, Ty};
use crate::domain::node::commands::{NewConnector, NewTarget};
use crate::domain::node::entities::ChildKind;
use crate::domain::node::target_rules;
use crate::domain::patch::PatchOp;
use crate::domain::NodeCommand;
use serde_json::{json, Map, Value};
use uuid::Uuid;

// ---- connectors ---------------------------------------------------------------

pub static CONNECTOR_SCHEMA: Schema = Schema {
    props: &[
        Prop::new("connector_id", &[Ty::String]),
        Prop::new("extra", &[Ty::Object, Ty::Null]),
        Prop::new("node_uuid", &[Ty::String]),
        Prop::new("type", &[Ty::String]),
        Prop::new("uuid", &[Ty::String, Ty::Null]),
    ],
    required: &["connector_id", "node_uuid", "type"],
    one_of_required: None,
};

fn connector_patch_doc(record: &Value) -> Map<String, Value> {
    fields_of(
        record,
        &[
            "uuid",
            "type",
            "connector_id",
            "extra",
            "created_at",
            "updated_at",
        ],
    )
}

fn connector_add(uuid: Uuid, doc: &Map<String, Value>) -> NodeCommand {
    NodeCommand::AddConnector(NewConnector {
        uuid,
        kind: string_of(doc, "type"),
        connector_id: string_of(doc, "connector_id"),
        extra: object_of(doc, "extra"),
    })
}

fn render_connector(doc: &Value, base: &BaseUrl) -> Value {
    let uuid = doc["uuid"].as_str().unwrap_or_default();
    json!({
        "uuid": uuid,
        "created_at": doc["created_at"],
        "updated_at": doc["updated_at"],
        "connector_id": doc["connector_id"],
        "extra": if doc["extra"].is_object() { doc["extra"].clone() } else { json!({}) },
        "type": doc["type"],
        "links": base.links(&format!("volume/connectors/{uuid}")),
        "node_uuid": doc["node_uuid"],
    })
}

fn no_checks(_: &mut Map<String, Value>) -> ApiResult<()> {
    Ok(())
}

fn no_normalize(_: &mut PatchOp) {}

pub static CONNECTORS: VolumeKind = VolumeKind {
    kind: Kind {
        body_name: "connector",
        model: crate::projections::children::CONNECTORS,
        not_found: "Volume connector {} could not be found.",
        schema: &CONNECTOR_SCHEMA,
        patch_allowed: &["connector_id", "extra", "node_uuid", "type"],
        domain_fields: &["connector_id", "extra", "node_uuid", "type"],
        child: ChildKind::Connector,
        patch_doc: connector_patch_doc,
        check_record: no_checks,
        add: connector_add,
        patch: |uuid, ops| NodeCommand::PatchConnector { uuid, ops },
        remove: |uuid| NodeCommand::RemoveConnector { uuid },
        normalize: no_normalize,
    },
    spec: ListSpec {
        collection: "connectors",
        path: "volume/connectors",
        fields: &[
            "connector_id",
            "created_at",
            "extra",
            "links",
            "node_uuid",
            "type",
            "updated_at",
            "uuid",
        ],
        default_fields: &["uuid", "node_uuid", "type", "connector_id"],
        unsortable: &["extra"],
        filters: &["node"],
        not_found: "Volume connector {} could not be found.",
    },
    uuid_param: "connector_uuid",
    link_resource: "volume/connectors",
    render: render_connector,
};

// ---- targets ------------------------------------------------------------------

pub static TARGET_SCHEMA: Schema = Schema {
    props: &[
        Prop::new("boot_index", &[Ty::Integer]),
        Prop::new("extra", &[Ty::Object, Ty::Null]),
        Prop::new("node_uuid", &[Ty::String]),
        Prop::new("properties", &[Ty::Object, Ty::Null]),
        Prop::new("uuid", &[Ty::String, Ty::Null]),
        Prop::new("volume_id", &[Ty::String]),
        Prop::new("volume_type", &[Ty::String]),
    ],
    required: &["boot_index", "node_uuid", "volume_id", "volume_type"],
    one_of_required: None,
};

fn target_patch_doc(record: &Value) -> Map<String, Value> {
    fields_of(
        record,
        &[
            "uuid",
            "volume_type",
            "boot_index",
            "volume_id",
            "properties",
            "extra",
            "created_at",
            "updated_at",
        ],
    )
}

/// `boot_index` passed the schema as an integer; `1.0` counts as one (as in
/// jsonschema) and is stored as `1`; one beyond 64 bits is refused (the
/// domain's rule, which the aggregate applies to patches too).
fn target_checks(doc: &mut Map<String, Value>) -> ApiResult<()> {
    if let Some(v) = doc.get("boot_index") {
        let i = target_rules::boot_index(v)?;
        doc.insert("boot_index".into(), json!(i));
    }
    Ok(())
}

fn target_add(uuid: Uuid, doc: &Map<String, Value>) -> NodeCommand {
    NodeCommand::CreateTarget(NewTarget {
        uuid,
        volume_type: string_of(doc, "volume_type"),
        // `check_record` ran first: the value is an integer in range.
        boot_index: doc
            .get("boot_index")
            .and_then(Value::as_i64)
            .unwrap_or_default(),
        volume_id: string_of(doc, "volume_id"),
        properties: object_of(doc, "properties"),
        extra: object_of(doc, "extra"),
    })
}

fn target_normalize(op: &mut PatchOp) {
    if op.path == "/boot_index" {
        if let Some(Ok(i)) = op.value.as_ref().map(target_rules::boot_index) {
            op.value = Some(json!(i));
        }
    }
}

/// A target as the API shows it: `properties` always masked (§7.9); the stored
/// value is untouched.
fn render_target(doc: &Value, base: &BaseUrl) -> Value {
    let uuid = doc["uuid"].as_str().unwrap_or_default();
    let object = |k: &str| {
        if doc[k].is_object() {
            doc[k].clone()
        } else {
            json!({})
        }
    };
    json!({
        "uuid": uuid,
        "created_at": doc["created_at"],
        "updated_at": doc["updated_at"],
        "boot_index": doc["boot_index"],
        "extra": object("extra"),
        "properties": masking::mask(&object("properties")),
        "volume_id": doc["volume_id"],
        "volume_type": doc["volume_type"],
        "links": base.links(&format!("volume/targets/{uuid}")),
        "node_uuid": doc["node_uuid"],
    })
}

pub static TARGETS: VolumeKind = VolumeKind {
    kind: Kind {
        body_name: "target",
        model: crate::projections::children::TARGETS,
        not_found: "Volume target {} could not be found.",
        schema: &TARGET_SCHEMA,
        patch_allowed: &[
            "boot_index",
            "extra",
            "node_uuid",
            "properties",
            "volume_id",
            "volume_type",
        ],
        domain_fields: &[
            "boot_index",
            "extra",
            "node_uuid",
            "properties",
            "volume_id",
            "volume_type",
        ],
        child: ChildKind::Target,
        patch_doc: target_patch_doc,
        check_record: target_checks,
        add: target_add,
        patch: |uuid, ops| NodeCommand::PatchTarget { uuid, ops },
        remove: |uuid| NodeCommand::DeleteTarget { uuid },
        normalize: target_normalize,
    },
    spec: ListSpec {
        collection: "targets",
        path: "volume/targets",
        fields: &[
            "boot_index",
            "created_at",
            "extra",
            "links",
            "node_uuid",
            "properties",
            "updated_at",
            "uuid",
            "volume_id",
            "volume_type",
        ],
        default_fields: &[
            "uuid",
            "node_uuid",
            "volume_type",
            "boot_index",
            "volume_id",
        ],
        unsortable: &["extra", "properties"],
        filters: &["node"],
        not_found: "Volume target {} could not be found.",
    },
    uuid_param: "target_uuid",
    link_resource: "volume/targets",
    render: render_target,
};
