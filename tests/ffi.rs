//! The exports called as C calls them, from inside real TLS handshakes (TLS 1.2 and 1.3)
//! whose server runs a certificate callback, the hook of nginx's certificate phase.

mod common;

use std::ffi::{c_char, c_int};
use std::ptr::{null, null_mut};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use common::*;
use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::ssl::{Ssl, SslContext, SslMethod, SslVersion};
use openssl::stack::Stack;
use openssl::x509::X509;
use resty_client_tls::ffi::*;
use resty_client_tls::{RESTY_CLIENT_TLS_AGAIN, RESTY_CLIENT_TLS_ERROR, RESTY_CLIENT_TLS_OK};

const VERSIONS: [SslVersion; 2] = [SslVersion::TLS1_2, SslVersion::TLS1_3];

#[test]
fn no_client_certificate_is_declined_and_none() {
    let pki = Pki::new();
    for v in VERSIONS {
        let ctx = server_ctx(&pki, v).build();
        let (seen, view) = with_request(&ctx, &Client::default(), Some(stack(&[&pki.root.cert])), -1);
        assert_eq!(seen.chain, None, "{v:?}");
        assert_eq!(seen.verify, "NONE", "{v:?}");
        assert_eq!(view.ca_names, vec![pki.root.cert.subject_name().to_der().unwrap()], "{v:?}");
    }
}

#[test]
fn good_chain_is_byte_exact_and_succeeds() {
    let pki = Pki::new();
    for v in VERSIONS {
        let ctx = server_ctx(&pki, v).build();
        let client = Client { cert: Some((&pki.leaf, vec![&pki.int.cert])), ..Default::default() };
        let (seen, _) = with_request(&ctx, &client, Some(stack(&[&pki.root.cert])), 2);
        assert_eq!(seen.chain, Some(concat(&[&pki.leaf.cert, &pki.int.cert])), "{v:?}");
        assert_eq!(seen.verify, "SUCCESS", "{v:?}");
        assert!(!seen.resumed);
    }
}

#[test]
fn leaf_only_chain() {
    let pki = Pki::new();
    let ctx = server_ctx(&pki, SslVersion::TLS1_3).build();
    let client = Client { cert: Some((&pki.self_signed, vec![])), ..Default::default() };
    let (seen, _) = with_request(&ctx, &client, None, -1);
    assert_eq!(seen.chain, Some(pki.self_signed.pem()));
}

#[test]
fn depth_zero_fails_verification_but_not_the_handshake() {
    let pki = Pki::new();
    let ctx = server_ctx(&pki, SslVersion::TLS1_3).build();
    let client = Client { cert: Some((&pki.leaf, vec![&pki.int.cert])), ..Default::default() };
    let (seen, _) = with_request(&ctx, &client, Some(stack(&[&pki.root.cert])), 0);
    assert!(seen.verify.starts_with("FAILED:"), "{}", seen.verify);
    assert!(seen.chain.is_some());
}

#[test]
fn bad_certificates_fail_verification_but_not_the_handshake() {
    let pki = Pki::new();
    let cases = [
        (&pki.self_signed, vec![], openssl_sys::X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT),
        (&pki.expired, vec![&pki.int.cert], openssl_sys::X509_V_ERR_CERT_HAS_EXPIRED),
        (&pki.unknown, vec![&pki.other_root.cert], openssl_sys::X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN),
        (&pki.leaf, vec![], openssl_sys::X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE),
    ];
    for v in VERSIONS {
        let ctx = server_ctx(&pki, v).build();
        for (cert, chain, code) in &cases {
            let client = Client { cert: Some((*cert, chain.clone())), ..Default::default() };
            let (seen, _) = with_request(&ctx, &client, Some(stack(&[&pki.root.cert])), 3);
            // The reason as this OpenSSL words it ("self signed" in 1.1.1, "self-signed" in 3.x).
            assert_eq!(seen.verify, failed(*code), "{v:?}");
            let sent: Vec<&X509> = std::iter::once(&cert.cert).chain(chain.iter().copied()).collect();
            assert_eq!(seen.chain, Some(concat(&sent)));
        }
    }
}

