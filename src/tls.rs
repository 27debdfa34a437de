//! The safe layer: the client-TLS operations on a borrowed `&mut SslRef`.
//! Every function computes first and mutates the connection last, so an error leaves
//! the `SSL` exactly as it was. Only per-connection state is touched, never an `SSL_CTX`.
//! The CA lists live in `ca_list`, the encoded chain in `chain`.

use std::ffi::{c_int, c_uint};
use std::sync::atomic::{AtomicU64, Ordering};

use foreign_types::ForeignTypeRef;
use openssl::ssl::SslRef;
use openssl::stack::StackRef;
use openssl::x509::X509;
use openssl_sys::X509_STORE_CTX;

use crate::ca_list::hint_limit;
pub use crate::ca_list::{
    CaList, RESTY_CLIENT_TLS_MAX_HINT_BYTES, RESTY_CLIENT_TLS_MAX_HINT_BYTES_TLS13, ca_cache_usage, ca_list,
};
pub use crate::chain::{chain_cache_usage, full_chain_pem};
use crate::error::{Error, openssl_failed};
use crate::sys;

/// The verify callback: verification never fails the handshake. The result is read
/// later through `SSL_get_verify_result` (`get_client_verify`). No code that can panic.
extern "C" fn accept_any(_preverify_ok: c_int, _ctx: *mut X509_STORE_CTX) -> c_int {
    1
}

pub(crate) fn ensure_server(ssl: &SslRef) -> Result<(), Error> {
    // SAFETY: plain getter on a live SSL.
    if unsafe { openssl_sys::SSL_is_server(ssl.as_ptr()) } == 0 {
        return Err(Error::NotServer);
    }
    Ok(())
}

/// Ask (not require) the client for a certificate: `SSL_VERIFY_PEER` with a callback
/// that never fails the handshake, and `depth` when it is not negative. With `ca`, its
/// distinct subjects become the CA DN hints (`SSL_set_client_CA_list`) and its
/// certificates the connection's verify store (`SSL_set0_verify_cert_store`). Without,
/// both fall back to the `SSL_CTX`'s (what an earlier call set is dropped).
pub fn request_client_certificate(ssl: &mut SslRef, ca: Option<&StackRef<X509>>, depth: c_int) -> Result<(), Error> {
    ensure_server(ssl)?;
    let hints = match ca {
        None => None,
        Some(certs) => {
            let list = ca_list(certs)?;
            if list.encoded_len() > hint_limit(ssl) {
                return Err(Error::HintsTooLarge);
            }
            Some((list.names_for_connection()?, list))
        }
    };
    // All fallible work is done: from here on the connection changes, and nothing fails.
    let p = ssl.as_ptr();
    // SAFETY: a live SSL; the callback is a plain function in this library, which is
    // linked with -z nodelete so it is never unmapped while nginx holds the SSL.
    unsafe {
        openssl_sys::SSL_set_verify(p, openssl_sys::SSL_VERIFY_PEER, Some(accept_any));
        if depth >= 0 {
            sys::SSL_set_verify_depth(p, depth);
        }
    }
    match hints {
        Some((names, list)) => {
            ssl.set_client_ca_list(names);
            // SAFETY: set0 takes the reference the up-ref adds; the store is shared
            // read-only with the cache and other connections.
            unsafe {
                sys::X509_STORE_up_ref(list.store.as_ptr());
                openssl_sys::SSL_set0_verify_cert_store(p, list.store.as_ptr());
            }
        }
        // SAFETY: NULL is the documented "use the SSL_CTX's" value of both setters;
        // they free what an earlier call installed.
        None => unsafe {
            openssl_sys::SSL_set_client_CA_list(p, std::ptr::null_mut());
            openssl_sys::SSL_set0_verify_cert_store(p, std::ptr::null_mut());
        },
    }
    Ok(())
}

