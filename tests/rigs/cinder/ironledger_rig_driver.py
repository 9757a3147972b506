"""Cinder volume driver for ironledger's test rig.

Cinder's own FakeLoggingVolumeDriver does no storage I/O, so the API, the
scheduler, RPC and the volume/attachment state machine are all real. This
subclass makes initialize_connection answer with the iSCSI connection info an
LVM + tgtadm backend returns (target_iqn, target_portal, target_lun, CHAP).

The values come from the JSON file named by IRONLEDGER_RIG_ISCSI_FILE, re-read
on every call, so a test can point volumes at a real tgtd target (portal, IQN,
LUN, CHAP) without restarting Cinder. Keys: target_portal, target_iqn (may
contain {volume_id}), target_lun, auth_username, auth_password. Missing file or
keys fall back to the defaults below.
"""
import json
import os

from cinder.tests import fake_driver

DEFAULTS = {
    "target_portal": "127.0.0.1:3260",
    "target_iqn": "iqn.2010-10.org.openstack:volume-{volume_id}",
    "target_lun": 0,
    "auth_username": "rigchapuser",
    "auth_password": "rigchapsecret",
}


def _settings():
    path = os.environ.get("IRONLEDGER_RIG_ISCSI_FILE")
    values = dict(DEFAULTS)
    if path and os.path.exists(path):
        with open(path) as f:
            values.update(json.load(f))
    return values


class IscsiShapedFakeDriver(fake_driver.FakeLoggingVolumeDriver):
    def initialize_connection(self, volume, connector):
        conn = super().initialize_connection(volume, connector)
        s = _settings()
        conn["driver_volume_type"] = "iscsi"
        conn["data"].update({
            "target_discovered": False,
            "target_iqn": s["target_iqn"].format(volume_id=volume["id"]),
            "target_portal": s["target_portal"],
            "target_lun": int(s["target_lun"]),
            "volume_id": volume["id"],
            "auth_method": "CHAP",
            "auth_username": s["auth_username"],
            "auth_password": s["auth_password"],
        })
        return conn