#[test]
fn hints_keep_order_and_send_each_subject_once() {
    let pki = Pki::new();
    let dup_int = make("Test Intermediate CA", Some(&pki.root), true); // same subject, other key
    let ctx = server_ctx(&pki, SslVersion::TLS1_3).build();
    let ca = stack(&[&pki.int.cert, &pki.other_root.cert, &dup_int.cert, &pki.root.cert, &pki.int.cert]);
    let (_, view) = with_request(&ctx, &Client::default(), Some(ca), -1);
    let want: Vec<Vec<u8>> = [&pki.int.cert, &pki.other_root.cert, &pki.root.cert]
        .iter()
        .map(|c| c.subject_name().to_der().unwrap())
        .collect();
    assert_eq!(view.ca_names, want);
}

#[test]
fn empty_stack_sends_no_hints_and_trusts_nothing() {
    let pki = Pki::new();
    let ctx = server_ctx(&pki, SslVersion::TLS1_2).build();
    let client = Client { cert: Some((&pki.leaf, vec![&pki.int.cert])), ..Default::default() };
    let (seen, view) = with_request(&ctx, &client, Some(stack(&[])), 3);
    assert!(view.ca_names.is_empty());
    assert_eq!(seen.verify, failed(openssl_sys::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY));
}

#[test]
fn caller_may_free_ca_certs_right_after_the_call() {
    let pki = Pki::new();
    let ctx = server_ctx(&pki, SslVersion::TLS1_3).build();
    let client = Client { cert: Some((&pki.leaf, vec![&pki.int.cert])), ..Default::default() };
    let (seen, view) = handshake(
        &ctx,
        &client,
        move |ssl| {
            // Built, used and freed (with its certificates' last references) inside the
            // callback, before OpenSSL sends the CertificateRequest or verifies.
            let root = X509::from_pem(&Pki::new().root.cert.to_pem().unwrap()).unwrap();
            let s = stack(&[&root]);
            drop(root);
            request(ssl, s.as_ptr(), 2).unwrap();
            drop(s);
        },
        observe,
    );
    // The root above is a fresh PKI's: the client's chain does not verify against it,
    // but the hint arrived intact after the stack was gone.
    assert_eq!(view.ca_names.len(), 1);
    assert!(seen.verify.starts_with("FAILED:"), "{}", seen.verify);
    // And with the right root, freed the same way: SUCCESS.
    let root_pem = pki.root.cert.to_pem().unwrap();
    let (seen, _) = handshake(
        &ctx,
        &client,
        move |ssl| {
            let s = stack(&[&X509::from_pem(&root_pem).unwrap()]);
            request(ssl, s.as_ptr(), 2).unwrap();
            drop(s);
        },
        observe,
    );
    assert_eq!(seen.verify, "SUCCESS");
}

#[test]
fn a_second_call_replaces_the_first() {
    let pki = Pki::new();
    let mut b = server_ctx(&pki, SslVersion::TLS1_3);
    b.set_client_ca_list(openssl::stack::Stack::from_iter_names(&[&pki.other_root.cert]));
    let ctx = b.build();
    let client = Client { cert: Some((&pki.leaf, vec![&pki.int.cert])), ..Default::default() };
    let (root, int) = (pki.root.cert.clone(), pki.int.cert.clone());
    // CA list then another: only the second is hinted and trusted.
    let (seen, view) = handshake(
        &ctx,
        &client,
        move |ssl| {
            request(ssl, stack(&[&int]).as_ptr(), 3).unwrap();
            request(ssl, stack(&[&root]).as_ptr(), 3).unwrap();
        },
        observe,
    );
    assert_eq!(view.ca_names, vec![pki.root.cert.subject_name().to_der().unwrap()]);
    assert_eq!(seen.verify, "SUCCESS");
    // CA list then NULL: back to the SSL_CTX's list.
    let root = pki.root.cert.clone();
    let (_, view) = handshake(
        &ctx,
        &client,
        move |ssl| {
            request(ssl, stack(&[&root]).as_ptr(), 3).unwrap();
            request(ssl, null(), 3).unwrap();
        },
        observe,
    );
    assert_eq!(view.ca_names, vec![pki.other_root.cert.subject_name().to_der().unwrap()]);
}

