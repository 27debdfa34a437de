//! Certificate stacks built from fuzzed input handed to request_client_certificate (as
//! CA hints and verify store) and, through a real in-memory handshake, to the chain and
//! verify getters (as the chain the client sends): certificates parsed from fuzzed DER,
//! empty stacks, huge names (up to ~64 KB of DER), duplicate subjects and certificates,
//! and thousands of CAs.
//!
//! Checks, independent of the library's code: request is OK exactly when the distinct
//! subjects' encoded size fits the TLS limit; then the CA list on the SSL is those
//! subjects, each once, in order. Otherwise it is an ERROR naming the limit and the SSL is
//! untouched. After a handshake the chain is byte for byte the PEM of what the client
//! sent, and the verify result is NONE / SUCCESS / FAILED:<reason>.
//!
//! Input: a flags byte, then records `op, ...` (see `build`).
#![no_main]

#[path = "support.rs"]
mod support;

use std::collections::HashSet;
use std::ffi::{c_char, c_int};
use std::ptr::null;

use foreign_types::{ForeignType, ForeignTypeRef};
use libfuzzer_sys::fuzz_target;
use openssl::ssl::{Ssl, SslContext, SslVersion};
use openssl::stack::{Stack, StackRef};
use openssl::x509::{X509, X509Name};
use openssl_sys::SSL;
use resty_client_tls::ffi::*;
use resty_client_tls::tls::{RESTY_CLIENT_TLS_MAX_HINT_BYTES, RESTY_CLIENT_TLS_MAX_HINT_BYTES_TLS13};
use resty_client_tls::{
    RESTY_CLIENT_TLS_AGAIN, RESTY_CLIENT_TLS_DECLINED, RESTY_CLIENT_TLS_ERROR, RESTY_CLIENT_TLS_OK,
};
use support::*;

const MAX_CERTS: usize = 3000;
/// Certificates signed per input at most (signing dominates the cost of an input).
const MAX_SIGNED: usize = 6;

struct World {
    pki: Pki,
    ctx12: SslContext,
    ctx13: SslContext,
    /// Distinct small CAs to draw "thousands of CAs" from without signing each time.
    pool: Vec<X509>,
}

thread_local! {
    static WORLD: World = {
        let pki = Pki::new();
        let pool = (0..3000u32).map(|i| issue(&name(&format!("Pool CA {i}")), &pki.ca_key, None, i + 10)).collect();
        World { ctx12: server_ctx(&pki, SslVersion::TLS1_2), ctx13: server_ctx(&pki, SslVersion::TLS1_3), pki, pool }
    };
}

/// The certificates described by the input.
fn build(w: &World, input: &mut Input) -> Vec<X509> {
    let mut certs: Vec<X509> = Vec::new();
    let mut serial = 100_000u32;
    let mut signed = 0usize;
    while !input.is_empty() && certs.len() < MAX_CERTS {
        match input.u8() % 7 {
            // Raw DER, as OpenSSL parses it.
            0 => {
                let len = usize::from(input.u16());
                if let Ok(x) = X509::from_der(input.bytes(len)) {
                    certs.push(x);
                }
                openssl::error::ErrorStack::get();
            }
            // A CA with a big name: units x unit_len bytes of OUs.
            1 if signed < MAX_SIGNED => {
                signed += 1;
                let units = usize::from(input.u16() % 1100);
                let unit_len = usize::from(input.u8() % 64) + 1;
                let fill = input.u8();
                let n = big_name(&format!("Big {serial}"), units, unit_len, fill);
                serial += 1;
                certs.push(issue(&n, &w.pki.ca_key, None, serial));
            }
            // The same certificate again.
            2 => {
                if !certs.is_empty() {
                    let i = usize::from(input.u16()) % certs.len();
                    certs.push(certs[i].clone());
                }
            }
            // Another certificate (new serial) with an existing subject.
            3 if signed < MAX_SIGNED => {
                signed += 1;
                if !certs.is_empty() {
                    let i = usize::from(input.u16()) % certs.len();
                    let subject: X509Name = certs[i].subject_name().to_owned().unwrap();
                    serial += 1;
                    certs.push(issue(&subject, &w.pki.ca_key, None, serial));
                }
            }
            // The last certificate repeated up to thousands of times.
            4 => {
                let k = many(input, MAX_CERTS);
                if let Some(last) = certs.last().cloned() {
                    for _ in 0..k.min(MAX_CERTS - certs.len()) {
                        certs.push(last.clone());
                    }
                }
            }
            // Up to thousands of distinct CAs from the pool.
            5 => {
                let start = usize::from(input.u16()) % w.pool.len();
                let k = many(input, w.pool.len() - start + 1);
                certs.extend(w.pool[start..start + k.min(MAX_CERTS - certs.len())].iter().cloned());
            }
            // The real root (so verification can succeed).
            6 => certs.push(w.pki.root.clone()),
            _ => {}
        }
    }
    certs
}

