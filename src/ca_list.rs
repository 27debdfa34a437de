//! CA lists: what a caller's `STACK_OF(X509)` turns into for `request_client_certificate`
//! (a shared verify store and the encoded distinct subjects), the TLS size limits of the
//! hints, and the per-worker cache that builds each distinct list once.

use std::cell::RefCell;
use std::collections::HashSet;
use std::hash::Hasher;
use std::rc::Rc;

use foreign_types::ForeignTypeRef;
use openssl::ssl::SslRef;
use openssl::stack::{Stack, StackRef};
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::{X509, X509Name};

use crate::cache::{self, Lru, RESTY_CLIENT_TLS_CACHE_CA};
use crate::error::{Error, openssl_failed};

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

pub(crate) fn hint_limit(ssl: &SslRef) -> usize {
    // SAFETY: plain getter; in the certificate phase it is the negotiated version.
    let version = unsafe { openssl_sys::SSL_version(ssl.as_ptr()) };
    if version < openssl_sys::TLS1_3_VERSION {
        RESTY_CLIENT_TLS_MAX_HINT_BYTES
    } else {
        RESTY_CLIENT_TLS_MAX_HINT_BYTES_TLS13
    }
}

/// What a CA list turns into, built once per distinct list and shared by the
/// connections that use it: the verify store (reference-counted, installed with an
/// up-ref) and the DER of the distinct subjects in the caller's order.
///
/// Each connection gets its own `X509_NAME` objects, decoded from that DER:
/// `SSL_set_client_CA_list` takes ownership of the stack and every name in it, and the
/// SSL frees them when it is freed or its list replaced. Nothing of ours is left inside
/// the SSL to take back, so nothing depends on the order in which OpenSSL frees an SSL.
pub struct CaList {
    /// The certificates the list was built from, in order, each up-referenced: the
    /// cache key. Holding them means a caller passing the same X509 objects again (a
    /// cached parsed chain, as Kong keeps) is recognised by address alone; other
    /// objects are compared by content (`X509_cmp`).
    certs: Vec<X509>,
    pub(crate) store: X509Store,
    /// DER of each distinct subject.
    names: Vec<Vec<u8>>,
    /// Bytes the names take in a CertificateRequest (2-byte length + DER each).
    encoded: usize,
    /// Bytes of the certificates' DER.
    cert_bytes: usize,
}

impl CaList {
    /// Builds the store and the distinct subjects. Borrows `certs` only for the call:
    /// certificates are up-referenced into the store, subjects encoded.
    fn build(certs: &StackRef<X509>) -> Result<CaList, Error> {
        // The stack's count comes from the caller: never let it size an allocation alone.
        let capacity = certs.len().min(256);
        let mut names = Vec::with_capacity(capacity);
        let mut seen: HashSet<Vec<u8>> = HashSet::with_capacity(capacity);
        let mut encoded = 0usize;
        for cert in certs {
            let der = cert.subject_name().to_der().map_err(openssl_failed(c"i2d_X509_NAME() failed"))?;
            if seen.contains(&der) {
                continue; // this subject is hinted already
            }
            encoded += 2 + der.len();
            if encoded > RESTY_CLIENT_TLS_MAX_HINT_BYTES {
                // Too large for any TLS version: fail before building the store, which is
                // quadratic in the number of certificates in OpenSSL 3.0.
                return Err(Error::HintsTooLarge);
            }
            seen.insert(der.clone());
            names.push(der);
        }
        let mut store = X509StoreBuilder::new().map_err(openssl_failed(c"X509_STORE_new() failed"))?;
        let mut cert_bytes = 0;
        for cert in certs {
            store.add_cert(cert.to_owned()).map_err(openssl_failed(c"X509_STORE_add_cert() failed"))?;
            cert_bytes += cert.to_der().map_err(openssl_failed(c"i2d_X509() failed"))?.len();
        }
        let certs = certs.iter().map(|c| c.to_owned()).collect();
        Ok(CaList { certs, store: store.build(), names, encoded, cert_bytes })
    }

    /// How many distinct subjects are hinted.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Bytes the hints take in a CertificateRequest.
    pub fn encoded_len(&self) -> usize {
        self.encoded
    }