trait FromNames {
    fn from_iter_names(certs: &[&X509]) -> Stack<openssl::x509::X509Name>;
}
impl FromNames for Stack<openssl::x509::X509Name> {
    fn from_iter_names(certs: &[&X509]) -> Stack<openssl::x509::X509Name> {
        let mut s = Stack::new().unwrap();
        for c in certs {
            s.push(c.subject_name().to_owned().unwrap()).unwrap();
        }
        s
    }
}

fn sized_name(cn: &str, ous: &[usize]) -> openssl::x509::X509Name {
    let mut b = openssl::x509::X509NameBuilder::new().unwrap();
    b.append_entry_by_nid(openssl::nid::Nid::COMMONNAME, cn).unwrap();
    for len in ous {
        b.append_entry_by_nid(openssl::nid::Nid::ORGANIZATIONALUNITNAME, &"x".repeat(*len)).unwrap();
    }
    b.build()
}

/// A name whose hint (2-byte length + DER) takes exactly `want` bytes: a CN plus
/// organizational units of at most 64 characters each.
fn name_of_hint_size(cn: &str, want: usize) -> openssl::x509::X509Name {
    let size = |ous: &[usize]| sized_name(cn, ous).to_der().unwrap().len() + 2;
    let mut ous = Vec::new();
    while size(&ous) + 80 < want {
        ous.push(60);
    }
    // The last unit's length, then the one before it, absorb DER length-field steps.
    for prev in [60, 59, 58, 57] {
        for last in 1..=64 {
            let mut trial = ous.clone();
            if let Some(p) = trial.last_mut() {
                *p = prev;
            }
            trial.push(last);
            if size(&trial) == want {
                return sized_name(cn, &trial);
            }
        }
    }
    panic!("cannot make a name of exactly {want} hint bytes");
}

/// CA certificates whose hints take exactly `total` bytes.
fn cas_of_hint_size(total: usize) -> Vec<X509> {
    let key = ec_key();
    let mut out = Vec::new();
    let mut left = total;
    while left > 0 {
        let want = if left > 2400 { 1200 } else { left };
        out.push(issue(&name_of_hint_size(&format!("CA {:04}", out.len()), want), &key, None, true, -1, 1));
        left -= want;
    }
    out
}

#[test]
fn hints_at_the_limit_work_and_over_it_are_an_error_that_changes_nothing() {
    use resty_client_tls::tls::{RESTY_CLIENT_TLS_MAX_HINT_BYTES, RESTY_CLIENT_TLS_MAX_HINT_BYTES_TLS13};
    let pki = Pki::new();
    for (v, limit) in [
        (SslVersion::TLS1_2, RESTY_CLIENT_TLS_MAX_HINT_BYTES),
        (SslVersion::TLS1_3, RESTY_CLIENT_TLS_MAX_HINT_BYTES_TLS13),
    ] {
        let ctx = server_ctx(&pki, v).build();
        let at_limit = cas_of_hint_size(limit);
        let refs: Vec<&X509> = at_limit.iter().collect();
        let (_, view) = with_request(&ctx, &Client::default(), Some(stack(&refs)), -1);
        assert_eq!(view.ca_names.len(), at_limit.len(), "{v:?}: all hints at the limit");

        let over = cas_of_hint_size(limit + 1);
        let client = Client { cert: Some((&pki.leaf, vec![&pki.int.cert])), ..Default::default() };
        let (seen, view) = handshake(
            &ctx,
            &client,
            move |ssl| {
                let refs: Vec<&X509> = over.iter().collect();
                let err = request(ssl, stack(&refs).as_ptr(), 5).unwrap_err();
                assert!(err.contains("65535"), "{err}");
                // Nothing changed: no certificate request at all.
                assert_eq!(unsafe { openssl_sys::SSL_get_verify_mode(ssl) }, 0);
            },
            observe,
        );
        assert!(view.ca_names.is_empty(), "{v:?}");
        assert_eq!(seen.chain, None, "{v:?}: the client was not asked for a certificate");
        assert_eq!(seen.verify, "NONE");
    }
}

#[test]
fn a_hundred_cas() {
    let pki = Pki::new();
    let key = ec_key();
    let cas: Vec<X509> = (0..100).map(|i| issue(&name(&format!("CA {i}")), &key, None, true, -1, 1)).collect();
    let mut refs: Vec<&X509> = cas.iter().collect();
    refs.push(&pki.root.cert);
    let ctx = server_ctx(&pki, SslVersion::TLS1_3).build();
    let client = Client { cert: Some((&pki.leaf, vec![&pki.int.cert])), ..Default::default() };
    let (seen, view) = with_request(&ctx, &client, Some(stack(&refs)), 2);
    assert_eq!(view.ca_names.len(), 101);
    assert_eq!(seen.verify, "SUCCESS");
}