/// A count below `limit`: up to thousands when the selector byte ends in 0xF (1 in 16),
/// else a few dozen, so that the costly thousands-of-CAs inputs (building an X509_STORE
/// is quadratic in OpenSSL 3.0) are explored without drowning the rest.
fn many(input: &mut Input, limit: usize) -> usize {
    let big = input.u8() & 0x0F == 0x0F;
    let n = usize::from(input.u16());
    if big { n % limit } else { n % limit.min(48) }
}

fn stack_of(certs: &[X509]) -> Stack<X509> {
    let mut s = Stack::new().unwrap();
    for c in certs {
        s.push(c.clone()).unwrap();
    }
    s
}

/// The CA names the library must install: distinct subject DERs in first-seen order, and
/// their encoded size (2-byte length + DER each).
fn distinct_subjects(certs: &[X509]) -> (Vec<Vec<u8>>, usize) {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut size = 0;
    for c in certs {
        let der = c.subject_name().to_der().unwrap();
        if seen.insert(der.clone()) {
            size += 2 + der.len();
            out.push(der);
        }
    }
    (out, size)
}

fn ca_list(ssl: *mut SSL) -> Option<Vec<Vec<u8>>> {
    unsafe {
        let list = SSL_get_client_CA_list(ssl);
        if list.is_null() {
            return None;
        }
        let list = StackRef::<X509Name>::from_ptr(list);
        Some(list.iter().map(|n| n.to_der().unwrap()).collect())
    }
}

fn verify_mode(ssl: *mut SSL) -> c_int {
    unsafe { openssl_sys::SSL_get_verify_mode(ssl) }
}

/// Calls request on `ssl` with `certs` and checks the outcome against the oracle.
/// Returns whether it was accepted.
fn request_and_check(ssl: *mut SSL, certs: &[X509], depth: c_int, limit: usize) -> bool {
    let (want, size) = distinct_subjects(certs);
    let before = (ca_list(ssl), verify_mode(ssl));
    let stack = stack_of(certs);
    let mut err: *const c_char = null();
    let rc = unsafe { resty_client_tls_request_client_certificate(ssl, stack.as_ptr(), depth, &mut err) };
    drop(stack); // the caller may free it right away
    if size <= limit {
        assert_eq!(
            rc,
            RESTY_CLIENT_TLS_OK,
            "{} certs, {} hint bytes <= {limit}: {}",
            certs.len(),
            size,
            if err.is_null() { String::new() } else { msg(err) }
        );
        assert_eq!(ca_list(ssl).unwrap_or_default(), want, "CA names: distinct, in order");
        assert_ne!(verify_mode(ssl) & openssl_sys::SSL_VERIFY_PEER, 0);
        true
    } else {
        assert_eq!(rc, RESTY_CLIENT_TLS_ERROR, "{size} hint bytes > {limit}");
        assert!(msg(err).contains("65535"), "{}", msg(err));
        assert_eq!((ca_list(ssl), verify_mode(ssl)), before, "an ERROR changed the SSL");
        false
    }
}

fn chain_of(ssl: *mut SSL) -> Option<Vec<u8>> {
    let mut err: *const c_char = null();
    let mut len = 0usize;
    let rc =
        unsafe { resty_client_tls_get_full_client_certificate_chain(ssl, std::ptr::null_mut(), &mut len, &mut err) };
    if rc == RESTY_CLIENT_TLS_DECLINED {
        return None;
    }
    assert_eq!(rc, RESTY_CLIENT_TLS_AGAIN);
    let mut buf = vec![0u8; len];
    let rc =
        unsafe { resty_client_tls_get_full_client_certificate_chain(ssl, buf.as_mut_ptr().cast(), &mut len, &mut err) };
    assert_eq!(rc, RESTY_CLIENT_TLS_OK);
    assert_eq!(len, buf.len());
    Some(buf)
}

