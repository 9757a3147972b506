//! Side effects the process manager drives: iPXE boot scripts (and the HTTP
//! root they live in), and the Cinder block-storage client.

pub mod cinder;
pub mod http_root;
pub mod ipxe;
pub mod ipxe_syntax;
pub mod process_manager;
pub mod storage;