#[test]
fn chain_buffer_protocol() {
    let pki = Pki::new();
    let ctx = server_ctx(&pki, SslVersion::TLS1_3).build();
    let client = Client { cert: Some((&pki.leaf, vec![&pki.int.cert])), ..Default::default() };
    let want = concat(&[&pki.leaf.cert, &pki.int.cert]).into_bytes();
    let expected = want.clone();
    let (results, _) = handshake(
        &ctx,
        &client,
        |ssl| request(ssl, null(), -1).unwrap(),
        move |ssl| {
            let p = ssl.as_ptr();
            let sentinel = c"untouched";
            let mut err: *const c_char = sentinel.as_ptr();
            let call = |buf: *mut u8, len: &mut usize, err: &mut *const c_char| unsafe {
                resty_client_tls_get_full_client_certificate_chain(p, buf.cast(), len, err)
            };
            let mut out = Vec::new();
            // Size query.
            let mut len = 0;
            out.push((call(null_mut(), &mut len, &mut err), len));
            let needed = len;
            // One byte short: AGAIN, buffer untouched.
            let mut buf = vec![b'#'; needed + 1];
            let mut len = needed - 1;
            out.push((call(buf.as_mut_ptr(), &mut len, &mut err), len));
            assert!(buf.iter().all(|b| *b == b'#'));
            // Exact fit, twice (the second from the cache), then a larger buffer.
            for cap in [needed, needed, needed + 1] {
                let mut len = cap;
                out.push((call(buf.as_mut_ptr(), &mut len, &mut err), len));
                assert_eq!(&buf[..len], &expected[..]);
            }
            assert_eq!(buf[needed], b'#', "no NUL written");
            assert_eq!(err, sentinel.as_ptr(), "err left alone");
            // NULL buf with a length, NULL buf_len.
            let mut len = 10;
            out.push((call(null_mut(), &mut len, &mut err), 0));
            assert_eq!(msg(err), "buf is NULL but *buf_len is not 0");
            let rc = unsafe { resty_client_tls_get_full_client_certificate_chain(p, null_mut(), null_mut(), &mut err) };
            out.push((rc, 0));
            assert_eq!(msg(err), "buf_len is NULL");
            (out, needed)
        },
    );
    let (out, needed) = results;
    assert_eq!(needed, want.len());
    let rcs: Vec<c_int> = out.iter().map(|(rc, _)| *rc).collect();
    assert_eq!(
        rcs,
        [
            RESTY_CLIENT_TLS_AGAIN,
            RESTY_CLIENT_TLS_AGAIN,
            RESTY_CLIENT_TLS_OK,
            RESTY_CLIENT_TLS_OK,
            RESTY_CLIENT_TLS_OK,
            RESTY_CLIENT_TLS_ERROR,
            RESTY_CLIENT_TLS_ERROR
        ]
    );
    assert_eq!(out[0].1, want.len());
    assert_eq!(out[1].1, want.len());
}

#[test]
#[ignore]
fn probe_tls13_hint_limit() {
    let pki = Pki::new();
    let ctx = server_ctx(&pki, SslVersion::TLS1_3).build();
    for total in (65400..=65535).rev() {
        let cas = cas_of_hint_size(total);
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let refs: Vec<&X509> = cas.iter().collect();
            with_request(&ctx, &Client::default(), Some(stack(&refs)), -1)
        }))
        .is_ok();
        if ok {
            println!("TLS1.3 largest working hint total: {total}");
            return;
        }
    }
}

