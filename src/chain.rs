//! The client's certificate chain as PEM. Many connections come from few clients, so an
//! encoded chain is kept once per worker, by content, in a cache bounded in bytes
//! (`resty_client_tls_cache_limit(RESTY_CLIENT_TLS_CACHE_CHAIN)`) and shared by every
//! connection whose client sent the same certificates. A connection itself keeps only a
//! reference to it (in its ex_data), for repeated calls.

use std::cell::RefCell;
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
const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Bytes of the PEM of a `der_len`-byte certificate.
fn pem_len(der_len: usize) -> usize {
    let b64 = der_len.div_ceil(3) * 4;
    PEM_BEGIN.len() + b64 + b64.div_ceil(64) + PEM_END.len()
}

/// Writes the PEM of `der` into `out`, which is exactly `pem_len(der.len())` long.
/// A 64-byte alphabet, not a larger table: the first call on a connection runs with
/// cold caches, where one cache line beats a faster loop over 8 KB.
fn write_pem(out: &mut [u8], der: &[u8]) {
    let (head, body) = out.split_at_mut(PEM_BEGIN.len());
    head.copy_from_slice(PEM_BEGIN);
    // Full 48-byte lines (64 characters and a newline): fixed-size arrays, so the loop
    // has no bounds checks.
    let full = der.len() / 48;
    let (lines, tail) = body.split_at_mut(full * 65);
    for (src, dst) in der.chunks_exact(48).zip(lines.chunks_exact_mut(65)) {
        let (Ok(src), Ok(dst)) = (<&[u8; 48]>::try_from(src), <&mut [u8; 65]>::try_from(dst)) else {
            unreachable!("exact chunks")
        };
        for i in 0..16 {
            dst[4 * i..4 * i + 4].copy_from_slice(&encode3(src[3 * i], src[3 * i + 1], src[3 * i + 2]));
        }
        dst[64] = b'\n';
    }
    // The last, shorter line, '='-padded.
    let rest = &der[full * 48..];
    let mut o = 0;
    if !rest.is_empty() {
        for g in rest.chunks(3) {
            let mut four = encode3(g[0], *g.get(1).unwrap_or(&0), *g.get(2).unwrap_or(&0));
            if g.len() < 3 {
                four[3] = b'=';
            }
            if g.len() < 2 {
                four[2] = b'=';
            }
            tail[o..o + 4].copy_from_slice(&four);
            o += 4;
        }
        tail[o] = b'\n';
        o += 1;
    }
    tail[o..].copy_from_slice(PEM_END);
}

#[inline(always)]
fn encode3(a: u8, b: u8, c: u8) -> [u8; 4] {
    let n = (usize::from(a) << 16) | (usize::from(b) << 8) | usize::from(c);
    [B64[(n >> 18) & 63], B64[(n >> 12) & 63], B64[(n >> 6) & 63], B64[n & 63]]
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
