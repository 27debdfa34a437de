//! The buffer protocol of the three getters (chain, client verify, session info) under
//! random buffer sizes and NULLs, on real connections made once at start-up: a client
//! chain (TLS 1.3, SUCCESS), no client certificate (TLS 1.2, NONE/DECLINED), a failed
//! verification, a resumed session (leaf only, resumed = 1), an SSL before any handshake,
//! and a NULL ssl. Each call's buffer is an exact-size heap block filled with a sentinel,
//! so ASan catches a write past it and the checks below catch a write inside it that the
//! protocol does not allow.
//!
//! Input: 6 bytes per call: connection, function, NULL flags, size mode, 2 size bytes.
#![no_main]

#[path = "support.rs"]
mod support;

use std::ffi::{c_char, c_int};
use std::ptr::{null, null_mut};

use foreign_types::ForeignTypeRef;
use libfuzzer_sys::fuzz_target;
use openssl::ssl::{Ssl, SslStream, SslVersion};
use openssl::stack::Stack;
use openssl::x509::X509;
use openssl_sys::SSL;
use resty_client_tls::ffi::*;
use resty_client_tls::{
    RESTY_CLIENT_TLS_AGAIN, RESTY_CLIENT_TLS_DECLINED, RESTY_CLIENT_TLS_ERROR, RESTY_CLIENT_TLS_OK,
};
use support::*;

const SENTINEL: u8 = 0xA5;

/// What a getter must return on a connection, read once with a large buffer.
#[derive(Clone, Debug)]
enum Want {
    Bytes(Vec<u8>),
    Declined,
}

struct Conn {
    ssl: *mut SSL,
    chain: Want,
    verify: Vec<u8>,
    resumed: c_int,
    sni: Vec<u8>,
}

struct World {
    conns: Vec<Conn>,
    // Kept alive for the process: the SSL pointers above point into these.
    _streams: Vec<SslStream<Pipe>>,
    _fresh: Ssl,
}

fn request_hook(ca: &X509, depth: c_int) -> impl FnMut(*mut SSL) + 'static {
    let ca = ca.clone();
    move |ssl| {
        let mut s = Stack::new().unwrap();
        s.push(ca.clone()).unwrap();
        let mut err: *const c_char = null();
        let rc = unsafe { resty_client_tls_request_client_certificate(ssl, s.as_ptr(), depth, &mut err) };
        assert_eq!(rc, RESTY_CLIENT_TLS_OK);
    }
}

fn read_all(ssl: *mut SSL) -> (Want, Vec<u8>, c_int, Vec<u8>) {
    let mut buf = vec![0u8; 1 << 16];
    let mut err: *const c_char = null();
    let mut len = buf.len();
    let rc =
        unsafe { resty_client_tls_get_full_client_certificate_chain(ssl, buf.as_mut_ptr().cast(), &mut len, &mut err) };
    let chain = match rc {
        RESTY_CLIENT_TLS_OK => Want::Bytes(buf[..len].to_vec()),
        RESTY_CLIENT_TLS_DECLINED => Want::Declined,
        rc => panic!("chain: rc {rc}"),
    };
    let mut len = buf.len();
    assert_eq!(unsafe { resty_client_tls_get_client_verify(ssl, buf.as_mut_ptr().cast(), &mut len, &mut err) }, 0);
    let verify = buf[..len].to_vec();
    let mut resumed = -1;
    let mut len = buf.len();
    let rc =
        unsafe { resty_client_tls_get_session_info(ssl, &mut resumed, buf.as_mut_ptr().cast(), &mut len, &mut err) };
    assert_eq!(rc, RESTY_CLIENT_TLS_OK);
    (chain, verify, resumed, buf[..len].to_vec())
}