#[test]
fn null_arguments_are_errors_with_messages() {
    let mut err: *const c_char = null();
    let mut len = 16usize;
    let mut buf = [0u8; 16];
    let mut resumed: c_int = 0;
    unsafe {
        assert_eq!(
            resty_client_tls_request_client_certificate(null_mut(), null(), -1, &mut err),
            RESTY_CLIENT_TLS_ERROR
        );
        assert_eq!(msg(err), "ssl is NULL");
        err = null();
        assert_eq!(resty_client_tls_disable_session_reuse(null_mut(), &mut err), RESTY_CLIENT_TLS_ERROR);
        assert_eq!(msg(err), "ssl is NULL");
        err = null();
        let rc =
            resty_client_tls_get_full_client_certificate_chain(null_mut(), buf.as_mut_ptr().cast(), &mut len, &mut err);
        assert_eq!((rc, msg(err).as_str()), (RESTY_CLIENT_TLS_ERROR, "ssl is NULL"));
        err = null();
        let rc = resty_client_tls_get_client_verify(null_mut(), buf.as_mut_ptr().cast(), &mut len, &mut err);
        assert_eq!((rc, msg(err).as_str()), (RESTY_CLIENT_TLS_ERROR, "ssl is NULL"));
        err = null();
        let rc =
            resty_client_tls_get_session_info(null_mut(), &mut resumed, buf.as_mut_ptr().cast(), &mut len, &mut err);
        assert_eq!((rc, msg(err).as_str()), (RESTY_CLIENT_TLS_ERROR, "ssl is NULL"));
        // A NULL err is skipped, not written.
        assert_eq!(resty_client_tls_disable_session_reuse(null_mut(), null_mut()), RESTY_CLIENT_TLS_ERROR);
        assert_eq!(len, 16, "buf_len untouched on error");
        assert_eq!(resty_client_tls_is_valid_client_verify(null(), 7), 0);
        assert_eq!(resty_client_tls_openssl_check(&mut err), RESTY_CLIENT_TLS_OK);
    }
}

#[test]
fn is_valid_client_verify_takes_exact_lengths() {
    let v = b"SUCCESS-and-more";
    unsafe {
        assert_eq!(resty_client_tls_is_valid_client_verify(v.as_ptr().cast(), 7), 1);
        assert_eq!(resty_client_tls_is_valid_client_verify(v.as_ptr().cast(), 8), 0);
        assert_eq!(resty_client_tls_is_valid_client_verify(b"FAILED:".as_ptr().cast(), 7), 1);
        assert_eq!(resty_client_tls_is_valid_client_verify(b"NONE".as_ptr().cast(), 0), 0);
    }
}

#[test]
fn an_ssl_before_any_handshake() {
    // What a C module may hold before the ClientHello: calls succeed, nothing to read.
    let pki = Pki::new();
    let ctx = server_ctx(&pki, SslVersion::TLS1_3).build();
    let ssl = Ssl::new(&ctx).unwrap();
    let p = ssl.as_ptr();
    request(p, stack(&[&pki.root.cert]).as_ptr(), 1).unwrap();
    disable(p).unwrap();
    let mut err: *const c_char = null();
    let mut len = 0usize;
    let rc = unsafe { resty_client_tls_get_full_client_certificate_chain(p, null_mut(), &mut len, &mut err) };
    assert_eq!(rc, resty_client_tls::RESTY_CLIENT_TLS_DECLINED);
    let (resumed, sni) = session_info(unsafe { foreign_types::ForeignTypeRef::from_ptr_mut(p) });
    assert_eq!((resumed, sni.as_str()), (false, ""));
}

#[test]
fn client_side_ssl_is_refused() {
    let ctx = SslContext::builder(SslMethod::tls_client()).unwrap().build();
    let mut ssl = Ssl::new(&ctx).unwrap();
    ssl.set_connect_state();
    let err = request(ssl.as_ptr(), null(), -1).unwrap_err();
    assert!(err.contains("client-side"), "{err}");
    assert!(disable(ssl.as_ptr()).unwrap_err().contains("client-side"));
}

