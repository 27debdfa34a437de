//! The client's certificate chain as PEM. Many connections come from few clients, so an
//! encoded chain is kept once per worker, by content, in a cache bounded in bytes
//! (`resty_client_tls_cache_limit(RESTY_CLIENT_TLS_CACHE_CHAIN)`) and shared by every
//! connection whose client sent the same certificates. A connection itself keeps only a
//! reference to it (in its ex_data), for repeated calls.

use std::cell::RefCell;
use std::ffi::c_int;
use std::hash::Hasher;
use std::sync::{Arc, OnceLock};

use foreign_types::ForeignTypeRef;
use openssl::ssl::{Ssl, SslRef};
use openssl::stack::StackRef;
use openssl::x509::{X509, X509Ref};

use crate::cache::{self, Lru, RESTY_CLIENT_TLS_CACHE_CHAIN};
use crate::error::{Error, openssl_failed};
use crate::sys;
use crate::tls::ensure_server;

/// One chain as the client sent it: each certificate's DER (the exact comparison of a
/// cache lookup) and the PEM of all of them.
struct Encoded {
    ders: Vec<Vec<u8>>,
    pem: Box<[u8]>,
}

impl Encoded {
    fn cost(&self) -> usize {
        self.pem.len() + self.ders.iter().map(|d| d.len() + 24).sum::<usize>() + 64
    }
}

/// What a connection keeps: the peer certificate it was made for (a reference, so its
/// address cannot be reused by another certificate while we compare it) and the
/// shared encoding.
struct ChainCache {
    leaf: X509,
    encoded: Arc<Encoded>,
}

fn chain_index() -> Result<openssl::ex_data::Index<Ssl, ChainCache>, Error> {
    static INDEX: OnceLock<Result<openssl::ex_data::Index<Ssl, ChainCache>, Error>> = OnceLock::new();
    *INDEX.get_or_init(|| Ssl::new_ex_index().map_err(openssl_failed(c"SSL_get_ex_new_index() failed")))
}

thread_local! {
    static CHAINS: RefCell<Lru<Arc<Encoded>>> = RefCell::new(Lru::new());
}

/// (bytes, entries) of this thread's chain cache.
pub fn chain_cache_usage() -> (usize, usize) {
    CHAINS.with(|c| c.borrow().usage())
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
        let chain = if ssl.session_reused() { None } else { ssl.peer_cert_chain() };
        let encoded = encoded(leaf, chain)?;
        ssl.set_ex_data(index, ChainCache { leaf: leaf.to_owned(), encoded });
    }
    Ok(ssl.ex_data(index).map(|c| &*c.encoded.pem))
}

/// The encoding of leaf + chain: from the cache when a client sent exactly these
/// certificates before (same DER, byte for byte), else encoded now and cached.
fn encoded(leaf: &X509Ref, chain: Option<&StackRef<X509>>) -> Result<Arc<Encoded>, Error> {
    let certs = || std::iter::once(leaf).chain(chain.into_iter().flatten());
    let ders: Vec<Vec<u8>> =
        certs().map(|c| c.to_der().map_err(openssl_failed(c"i2d_X509() failed"))).collect::<Result<_, _>>()?;
    let mut h = cache::hasher();
    h.write_usize(ders.len());
    for cert in certs() {
        h.write(cert.signature().as_slice());
    }
    let hash = h.finish();
    let limit = cache::limit(RESTY_CLIENT_TLS_CACHE_CHAIN);
    if let Some(hit) = CHAINS.with(|c| c.borrow_mut().get(hash, limit, |e| e.ders == ders)) {
        return Ok(hit);
    }
    let pem = chain_pem(&ders).into_boxed_slice();
    let encoded = Arc::new(Encoded { ders, pem });
    let cost = encoded.cost();
    CHAINS.with(|c| c.borrow_mut().insert(hash, encoded.clone(), cost, limit));
    Ok(encoded)
}

/// `PEM_write_X509` of each certificate (given as DER), concatenated, without a BIO: the
/// output sized once and the base64 written in place in 64-character lines.
fn chain_pem(ders: &[Vec<u8>]) -> Vec<u8> {
    let total = ders.iter().map(|d| pem_len(d.len())).sum();
    let mut out = vec![0u8; total];
    let mut at = 0;
    for der in ders {
        let len = pem_len(der.len());
        write_pem(&mut out[at..at + len], der);
        at += len;
    }
    out
}

const PEM_BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----\n";
const PEM_END: &[u8] = b"-----END CERTIFICATE-----\n";

/// Bytes of the PEM of a `der_len`-byte certificate.
fn pem_len(der_len: usize) -> usize {
    let b64 = der_len.div_ceil(3) * 4;
    PEM_BEGIN.len() + b64 + b64.div_ceil(64) + PEM_END.len()
}

/// Writes the PEM of `der` into `out`, which is exactly `pem_len(der.len())` long:
/// OpenSSL's `EVP_EncodeBlock` on each 48-byte line (64 characters), as
/// `PEM_write_X509` lays them out.
fn write_pem(out: &mut [u8], der: &[u8]) {
    let (head, body) = out.split_at_mut(PEM_BEGIN.len());
    head.copy_from_slice(PEM_BEGIN);
    let mut at = 0;
    for line in der.chunks(48) {
        let len = line.len().div_ceil(3) * 4;
        // EVP_EncodeBlock writes `len` characters and a NUL after them: the NUL lands
        // where this line's newline goes, inside `body`, and is overwritten.
        assert!(at + len < body.len(), "pem_len leaves room for every line and its newline");
        // SAFETY: `line` is at most 48 readable bytes; `body[at..]` has room for `len`
        // characters and the NUL (checked above).
        let written =
            unsafe { openssl_sys::EVP_EncodeBlock(body[at..].as_mut_ptr(), line.as_ptr(), line.len() as c_int) };
        debug_assert_eq!(written as usize, len);
        body[at + len] = b'\n';
        at += len + 1;
    }
    body[at..].copy_from_slice(PEM_END);
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
            let mut out = vec![0u8; pem_len(input.len())];
            write_pem(&mut out, input.as_bytes());
            let body = &out[PEM_BEGIN.len()..out.len() - PEM_END.len()];
            let want = if want.is_empty() { String::new() } else { format!("{want}\n") };
            assert_eq!(String::from_utf8(body.to_vec()).unwrap(), want);
        }
    }
}