fn verify_of(ssl: *mut SSL) -> String {
    let mut err: *const c_char = null();
    let mut buf = [0u8; 512];
    let mut len = buf.len();
    let rc = unsafe { resty_client_tls_get_client_verify(ssl, buf.as_mut_ptr().cast(), &mut len, &mut err) };
    assert_eq!(rc, RESTY_CLIENT_TLS_OK);
    String::from_utf8(buf[..len].to_vec()).unwrap()
}

fuzz_target!(|data: &[u8]| {
    WORLD.with(|w| {
        let mut input = Input::new(data);
        let flags = input.u8();
        let depth = [-1, 0, 1, 2, 5, 100, -7, 1000][usize::from(flags >> 5)];
        let certs = build(w, &mut input);

        // 1. Before any handshake: the TLS 1.3 limit applies (version not known yet).
        let ctx = if flags & 2 != 0 { &w.ctx13 } else { &w.ctx12 };
        let fresh = Ssl::new(ctx).unwrap();
        request_and_check(fresh.as_ptr(), &certs, depth, RESTY_CLIENT_TLS_MAX_HINT_BYTES_TLS13);
        // A second call replaces the first; NULL drops it; disable works on it.
        if flags & 4 != 0 {
            request_and_check(fresh.as_ptr(), &certs[..certs.len() / 2], depth, RESTY_CLIENT_TLS_MAX_HINT_BYTES_TLS13);
            let mut err: *const c_char = null();
            let rc = unsafe { resty_client_tls_request_client_certificate(fresh.as_ptr(), null(), depth, &mut err) };
            assert_eq!(rc, RESTY_CLIENT_TLS_OK);
            // Back to the SSL_CTX's list, which is empty here.
            assert_eq!(ca_list(fresh.as_ptr()).unwrap_or_default(), Vec::<Vec<u8>>::new());
            let rc = unsafe { resty_client_tls_disable_session_reuse(fresh.as_ptr(), &mut err) };
            assert_eq!(rc, RESTY_CLIENT_TLS_OK);
        }
        drop(fresh);

        // 2. A real handshake: the server requests with the stack in its certificate
        // phase, the client sends the leaf followed by the stack as its chain.
        if flags & 1 == 0 {
            return;
        }
        let (version, limit) = if flags & 2 != 0 {
            (SslVersion::TLS1_3, RESTY_CLIENT_TLS_MAX_HINT_BYTES_TLS13)
        } else {
            (SslVersion::TLS1_2, RESTY_CLIENT_TLS_MAX_HINT_BYTES)
        };
        let send_cert = flags & 8 == 0;
        let sent: Vec<X509> = if flags & 16 != 0 { certs.iter().take(200).cloned().collect() } else { Vec::new() };
        let cctx = client_ctx(version, send_cert.then_some((&w.pki.leaf, &w.pki.leaf_key)), &sent).build();
        let hook_certs = certs.clone();
        let accepted = std::rc::Rc::new(std::cell::Cell::new(None));
        let acc = accepted.clone();
        let hook = move |ssl: *mut SSL| {
            acc.set(Some(request_and_check(ssl, &hook_certs, depth, limit)));
            if flags & 4 != 0 {
                let mut err: *const c_char = null();
                assert_eq!(unsafe { resty_client_tls_disable_session_reuse(ssl, &mut err) }, RESTY_CLIENT_TLS_OK);
            }
        };
        let Some((mut s, mut c)) = handshake(Ssl::new(ctx).unwrap(), Ssl::new(&cctx).unwrap(), hook) else {
            // OpenSSL refused the handshake (e.g. a chain over its 100 KB max_cert_list):
            // allowed, as long as nothing crashed.
            openssl::error::ErrorStack::get();
            return;
        };
        pump(&mut s, &mut c);
        assert!(accepted.get().is_some(), "the certificate phase ran");
        let ssl = s.ssl().as_ptr();
        let chain = chain_of(ssl);
        let verify = verify_of(ssl);
        if accepted.get() == Some(true) && send_cert {
            let mut want = w.pki.leaf.to_pem().unwrap();
            for x in &sent {
                want.extend(x.to_pem().unwrap());
            }
            assert_eq!(chain.as_deref(), Some(&want[..]), "chain differs from what the client sent");
            assert!(verify == "SUCCESS" || verify.starts_with("FAILED:"), "{verify}");
        } else {
            assert_eq!(chain, None, "a chain without a certificate request or certificate");
            assert_eq!(verify, "NONE");
        }
        // A second read comes from the per-connection cache: identical.
        assert_eq!(chain_of(ssl), chain);
        let _ = RESTY_CLIENT_TLS_MAX_HINT_BYTES;
    });
});