#[test]
fn ca_lists_are_cached_by_content_not_by_object() {
    use resty_client_tls::cache::RESTY_CLIENT_TLS_CACHE_CA;
    use resty_client_tls::tls::{ca_cache_usage, ca_list};
    use std::rc::Rc;
    let pki = Pki::new();
    let reparse = |c: &X509| X509::from_pem(&c.to_pem().unwrap()).unwrap();
    let a = ca_list(&stack(&[&pki.root.cert, &pki.int.cert])).unwrap();
    // The same certificates parsed again, in a new stack: the same entry.
    let b = ca_list(&stack(&[&reparse(&pki.root.cert), &reparse(&pki.int.cert)])).unwrap();
    assert!(Rc::ptr_eq(&a, &b));
    drop(b);
    assert_eq!(a.len(), 2);
    // Another order or another set: another entry.
    assert!(!Rc::ptr_eq(&a, &ca_list(&stack(&[&pki.int.cert, &pki.root.cert])).unwrap()));
    assert!(!Rc::ptr_eq(&a, &ca_list(&stack(&[&pki.root.cert])).unwrap()));
    assert_eq!(ca_cache_usage().1, 3, "three distinct lists cached (the cache is per thread)");
    // Bounded in bytes: with room for about four lists like `a`, forty other lists make
    // the least recently used go, `a` among them, and the cache stays within its limit.
    let limit = 4 * a.cost();
    let before = resty_client_tls_cache_limit(RESTY_CLIENT_TLS_CACHE_CA, limit);
    let key = ec_key();
    for i in 0..40 {
        let ca = issue(&name(&format!("filler {i}")), &key, None, true, -1, 1);
        ca_list(&stack(&[&ca, &pki.int.cert])).unwrap();
        let (bytes, _) = ca_cache_usage();
        assert!(bytes <= limit, "{bytes} bytes cached, limit {limit}");
    }
    let mut entries = 0usize;
    let bytes = unsafe { resty_client_tls_cache_usage(RESTY_CLIENT_TLS_CACHE_CA, &mut entries) };
    assert_eq!((bytes, entries), ca_cache_usage(), "the C view is the Rust view");
    assert!((1..=4).contains(&entries), "{entries} entries");
    let c = ca_list(&stack(&[&pki.root.cert, &pki.int.cert])).unwrap();
    assert!(!Rc::ptr_eq(&a, &c), "evicted");
    assert_eq!(Rc::strong_count(&a), 1, "the cache let go of the evicted entry");
    // A limit of 0 keeps nothing; the previous limit comes back as it was.
    assert_eq!(resty_client_tls_cache_limit(RESTY_CLIENT_TLS_CACHE_CA, 0), limit);
    ca_list(&stack(&[&pki.root.cert])).unwrap();
    assert_eq!(ca_cache_usage(), (0, 0));
    assert_eq!(resty_client_tls_cache_limit(RESTY_CLIENT_TLS_CACHE_CA, before), 0);
    assert_eq!(resty_client_tls_cache_limit(RESTY_CLIENT_TLS_CACHE_CA, usize::MAX), before, "a query");
    assert_eq!(resty_client_tls_cache_limit(7, 1), 0, "unknown cache");
    assert_eq!(unsafe { resty_client_tls_cache_usage(7, std::ptr::null_mut()) }, 0);
}

#[test]
fn a_null_second_call_drops_the_first_lists_trust() {
    // request(ca) then request(NULL): the verify store of the first call must be gone, so
    // a client chained to ca's root verifies against the SSL_CTX's own store, which trusts
    // another root only. A stale store would admit clients the server no longer trusts.
    let pki = Pki::new();
    let ours = Client { cert: Some((&pki.leaf, vec![&pki.int.cert])), ..Default::default() };
    let ctx_client = Client { cert: Some((&pki.unknown, vec![])), ..Default::default() };
    for v in VERSIONS {
        let mut b = server_ctx(&pki, v);
        b.cert_store_mut().add_cert(pki.other_root.cert.clone()).unwrap();
        let ctx = b.build();
        // Controls: the list trusts `ours`; the SSL_CTX's store does not, but trusts
        // `ctx_client`.
        let (with_list, _) = with_request(&ctx, &ours, Some(stack(&[&pki.root.cert])), 3);
        assert_eq!(with_list.verify, "SUCCESS", "{v:?}: control with the list");
        let (ctx_only, _) = with_request(&ctx, &ours, None, 3);
        assert!(ctx_only.verify.starts_with("FAILED:"), "{v:?}: the SSL_CTX trusts root: {}", ctx_only.verify);
        let (ctx_own, _) = with_request(&ctx, &ctx_client, None, 3);
        assert_eq!(ctx_own.verify, "SUCCESS", "{v:?}: control of the SSL_CTX's store");
        // The list, then NULL, on one connection: the SSL_CTX's store alone, as before.
        let list_then_null = |client: &Client| {
            let root = pki.root.cert.clone();
            handshake(
                &ctx,
                client,
                move |ssl| {
                    request(ssl, stack(&[&root]).as_ptr(), 3).unwrap();
                    request(ssl, null(), 3).unwrap();
                },
                observe,
            )
        };
        let (seen, view) = list_then_null(&ours);
        assert_eq!(view.ca_names, Vec::<Vec<u8>>::new(), "{v:?}: no hints left (the SSL_CTX has none)");
        assert_eq!(seen.verify, ctx_only.verify, "{v:?}: the first list's root is still trusted");
        assert_eq!(seen.chain, Some(concat(&[&pki.leaf.cert, &pki.int.cert])), "{v:?}");
        let (seen, _) = list_then_null(&ctx_client);
        assert_eq!(seen.verify, "SUCCESS", "{v:?}: the SSL_CTX's store is back in use");
    }
}