fn world() -> World {
    let pki = Pki::new();
    let mut streams = Vec::new();
    let mut conns = Vec::new();
    fn add(
        conns: &mut Vec<Conn>,
        streams: &mut Vec<SslStream<Pipe>>,
        mut s: SslStream<Pipe>,
        mut c: SslStream<Pipe>,
    ) -> SslStream<Pipe> {
        pump(&mut s, &mut c);
        let ssl = s.ssl().as_ptr();
        let (chain, verify, resumed, sni) = read_all(ssl);
        conns.push(Conn { ssl, chain, verify, resumed, sni });
        streams.push(s);
        c
    }
    // 0: client chain, verified (TLS 1.3).
    let ctx13 = server_ctx(&pki, SslVersion::TLS1_3);
    let cctx = client_ctx(SslVersion::TLS1_3, Some((&pki.leaf, &pki.leaf_key)), &[pki.root.clone()]).build();
    let mut cl = Ssl::new(&cctx).unwrap();
    cl.set_hostname("a.test").unwrap();
    let (s, c) = handshake(Ssl::new(&ctx13).unwrap(), cl, request_hook(&pki.root, 2)).expect("handshake 0");
    add(&mut conns, &mut streams, s, c);
    // 1: no client certificate (TLS 1.2).
    let ctx12 = server_ctx(&pki, SslVersion::TLS1_2);
    let cctx12 = client_ctx(SslVersion::TLS1_2, None, &[]).build();
    let (s, c) = handshake(Ssl::new(&ctx12).unwrap(), Ssl::new(&cctx12).unwrap(), request_hook(&pki.root, 2))
        .expect("handshake 1");
    add(&mut conns, &mut streams, s, c);
    // 2: a certificate that fails verification (depth 0).
    let (s, c) = handshake(Ssl::new(&ctx13).unwrap(), Ssl::new(&cctx).unwrap(), request_hook(&pki.root, 0))
        .expect("handshake 2");
    add(&mut conns, &mut streams, s, c);
    // 3: a resumed TLS 1.2 session with a client certificate: the leaf alone.
    let cctx12c = client_ctx(SslVersion::TLS1_2, Some((&pki.leaf, &pki.leaf_key)), &[pki.root.clone()]).build();
    let mut cl = Ssl::new(&cctx12c).unwrap();
    cl.set_hostname("a.test").unwrap();
    let (s, c) = handshake(Ssl::new(&ctx12).unwrap(), cl, request_hook(&pki.root, 2)).expect("handshake 3a");
    let c = add(&mut conns, &mut streams, s, c);
    let session = c.ssl().session().unwrap().to_owned();
    conns.pop();
    let mut cl = Ssl::new(&cctx12c).unwrap();
    cl.set_hostname("b.test").unwrap();
    unsafe { cl.set_session(&session).unwrap() };
    let (s, c) = handshake(Ssl::new(&ctx12).unwrap(), cl, |_| {}).expect("handshake 3b");
    add(&mut conns, &mut streams, s, c);
    assert_eq!(conns.last().unwrap().resumed, 1, "the control resumed");
    // 4: before any handshake.
    let fresh = Ssl::new(&ctx13).unwrap();
    let (chain, verify, resumed, sni) = read_all(fresh.as_ptr());
    conns.push(Conn { ssl: fresh.as_ptr(), chain, verify, resumed, sni });
    // 5: NULL.
    conns.push(Conn { ssl: null_mut(), chain: Want::Declined, verify: vec![], resumed: 0, sni: vec![] });
    World { conns, _streams: streams, _fresh: fresh }
}