    /// What the cache counts for this list: an upper estimate of the memory it can keep
    /// alive. Per list 2 KiB (the store and its tables); per certificate eleven times its
    /// DER (a parsed X509 of OpenSSL 3.0 took 6.4 KiB for a 620-byte certificate, about
    /// 10.3 times, measured with 4096 lists held by the cache alone) plus 256 bytes of
    /// store entry; the names' DER. The certificates are the caller's objects, referenced:
    /// when the caller keeps its parsed lists (as Kong does) the real cost is only the
    /// store and the names, about 2 KiB for a list of 5 CAs (measured with 4096 lists).
    pub fn cost(&self) -> usize {
        2048 + self.certs.len() * 256 + 11 * self.cert_bytes + self.encoded + std::mem::size_of::<CaList>()
    }

    /// A connection's own copy of the names, for `SSL_set_client_CA_list` (which takes
    /// ownership of the stack and of every name in it). Decoding the kept DER
    /// (`d2i_X509_NAME`) does half the work of `X509_NAME_dup` (an encode and a
    /// decode), and the decoded name keeps its encoding for the CertificateRequest.
    pub(crate) fn names_for_connection(&self) -> Result<Stack<X509Name>, Error> {
        let mut stack = Stack::new().map_err(openssl_failed(c"sk_X509_NAME_new_null() failed"))?;
        for der in &self.names {
            let name = X509Name::from_der(der).map_err(openssl_failed(c"d2i_X509_NAME() failed"))?;
            stack.push(name).map_err(openssl_failed(c"sk_X509_NAME_push() failed"))?;
        }
        Ok(stack)
    }
}

thread_local! {
    // nginx workers are single-threaded: one cache per worker, no locking.
    static CA_CACHE: RefCell<Lru<Rc<CaList>>> = RefCell::new(Lru::new());
}

/// The `CaList` for `certs`, from the cache when a list with the same certificates was
/// seen before (the same X509 objects, or equal ones: see `same_certs`). Keyed by
/// content, so it is right whatever the caller frees or reuses. The cache holds at most
/// `resty_client_tls_cache_limit(RESTY_CLIENT_TLS_CACHE_CA)` bytes (estimated: see
/// `CaList::cost`); the least recently used lists go first.
pub fn ca_list(certs: &StackRef<X509>) -> Result<Rc<CaList>, Error> {
    let hash = content_hash(certs);
    let limit = cache::limit(RESTY_CLIENT_TLS_CACHE_CA);
    let hit = CA_CACHE.with(|c| c.borrow_mut().get(hash, limit, |l| same_certs(&l.certs, certs)));
    if let Some(list) = hit {
        return Ok(list);
    }
    let list = Rc::new(CaList::build(certs)?);
    let cost = list.cost();
    CA_CACHE.with(|c| c.borrow_mut().insert(hash, list.clone(), cost, limit));
    Ok(list)
}

/// (bytes, entries) of this thread's CA-list cache.
pub fn ca_cache_usage() -> (usize, usize) {
    CA_CACHE.with(|c| c.borrow().usage())
}

/// A hash of the certificates' signatures (at most their first 32 bytes each: the CA
/// lists are the server's own, and equality is checked in full by `same_certs`).
fn content_hash(certs: &StackRef<X509>) -> u64 {
    let mut h = cache::hasher();
    h.write_usize(certs.len());
    for cert in certs {
        let sig = cert.signature().as_slice();
        h.write(&sig[..sig.len().min(32)]);
    }
    h.finish()
}

/// Whether `certs` holds the same certificates as `held`, in the same order: the same
/// objects (cheap: `held` keeps them alive, so an address cannot have been reused), or
/// equal ones by `X509_cmp` (OpenSSL's cached SHA-1 of each, then its DER TBS bytes).
fn same_certs(held: &[X509], certs: &StackRef<X509>) -> bool {
    if held.len() != certs.len() {
        return false;
    }
    if held.iter().zip(certs).all(|(a, b)| a.as_ptr() == b.as_ptr()) {
        return true;
    }
    // SAFETY: both are live certificates; X509_cmp only reads (and caches extensions).
    held.iter().zip(certs).all(|(a, b)| unsafe { openssl_sys::X509_cmp(a.as_ptr(), b.as_ptr()) } == 0)
}