/// The common names of a PEM chain's certificates, for messages.
fn cns(chain: &Option<String>) -> String {
    let Some(pem) = chain else { return "none".to_owned() };
    let names: Vec<String> = X509::stack_from_pem(pem.as_bytes())
        .unwrap()
        .iter()
        .map(|c| match c.subject_name().entries_by_nid(openssl::nid::Nid::COMMONNAME).next() {
            Some(cn) => cn.data().to_string().unwrap(),
            None => "?".to_owned(),
        })
        .collect();
    format!("[{}]", names.join(", "))
}

#[test]
fn a_reused_ssl_returns_the_chain_of_its_current_handshake() {
    // A server that SSL_clear()s its SSL and runs a new handshake on it: the chain cached
    // in the SSL's ex_data (which survives the reset) belongs to the first client and must
    // not be returned for the second.
    let pki = Pki::new();
    for v in VERSIONS {
        let ctx = server_ctx(&pki, v).build();
        let clients = [
            Client { cert: Some((&pki.leaf, vec![&pki.int.cert])), ..Default::default() },
            Client { cert: Some((&pki.unknown, vec![&pki.other_root.cert])), ..Default::default() },
            Client::default(),
            Client { cert: Some((&pki.self_signed, vec![])), ..Default::default() },
            // The first client's certificate again, without its intermediate.
            Client { cert: Some((&pki.leaf, vec![])), ..Default::default() },
        ];
        let root = pki.root.cert.clone();
        let seen = handshakes_on_one_ssl(
            &ctx,
            &clients,
            move |ssl| request(ssl, stack(&[&root]).as_ptr(), 3).unwrap(),
            |ssl| {
                let first = chain(ssl);
                // Asked again: the cached copy is this handshake's.
                (first.clone(), chain(ssl), client_verify(ssl))
            },
        )
        .unwrap_or_else(|e| panic!("{v:?}: {e}"));
        let got: Vec<(Option<String>, Option<String>, String)> = seen.into_iter().map(|(s, _)| s).collect();
        let want = [
            (Some(concat(&[&pki.leaf.cert, &pki.int.cert])), "SUCCESS".to_owned()),
            (
                Some(concat(&[&pki.unknown.cert, &pki.other_root.cert])),
                failed(openssl_sys::X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN),
            ),
            (None, "NONE".to_owned()),
            (Some(pki.self_signed.pem()), failed(openssl_sys::X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT)),
            // The reason for the missing issuer differs between OpenSSL versions.
            (Some(pki.leaf.pem()), "FAILED:".to_owned()),
        ];
        assert_eq!(got.len(), want.len(), "{v:?}");
        for (i, ((first, again, verify), (chain, want_verify))) in got.iter().zip(want.iter()).enumerate() {
            assert!(
                first == chain,
                "{v:?}: handshake {i} on the reused SSL: chain {}, expected {}",
                cns(first),
                cns(chain)
            );
            assert_eq!(again, chain, "{v:?}: handshake {i}: chain asked again");
            if want_verify == "FAILED:" {
                assert!(verify.starts_with(want_verify), "{v:?}: handshake {i}: verify {verify}");
            } else {
                assert_eq!(verify, want_verify, "{v:?}: handshake {i}: verify");
            }
        }
    }
}

/// The error of a handshake expected to fail.
fn failure<T>(r: Result<T, String>) -> String {
    match r {
        Ok(_) => panic!("the handshake succeeded"),
        Err(e) => e,
    }
}

