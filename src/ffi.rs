//! The C ABI: one short `extern "C"` function per export. Each converts pointers, calls
//! the safe layer inside `guard` (no panic crosses this boundary) and maps the result
//! to a return code. cbindgen copies these doc comments into the header.

use std::ffi::{c_char, c_int};
use std::sync::atomic::Ordering;

use foreign_types::ForeignTypeRef;
use openssl::ssl::SslRef;
use openssl::stack::StackRef;
use openssl::x509::X509;
use openssl_sys::{SSL, stack_st_X509};

use crate::error::{Error, RESTY_CLIENT_TLS_DECLINED, RESTY_CLIENT_TLS_OK, copy_out, guard};
use crate::{cache, tls, verify};

/// # Safety
/// `ssl` is NULL or a live `SSL*` that no one else uses during the call.
unsafe fn ssl_ref<'a>(ssl: *mut SSL) -> Result<&'a mut SslRef, Error> {
    if ssl.is_null() {
        return Err(Error::NullSsl);
    }
    // SAFETY: non-NULL and live per the caller; the borrow ends with the call.
    Ok(unsafe { SslRef::from_ptr_mut(ssl) })
}

/// # Safety
/// `stack` is NULL or a live `STACK_OF(X509)*`, borrowed for the call, never freed.
unsafe fn stack_ref<'a>(stack: *const stack_st_X509) -> Option<&'a StackRef<X509>> {
    // SAFETY: non-NULL and live per the caller; only read.
    (!stack.is_null()).then(|| unsafe { StackRef::from_ptr(stack.cast_mut()) })
}

/// Ask (not require) the client for a certificate, in the certificate phase
/// (`SSL_set_verify(SSL_VERIFY_PEER)` with a callback that never fails the handshake,
/// `SSL_set_verify_depth`, `SSL_set_client_CA_list`, `SSL_set0_verify_cert_store`).
///
/// `ca_certs` (optional): its distinct subjects, in order, become the CA DN hints of the
/// CertificateRequest, its certificates the verify store of this connection. NULL
/// drops what an earlier call set: the SSL_CTX's list and store apply. The stack is
/// borrowed: the caller may free it right after the call. `depth` < 0 keeps the current
/// verify depth (nginx: `ssl_verify_depth`, default 1). Only this connection is touched.
///
/// Returns RESTY_CLIENT_TLS_OK, or RESTY_CLIENT_TLS_ERROR with `*err` set (NULL `ssl`,
/// a client-side `ssl`, hints over the 65535-byte TLS limit, an OpenSSL failure); on
/// error the connection is left exactly as it was.
///
/// # Safety
/// - `ssl`: NULL or a live server-side `SSL*` no one else uses during the call.
/// - `ca_certs`: NULL or a live `STACK_OF(X509)*`; read only, never freed.
/// - `err`: NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resty_client_tls_request_client_certificate(
    ssl: *mut SSL,
    ca_certs: *const stack_st_X509,
    depth: c_int,
    err: *mut *const c_char,
) -> c_int {
    guard(err, || {
        let ssl = unsafe { ssl_ref(ssl) }?;
        let ca = unsafe { stack_ref(ca_certs) };
        tls::request_client_certificate(ssl, ca, depth)?;
        Ok(RESTY_CLIENT_TLS_OK)
    })
}

/// No resumption of this connection's session, by ticket or by session ID, in TLS 1.2
/// and 1.3, whatever the server's cache and ticket settings; other connections are
/// untouched. Call it during the handshake (certificate phase): per connection it sets
/// `SSL_OP_NO_TICKET`, `SSL_set_num_tickets(0)`, an empty session ID (so the session
/// is never cached) and a session ID context unique to the connection.
///
/// Returns RESTY_CLIENT_TLS_OK, or RESTY_CLIENT_TLS_ERROR with `*err` set (NULL or
/// client-side `ssl`, handshake already complete).
///
/// # Safety
/// - `ssl`: NULL or a live server-side `SSL*` no one else uses during the call.
/// - `err`: NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resty_client_tls_disable_session_reuse(ssl: *mut SSL, err: *mut *const c_char) -> c_int {
    guard(err, || {
        let ssl = unsafe { ssl_ref(ssl) }?;
        tls::disable_session_reuse(ssl)?;
        Ok(RESTY_CLIENT_TLS_OK)
    })
}

