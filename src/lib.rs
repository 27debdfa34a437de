//! resty-client-tls: the client-TLS operations of Kong's PDK module `kong.client.tls`
//! on the raw `SSL*` of any nginx/OpenResty, without rebuilding nginx.
//!
//! - [`ffi`]: the C ABI of `include/resty_client_tls.h`, used by the LuaJIT module
//!   `lua-bindings/resty/client_tls.lua` and by C nginx modules.
//! - [`tls`] and [`verify`]: the same operations as safe Rust on `&mut SslRef`; `tls`
//!   keeps the CA lists in `ca_list` and the encoded client chain in `chain`.
//! - [`host`]: the check that this library and the process share one OpenSSL.
//!
//! The library links the system OpenSSL dynamically and must be built against the
//! OpenSSL of the nginx that loads it; when they differ every function fails with a
//! message naming both, instead of corrupting memory.

pub mod error;

mod ca_list;
pub mod cache;
mod chain;
pub mod ffi;
pub mod host;
mod sys;
pub mod tls;
pub mod verify;

pub use error::{
    Error, RESTY_CLIENT_TLS_AGAIN, RESTY_CLIENT_TLS_DECLINED, RESTY_CLIENT_TLS_ERROR, RESTY_CLIENT_TLS_OK,
};
