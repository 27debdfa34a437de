//! The safe layer: the client-TLS operations on a borrowed `&mut SslRef`.
//! Every function computes first and mutates the connection last, so an error leaves
//! the `SSL` exactly as it was. Only per-connection state is touched, never an `SSL_CTX`.

use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::ffi::{c_int, c_uint};
use std::rc::Rc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::hash::MessageDigest;
use openssl::ssl::{Ssl, SslRef};
use openssl::stack::{Stack, StackRef};
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::{X509, X509Name, X509NameRef, X509Ref};
use openssl_sys::X509_STORE_CTX;

use crate::error::{Error, openssl_failed};
use crate::sys;

/// The most bytes the CA DN hints may take in a TLS 1.2 (or older) CertificateRequest:
/// `DistinguishedName certificate_authorities<0..2^16-1>`, each name encoded with its
/// two-byte length.
pub const RESTY_CLIENT_TLS_MAX_HINT_BYTES: usize = 65535;

/// The same for TLS 1.3 (and for a connection whose version is not known yet): there
/// the list is an extension sharing the CertificateRequest's 65535-byte extensions
/// block with its own 6 bytes of framing and signature_algorithms. 256 bytes are kept
/// for the latter (OpenSSL 3.0's default takes 38 bytes: the largest list it accepts
/// is 65491 bytes, measured by `tests/ffi.rs`).
pub const RESTY_CLIENT_TLS_MAX_HINT_BYTES_TLS13: usize = 65535 - 6 - 256;

fn hint_limit(ssl: &SslRef) -> usize {
    // SAFETY: plain getter; in the certificate phase it is the negotiated version.
    let version = unsafe { openssl_sys::SSL_version(ssl.as_ptr()) };
    if version < openssl_sys::TLS1_3_VERSION {
        RESTY_CLIENT_TLS_MAX_HINT_BYTES
    } else {
        RESTY_CLIENT_TLS_MAX_HINT_BYTES_TLS13
    }
}

/// The verify callback: verification never fails the handshake. The result is read
/// later through `SSL_get_verify_result` (`get_client_verify`). No code that can panic.
extern "C" fn accept_any(_preverify_ok: c_int, _ctx: *mut X509_STORE_CTX) -> c_int {
    1
}

fn ensure_server(ssl: &SslRef) -> Result<(), Error> {
    // SAFETY: plain getter on a live SSL.
    if unsafe { openssl_sys::SSL_is_server(ssl.as_ptr()) } == 0 {
        return Err(Error::NotServer);
    }
    Ok(())
}

/// What a CA list turns into, built once per distinct list and shared by the
/// connections that use it: the verify store (reference-counted, installed with an
/// up-ref) and the distinct subjects in the caller's order with their encoded size.
pub struct CaList {
    /// SHA-1 fingerprint of each certificate, in order: the cache key.
    key: Vec<[u8; 20]>,
    store: X509Store,
    names: Vec<X509Name>,
    /// Bytes the names take in a CertificateRequest (2-byte length + DER each).
    encoded: usize,
}

impl CaList {
    /// Builds the store and the distinct subjects. Borrows `certs` only for the call:
    /// certificates are up-referenced into the store, names duplicated.
    fn build(certs: &StackRef<X509>, key: Vec<[u8; 20]>) -> Result<CaList, Error> {
        let mut store = X509StoreBuilder::new().map_err(openssl_failed(c"X509_STORE_new() failed"))?;
        let mut names = Vec::with_capacity(certs.len());
        let mut seen: HashSet<Vec<u8>> = HashSet::with_capacity(certs.len());
        let mut encoded = 0usize;
        for cert in certs {
            store.add_cert(cert.to_owned()).map_err(openssl_failed(c"X509_STORE_add_cert() failed"))?;
            let subject = cert.subject_name();
            let der = subject.to_der().map_err(openssl_failed(c"i2d_X509_NAME() failed"))?;
            let size = 2 + der.len();
            if !seen.insert(der) {
                continue; // this subject is hinted already
            }
            encoded += size;
            names.push(subject.to_owned().map_err(openssl_failed(c"X509_NAME_dup() failed"))?);
        }
        Ok(CaList { key, store: store.build(), names, encoded })
    }

    /// How many distinct subjects are hinted.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The connection's own copy of the names (`SSL_set_client_CA_list` takes
    /// ownership of the stack and of every name in it).
    fn names_for_connection(&self) -> Result<Stack<X509Name>, Error> {
        let mut stack = Stack::new().map_err(openssl_failed(c"sk_X509_NAME_new_null() failed"))?;
        for name in &self.names {
            let name = X509NameRef::to_owned(name).map_err(openssl_failed(c"X509_NAME_dup() failed"))?;
            stack.push(name).map_err(openssl_failed(c"sk_X509_NAME_push() failed"))?;
        }
        Ok(stack)
    }
}

/// How many distinct CA lists the per-thread cache keeps (least recently used goes).
pub const RESTY_CLIENT_TLS_CA_CACHE_ENTRIES: usize = 16;

thread_local! {
    // nginx workers are single-threaded: one cache per worker, no locking.
    static CA_CACHE: RefCell<VecDeque<Rc<CaList>>> = const { RefCell::new(VecDeque::new()) };
}