thread_local! {
    static WORLD: World = world();
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Func {
    Chain,
    Verify,
    Session,
}

fn one_call(conn: &Conn, func: Func, flags: u8, mode: u8, n: u16) {
    let want: Want = match func {
        Func::Chain => conn.chain.clone(),
        Func::Verify => Want::Bytes(conn.verify.clone()),
        Func::Session => Want::Bytes(conn.sni.clone()),
    };
    let needed = match &want {
        Want::Bytes(b) => b.len(),
        Want::Declined => 0,
    };
    let cap = match mode % 6 {
        0 => 0,
        1 => needed.saturating_sub(1),
        2 => needed,
        3 => needed + usize::from(n % 64),
        4 => usize::from(n),
        _ => needed.saturating_sub(usize::from(n % 64)),
    };
    let null_buf = flags & 1 != 0;
    let null_len = flags & 2 != 0;
    let null_err = flags & 4 != 0;
    let null_resumed = flags & 8 != 0;

    let mut block: Vec<u8> = vec![SENTINEL; cap];
    block.shrink_to_fit();
    let buf: *mut c_char = if null_buf { null_mut() } else { block.as_mut_ptr().cast() };
    let mut len = cap;
    let len_p: *mut usize = if null_len { null_mut() } else { &mut len };
    let untouched = c"untouched".as_ptr();
    let mut err: *const c_char = untouched;
    let err_p: *mut *const c_char = if null_err { null_mut() } else { &mut err };
    let mut resumed: c_int = 77;
    let resumed_p: *mut c_int = if null_resumed { null_mut() } else { &mut resumed };

    let rc = unsafe {
        match func {
            Func::Chain => resty_client_tls_get_full_client_certificate_chain(conn.ssl, buf, len_p, err_p),
            Func::Verify => resty_client_tls_get_client_verify(conn.ssl, buf, len_p, err_p),
            Func::Session => resty_client_tls_get_session_info(conn.ssl, resumed_p, buf, len_p, err_p),
        }
    };
    let ctx = format!("{func:?} ssl={:?} flags={flags:#x} cap={cap} needed={needed} rc={rc}", conn.ssl);

    // Which error applies, in the order the library checks.
    let expected_error = if conn.ssl.is_null() {
        Some("ssl is NULL")
    } else if func == Func::Session && null_resumed {
        Some("resumed is NULL")
    } else if func == Func::Chain && matches!(want, Want::Declined) {
        None
    } else if null_len {
        Some("buf_len is NULL")
    } else if null_buf && cap != 0 {
        Some("buf is NULL but *buf_len is not 0")
    } else {
        None
    };
    if let Some(m) = expected_error {
        assert_eq!(rc, RESTY_CLIENT_TLS_ERROR, "{ctx}");
        if !null_err {
            assert_eq!(msg(err), m, "{ctx}");
        }
        assert_eq!(len, cap, "{ctx}: *buf_len changed on ERROR");
        assert!(block.iter().all(|b| *b == SENTINEL), "{ctx}: buf written on ERROR");
        assert_eq!(resumed, 77, "{ctx}: resumed written on ERROR");
        return;
    }
    if !null_err {
        assert_eq!(err, untouched, "{ctx}: err written without an error");
    }
    match want {
        Want::Declined => {
            assert_eq!(rc, RESTY_CLIENT_TLS_DECLINED, "{ctx}");
            assert_eq!(len, cap, "{ctx}");
            assert!(block.iter().all(|b| *b == SENTINEL), "{ctx}: buf written on DECLINED");
        }
        Want::Bytes(bytes) if bytes.len() > cap => {
            assert_eq!(rc, RESTY_CLIENT_TLS_AGAIN, "{ctx}");
            assert_eq!(len, bytes.len(), "{ctx}: AGAIN must give the size needed");
            assert!(block.iter().all(|b| *b == SENTINEL), "{ctx}: buf written on AGAIN");
        }
        Want::Bytes(bytes) => {
            assert_eq!(rc, RESTY_CLIENT_TLS_OK, "{ctx}");
            assert_eq!(len, bytes.len(), "{ctx}: exact byte count");
            assert_eq!(&block[..len], &bytes[..], "{ctx}: content");
            assert!(block[len..].iter().all(|b| *b == SENTINEL), "{ctx}: written past the data (a NUL?)");
        }
    }
    if func == Func::Session && rc != RESTY_CLIENT_TLS_DECLINED {
        assert_eq!(resumed, conn.resumed, "{ctx}: resumed");
    }
}

fuzz_target!(|data: &[u8]| {
    WORLD.with(|w| {
        let mut input = Input::new(data);
        while !input.is_empty() {
            let conn = &w.conns[usize::from(input.u8()) % w.conns.len()];
            let func = [Func::Chain, Func::Verify, Func::Session][usize::from(input.u8()) % 3];
            let flags = input.u8();
            let mode = input.u8();
            let n = input.u16();
            one_call(conn, func, flags, mode, n);
        }
    });
});