#[test]
fn a_panicking_hook_fails_its_handshake_not_the_test_run() {
    // A panic in the certificate-phase hook (Rust code called from OpenSSL's C callback)
    // is reported as this handshake's error; the run goes on.
    let pki = Pki::new();
    let ctx = server_ctx(&pki, SslVersion::TLS1_3).build();
    let client = Client { cert: Some((&pki.leaf, vec![&pki.int.cert])), ..Default::default() };
    let err = failure(try_handshake(&ctx, &client, |_| panic!("deliberate panic in the hook"), observe));
    assert!(err.contains("the certificate-phase hook panicked: deliberate panic in the hook"), "{err}");
    // A formatted message, and a failing assertion inside the hook, the same way.
    let n = 7;
    let err = failure(try_handshake(&ctx, &client, move |_| panic!("formatted {n}"), |_| ()));
    assert!(err.contains("panicked: formatted 7"), "{err}");
    let err =
        failure(try_handshake(&ctx, &client, |ssl| assert_eq!(request(ssl, null(), -1), Err(String::new())), |_| ()));
    assert!(err.contains("assertion `left == right` failed"), "{err}");
    // Also on a reused SSL, and a panic in `after`.
    let err = failure(handshakes_on_one_ssl(&ctx, &[Client::default()], |_| panic!("on a reused SSL"), |_| ()));
    assert!(err.contains("panicked: on a reused SSL"), "{err}");
    let err = failure(try_handshake(&ctx, &client, |_| {}, |_| panic!("in after")));
    assert!(err.contains("server thread panicked: in after"), "{err}");
    // The same thread, context and helper still run a good handshake afterwards.
    let (seen, _) = with_request(&ctx, &client, Some(stack(&[&pki.root.cert])), 2);
    assert_eq!(seen.verify, "SUCCESS");
}

/// The verify depth of a connection right after `request_client_certificate(ca, depth)`
/// in the certificate phase, and the verification result of `client`'s chain.
fn depth_after(ctx: &SslContext, client: &Client, ca: &X509, depth: c_int) -> (c_int, String) {
    let ca = ca.clone();
    let seen = Arc::new(AtomicI32::new(-100));
    let in_hook = seen.clone();
    let (verify, _) = handshake(
        ctx,
        client,
        move |ssl| {
            request(ssl, stack(&[&ca]).as_ptr(), depth).unwrap();
            in_hook.store(unsafe { SSL_get_verify_depth(ssl) }, Ordering::SeqCst);
        },
        client_verify,
    );
    (seen.load(Ordering::SeqCst), verify)
}

#[test]
fn verify_depth_negative_keeps_the_connections_and_non_negative_sets_it() {
    // leaf <- int <- root (trusted): depth 1 is the least that verifies it (root, the
    // trust anchor, is not counted), depth 0 fails.
    let pki = Pki::new();
    let client = Client { cert: Some((&pki.leaf, vec![&pki.int.cert])), ..Default::default() };
    for v in VERSIONS {
        for ctx_depth in [0, 1, 5] {
            let mut b = server_ctx(&pki, v);
            b.set_verify_depth(ctx_depth as u32);
            let ctx = b.build();
            let ok_at = |d: c_int| if d >= 1 { "SUCCESS".to_owned() } else { "FAILED".to_owned() };
            let verdict = |s: String| if s.starts_with("FAILED:") { "FAILED".to_owned() } else { s };
            // Negative: the SSL_CTX's depth (in nginx: ssl_verify_depth) stays.
            for keep in [-1, -5, c_int::MIN] {
                let (depth, verify) = depth_after(&ctx, &client, &pki.root.cert, keep);
                assert_eq!(depth, ctx_depth, "{v:?}: ctx depth {ctx_depth}, request depth {keep}");
                assert_eq!(verdict(verify), ok_at(ctx_depth), "{v:?}: ctx depth {ctx_depth}, request depth {keep}");
            }
            // Non-negative: set, up or down from the SSL_CTX's.
            for set in [0, 1, 2, 9] {
                let (depth, verify) = depth_after(&ctx, &client, &pki.root.cert, set);
                assert_eq!(depth, set, "{v:?}: ctx depth {ctx_depth}, request depth {set}");
                assert_eq!(verdict(verify), ok_at(set), "{v:?}: ctx depth {ctx_depth}, request depth {set}");
            }
        }
    }
}
