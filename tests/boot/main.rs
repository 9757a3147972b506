//! The iPXE scripts: golden files and their syntax (`ipxe_render`), and a
//! real iPXE firmware in QEMU booting them from a real iSCSI target
//! (`e2e_boot`).
//!
//! `e2e_boot`'s `cinder` flow points the Cinder rig's answer at its own
//! target while its deploy attaches (`RigPointer`), so no test that attaches
//! Cinder volumes may run in this process beside it: this binary holds
//! nothing else that talks to Cinder.
//!
//! `e2e_boot` needs root, QEMU, tgtd, OVMF, the client virtualenv and the
//! Cinder rig; `.ci/run` provides them. `ipxe_render` needs nothing
//! (`cargo test --test boot ipxe_render`).

#[path = "../common/mod.rs"]
mod common;

mod e2e_boot;
mod ipxe_render;