/// No resumption of this connection's session, by ticket or by session ID, TLS 1.2
/// and 1.3, whatever the server's cache and ticket settings. Per-connection only:
/// - `SSL_OP_NO_TICKET` and `SSL_set_num_tickets(0)`: no ticket of any kind is issued
///   (TLS 1.3 would otherwise send stateful tickets under NO_TICKET);
/// - the new session gets an empty session ID: OpenSSL sends an empty ID in the
///   ServerHello and never caches such a session (internal cache or `new_session_cb`);
/// - the connection and its session get a session ID context no other connection has,
///   so even a session stored by other means cannot be resumed elsewhere.
///
/// Must be called during the handshake (nginx's certificate phase). A resumed session,
/// which belongs to the cache, is left alone.
pub fn disable_session_reuse(ssl: &mut SslRef) -> Result<(), Error> {
    ensure_server(ssl)?;
    let p = ssl.as_ptr();
    // SAFETY: plain getter on a live SSL.
    if unsafe { sys::SSL_in_init(p) } == 0 {
        return Err(Error::HandshakeDone);
    }
    let sid_ctx = unique_sid_ctx(p as usize);
    // The only setter that reports failure goes first: if it fails, nothing has changed.
    ssl.set_num_tickets(0).map_err(openssl_failed(c"SSL_set_num_tickets() failed"))?;
    // SAFETY: a live SSL; sid_ctx is 32 bytes (SSL_MAX_SID_CTX_LENGTH).
    unsafe {
        #[allow(clippy::unnecessary_cast)] // c_ulong before OpenSSL 3.0
        sys::ssl_set_options(p, openssl_sys::SSL_OP_NO_TICKET as u64);
        sys::SSL_set_session_id_context(p, sid_ctx.as_ptr(), sid_ctx.len() as c_uint);
    }
    // SAFETY: the session of a live SSL; a fresh (not resumed) session is not yet in
    // any cache, so changing its ID cannot corrupt a cache's hash table.
    unsafe {
        let session = openssl_sys::SSL_get_session(p);
        if !session.is_null() && openssl_sys::SSL_session_reused(p) == 0 {
            sys::SSL_SESSION_set1_id(session, sid_ctx.as_ptr(), 0);
            sys::SSL_SESSION_set1_id_context(session, sid_ctx.as_ptr(), sid_ctx.len() as c_uint);
        }
    }
    Ok(())
}

/// 32 bytes no other connection of any process on this host shares: a tag, the pid,
/// a process-wide counter and the SSL's address.
fn unique_sid_ctx(ssl_addr: usize) -> [u8; 32] {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut out = [0u8; 32];
    out[..8].copy_from_slice(b"rctls-nr");
    out[8..12].copy_from_slice(&std::process::id().to_le_bytes());
    out[12..20].copy_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    out[20..28].copy_from_slice(&(ssl_addr as u64).to_le_bytes());
    out
}

/// Whether this connection's session was resumed, and the server name (SNI) the session
/// was first established under (`SSL_SESSION_get0_hostname`), if any. A resumed session
/// keeps its original SNI, so a plugin can refuse a session made for another host
/// (OpenSSL resumes before SNI selects the server block: the class of CVE-2025-23419).
pub fn session_info(ssl: &SslRef) -> (bool, Option<&[u8]>) {
    // SAFETY: getters on a live SSL; the hostname lives as long as the session.
    unsafe {
        let p = ssl.as_ptr();
        let resumed = openssl_sys::SSL_session_reused(p) != 0;
        let session = openssl_sys::SSL_get_session(p);
        let host = if session.is_null() { std::ptr::null() } else { sys::SSL_SESSION_get0_hostname(session) };
        let host = (!host.is_null()).then(|| std::ffi::CStr::from_ptr(host).to_bytes());
        (resumed, host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_sid_ctx_differs_per_call() {
        let a = unique_sid_ctx(1);
        let b = unique_sid_ctx(1);
        assert_ne!(a, b);
        assert_eq!(&a[..8], b"rctls-nr");
    }
}
