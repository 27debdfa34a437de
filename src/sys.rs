//! OpenSSL symbols that openssl-sys does not bind (or binds differently per version).
//! `rctls_ossl300` comes from build.rs, from the version openssl-sys built against.

use std::ffi::{c_char, c_int, c_uint};

use openssl_sys::{SSL, SSL_SESSION, X509, X509_STORE};

unsafe extern "C" {
    pub fn SSL_in_init(s: *const SSL) -> c_int;
    pub fn SSL_set_verify_depth(s: *mut SSL, depth: c_int);
    pub fn SSL_SESSION_set1_id(s: *mut SSL_SESSION, sid: *const u8, sid_len: c_uint) -> c_int;
    pub fn SSL_SESSION_set1_id_context(s: *mut SSL_SESSION, sid_ctx: *const u8, sid_ctx_len: c_uint) -> c_int;
    pub fn SSL_set_session_id_context(ssl: *mut SSL, sid_ctx: *const u8, sid_ctx_len: c_uint) -> c_int;
    pub fn SSL_SESSION_get0_hostname(s: *const SSL_SESSION) -> *const c_char;
    pub fn X509_STORE_up_ref(st: *mut X509_STORE) -> c_int;
}

#[cfg(rctls_ossl300)]
unsafe extern "C" {
    fn SSL_set_options(s: *mut SSL, op: u64) -> u64;
    fn SSL_get0_peer_certificate(s: *const SSL) -> *mut X509;
}

#[cfg(not(rctls_ossl300))]
unsafe extern "C" {
    fn SSL_set_options(s: *mut SSL, op: std::ffi::c_ulong) -> std::ffi::c_ulong;
}

/// `SSL_set_options`: a function since OpenSSL 1.1.0, taking `unsigned long` until 1.1.1
/// and `uint64_t` since 3.0 (SSL_set_options(3)). Not the `SSL_ctrl` macro of 1.0.2: its
/// SSL_CTRL_OPTIONS command is gone from 1.1.x, where it silently does nothing.
///
/// # Safety
/// `ssl` is a live `SSL*`.
pub unsafe fn ssl_set_options(ssl: *mut SSL, op: u64) {
    #[cfg(rctls_ossl300)]
    unsafe {
        SSL_set_options(ssl, op);
    }
    #[cfg(not(rctls_ossl300))]
    unsafe {
        SSL_set_options(ssl, op as std::ffi::c_ulong);
    }
}

/// The peer certificate, borrowed (no reference taken): `SSL_get0_peer_certificate` on
/// 3.x; before, `SSL_get_peer_certificate` plus an immediate free, which is the same
/// since the session keeps its own reference.
///
/// # Safety
/// `ssl` is a live `SSL*`; the result is valid while its session is.
pub unsafe fn ssl_peer_certificate(ssl: *const SSL) -> *mut X509 {
    #[cfg(rctls_ossl300)]
    unsafe {
        SSL_get0_peer_certificate(ssl)
    }
    #[cfg(not(rctls_ossl300))]
    unsafe {
        let x = openssl_sys::SSL_get_peer_certificate(ssl);
        if !x.is_null() {
            openssl_sys::X509_free(x);
        }
        x
    }
}