/// After the handshake: the PEM of the client certificate followed by the rest of the
/// chain it sent, in the order sent, byte-identical to `PEM_write_X509` of each
/// (`SSL_get0_peer_certificate`, `SSL_get_peer_cert_chain`). Cached per connection, so
/// later calls cost a copy. On a resumed session OpenSSL keeps only the client
/// certificate: the result is then that certificate alone.
///
/// Buffer protocol: `*buf_len` is the capacity of `buf` on entry and the exact byte count
/// on return (no NUL). Returns RESTY_CLIENT_TLS_OK (`buf` holds `*buf_len` bytes),
/// RESTY_CLIENT_TLS_AGAIN (too small: `*buf_len` is the size needed, `buf` untouched),
/// RESTY_CLIENT_TLS_DECLINED (no client certificate), or RESTY_CLIENT_TLS_ERROR with
/// `*err` set.
///
/// # Safety
/// - `ssl`: NULL or a live server-side `SSL*` no one else uses during the call.
/// - `buf`: writable for `*buf_len` bytes; may be NULL when `*buf_len` is 0 (size query).
/// - `buf_len`: writable. `err`: NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resty_client_tls_get_full_client_certificate_chain(
    ssl: *mut SSL,
    buf: *mut c_char,
    buf_len: *mut usize,
    err: *mut *const c_char,
) -> c_int {
    guard(err, || {
        let ssl = unsafe { ssl_ref(ssl) }?;
        match tls::full_chain_pem(ssl)? {
            Some(pem) => unsafe { copy_out(&[pem], buf, buf_len) },
            None => Ok(RESTY_CLIENT_TLS_DECLINED),
        }
    })
}

/// After the handshake: nginx's `$ssl_client_verify` without OCSP: "NONE" (no client
/// certificate), "SUCCESS", or "FAILED:<reason>" with `X509_verify_cert_error_string`
/// of `SSL_get_verify_result`. Same buffer protocol and codes as the chain function
/// (never DECLINED).
///
/// # Safety
/// - `ssl`: NULL or a live `SSL*` no one else uses during the call.
/// - `buf`: writable for `*buf_len` bytes; may be NULL when `*buf_len` is 0 (size query).
/// - `buf_len`: writable. `err`: NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resty_client_tls_get_client_verify(
    ssl: *mut SSL,
    buf: *mut c_char,
    buf_len: *mut usize,
    err: *mut *const c_char,
) -> c_int {
    guard(err, || {
        let ssl = unsafe { ssl_ref(ssl) }?;
        unsafe { copy_out(&verify::client_verify(ssl).parts(), buf, buf_len) }
    })
}

/// After the handshake (or in it, once the session is known): `*resumed` = 1 when this
/// connection resumed a session (`SSL_session_reused`), else 0; `buf` receives the
/// server name (SNI) the session was first established under
/// (`SSL_SESSION_get0_hostname`), `*buf_len` = 0 when it had none. A resumed session
/// keeps its original SNI even when the client now sends another: compare it with the
/// request's Host to refuse cross-host resumption. Same buffer protocol as the chain
/// function; `*resumed` is written on OK and AGAIN.
///
/// # Safety
/// - `ssl`: NULL or a live `SSL*` no one else uses during the call.
/// - `resumed`: writable.
/// - `buf`: writable for `*buf_len` bytes; may be NULL when `*buf_len` is 0 (size query).
/// - `buf_len`: writable. `err`: NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resty_client_tls_get_session_info(
    ssl: *mut SSL,
    resumed: *mut c_int,
    buf: *mut c_char,
    buf_len: *mut usize,
    err: *mut *const c_char,
) -> c_int {
    guard(err, || {
        let ssl = unsafe { ssl_ref(ssl) }?;
        if resumed.is_null() {
            return Err(Error::NullResumed);
        }
        let (was_resumed, host) = tls::session_info(ssl);
        let rc = unsafe { copy_out(&[host.unwrap_or_default()], buf, buf_len) }?;
        unsafe { *resumed = c_int::from(was_resumed) };
        Ok(rc)
    })
}