/// The `CaList` for `certs`, from the cache when a list with the same certificates
/// (by SHA-1 fingerprint, which OpenSSL caches in each parsed X509) was seen before.
/// Keyed by content, so it is right whatever the caller frees or reuses.
pub fn ca_list(certs: &StackRef<X509>) -> Result<Rc<CaList>, Error> {
    let mut key = Vec::with_capacity(certs.len());
    for cert in certs {
        let digest = cert.digest(MessageDigest::sha1()).map_err(openssl_failed(c"X509_digest() failed"))?;
        let mut fp = [0u8; 20];
        fp.copy_from_slice(&digest);
        key.push(fp);
    }
    CA_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(at) = cache.iter().position(|e| e.key == key) {
            let hit = cache.remove(at).expect("position is in range");
            cache.push_front(hit.clone());
            return Ok(hit);
        }
        let list = Rc::new(CaList::build(certs, key)?);
        cache.push_front(list.clone());
        cache.truncate(RESTY_CLIENT_TLS_CA_CACHE_ENTRIES);
        Ok(list)
    })
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
            if list.encoded > hint_limit(ssl) {
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
    // All checks done: from here on, only setters that cannot fail on valid input.
    // SAFETY: a live SSL; sid_ctx is 32 bytes (SSL_MAX_SID_CTX_LENGTH).
    unsafe {
        #[allow(clippy::unnecessary_cast)] // c_ulong before OpenSSL 3.0
        sys::ssl_set_options(p, openssl_sys::SSL_OP_NO_TICKET as u64);
        sys::SSL_set_session_id_context(p, sid_ctx.as_ptr(), sid_ctx.len() as c_uint);
    }
    ssl.set_num_tickets(0).map_err(openssl_failed(c"SSL_set_num_tickets() failed"))?;
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

/// The PEM of a connection's client chain, cached in the SSL's ex_data: built on the
/// first call, then reused while the peer certificate is the same object. The cache
/// holds a reference to that certificate, so its address cannot be reused by another.
struct ChainCache {
    leaf: X509,
    pem: Vec<u8>,
}

fn chain_index() -> Result<openssl::ex_data::Index<Ssl, ChainCache>, Error> {
    static INDEX: OnceLock<Result<openssl::ex_data::Index<Ssl, ChainCache>, Error>> = OnceLock::new();
    *INDEX.get_or_init(|| Ssl::new_ex_index().map_err(openssl_failed(c"SSL_get_ex_new_index() failed")))
}

/// The client certificate then the rest of the chain it sent, as PEM, byte-identical
/// to `PEM_write_X509` of each; `None` when the client sent no certificate. On a
/// resumed session the result is the leaf alone, always: OpenSSL keeps the chain of a
/// session only while it was never serialized (tickets, nginx's shared cache) and
/// drops it otherwise, so one rule for every cache keeps the result deterministic.
pub fn full_chain_pem(ssl: &mut SslRef) -> Result<Option<&[u8]>, Error> {
    ensure_server(ssl)?;
    // SAFETY: borrowed from the live session; checked for NULL.
    let leaf = unsafe { sys::ssl_peer_certificate(ssl.as_ptr()) };
    if leaf.is_null() {
        return Ok(None);
    }
    let index = chain_index()?;
    let fresh = ssl.ex_data(index).is_some_and(|c| c.leaf.as_ptr() == leaf);
    if !fresh {
        // SAFETY: non-NULL and alive for this call; to_owned takes a reference.
        let leaf = unsafe { X509Ref::from_ptr(leaf) };
        let mut pem = Vec::new();
        append_pem(&mut pem, leaf)?;
        let chain = if ssl.session_reused() { None } else { ssl.peer_cert_chain() };
        if let Some(chain) = chain {
            for cert in chain {
                append_pem(&mut pem, cert)?;
            }
        }
        ssl.set_ex_data(index, ChainCache { leaf: leaf.to_owned(), pem });
    }
    Ok(ssl.ex_data(index).map(|c| c.pem.as_slice()))
}

/// Whether this connection's session was resumed, and the server name (SNI) the session
/// was first established under (`SSL_SESSION_get0_hostname`), if any. A resumed session
/// keeps its original SNI, so a plugin can refuse a session made for another host
/// (PITFALLS 2: OpenSSL resumes before SNI selects the server block).
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

const PEM_BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----\n";
const PEM_END: &[u8] = b"-----END CERTIFICATE-----\n";

/// `PEM_write_X509` without a BIO: base64 of the DER in 64-character lines.
fn append_pem(out: &mut Vec<u8>, cert: &X509Ref) -> Result<(), Error> {
    let der = cert.to_der().map_err(openssl_failed(c"i2d_X509() failed"))?;
    let b64_len = der.len().div_ceil(3) * 4;
    out.reserve(PEM_BEGIN.len() + b64_len + b64_len.div_ceil(64) + PEM_END.len());
    out.extend_from_slice(PEM_BEGIN);
    for line in der.chunks(48) {
        base64(out, line);
        out.push(b'\n');
    }
    out.extend_from_slice(PEM_END);
    Ok(())
}

fn base64(out: &mut Vec<u8>, bytes: &[u8]) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for group in bytes.chunks(3) {
        let b = [group[0], *group.get(1).unwrap_or(&0), *group.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(ALPHABET[(n >> 18) as usize & 63]);
        out.push(ALPHABET[(n >> 12) as usize & 63]);
        out.push(if group.len() > 1 { ALPHABET[(n >> 6) as usize & 63] } else { b'=' });
        out.push(if group.len() > 2 { ALPHABET[n as usize & 63] } else { b'=' });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            let mut out = Vec::new();
            base64(&mut out, input.as_bytes());
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }

    #[test]
    fn unique_sid_ctx_differs_per_call() {
        let a = unique_sid_ctx(1);
        let b = unique_sid_ctx(1);
        assert_ne!(a, b);
        assert_eq!(&a[..8], b"rctls-nr");
    }
}