/// 1 when `v` (`len` bytes, no NUL needed) is "SUCCESS", "NONE" or "FAILED:<reason>"
/// (the reason may be empty, as Kong accepts), else 0. NULL `v` is 0. Writes nothing.
///
/// # Safety
/// `v`: NULL or readable for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resty_client_tls_is_valid_client_verify(v: *const c_char, len: usize) -> c_int {
    if v.is_null() {
        return 0;
    }
    // SAFETY: non-NULL and readable for len bytes per the caller.
    let v = unsafe { std::slice::from_raw_parts(v.cast::<u8>(), len) };
    std::panic::catch_unwind(|| {
        #[cfg(feature = "test-hooks")]
        crate::error::test_hook_panic();
        c_int::from(verify::is_valid_client_verify(v))
    })
    .unwrap_or(0)
}

/// Whether this library may be used in this process: RESTY_CLIENT_TLS_OK when every
/// OpenSSL function the library calls reaches one OpenSSL copy, of the series it was
/// built for, and that copy is the process's (or the process exposes none), else
/// RESTY_CLIENT_TLS_ERROR with `*err` naming both OpenSSL versions, the objects and the fix. Every
/// other function makes the same check; the Lua module calls this one at `require`.
///
/// # Safety
/// `err`: NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resty_client_tls_openssl_check(err: *mut *const c_char) -> c_int {
    guard(err, || Ok(RESTY_CLIENT_TLS_OK))
}

/// The byte limit of one per-worker cache: `which` is RESTY_CLIENT_TLS_CACHE_CA (the CA
/// lists of `request_client_certificate`, default RESTY_CLIENT_TLS_CA_CACHE_BYTES) or
/// RESTY_CLIENT_TLS_CACHE_CHAIN (the encoded chains of
/// `get_full_client_certificate_chain`, default RESTY_CLIENT_TLS_CHAIN_CACHE_BYTES).
/// Sets it to `bytes` and returns the previous limit; `(size_t)-1` only reads it. The
/// limit is process-wide (set it in nginx's `init_by_lua` and every worker has it) and
/// applies from the next insertion; 0 turns the cache off (everything is then built for
/// each call, as correct and slower). An unknown `which` returns 0 and changes nothing.
#[unsafe(no_mangle)]
pub extern "C" fn resty_client_tls_cache_limit(which: c_int, bytes: usize) -> usize {
    let Some(limit) = cache::limit_of(which) else { return 0 };
    if bytes == usize::MAX { limit.load(Ordering::Relaxed) } else { limit.swap(bytes, Ordering::Relaxed) }
}

/// The bytes (an estimate of the memory it keeps alive) that cache `which` of the calling
/// thread (the nginx worker) holds now; `*entries` (if not NULL) receives its number of
/// entries. An unknown `which` returns 0.
///
/// # Safety
/// `entries`: NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn resty_client_tls_cache_usage(which: c_int, entries: *mut usize) -> usize {
    let usage = std::panic::catch_unwind(|| match which {
        cache::RESTY_CLIENT_TLS_CACHE_CA => tls::ca_cache_usage(),
        cache::RESTY_CLIENT_TLS_CACHE_CHAIN => tls::chain_cache_usage(),
        _ => (0, 0),
    })
    .unwrap_or((0, 0));
    if !entries.is_null() {
        // SAFETY: writable per the caller.
        unsafe { *entries = usage.1 };
    }
    usage.0
}

/// The library's version: the crate version from Cargo.toml (for example "0.2.0"), the
/// same string as the Lua module's `_VERSION`, the `.pc` file's and the Debian package's.
/// A static, NUL-terminated string valid for the life of the process; never NULL. Safe
/// to call before anything else: it touches no OpenSSL state, so it answers even where
/// the OpenSSL check of the other functions fails.
#[unsafe(no_mangle)]
pub extern "C" fn resty_client_tls_version() -> *const c_char {
    VERSION.as_ptr()
}

const VERSION: &std::ffi::CStr =
    match std::ffi::CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => panic!("CARGO_PKG_VERSION contains a NUL byte"),
    };

#[cfg(test)]
mod version_tests {
    #[test]
    fn version_is_the_crate_version_nul_terminated() {
        let p = super::resty_client_tls_version();
        assert!(!p.is_null());
        // SAFETY: a static NUL-terminated string.
        let v = unsafe { std::ffi::CStr::from_ptr(p) };
        assert_eq!(v.to_str(), Ok(env!("CARGO_PKG_VERSION")));
        assert_eq!(p, super::resty_client_tls_version(), "the same static string every call");
    }
}
