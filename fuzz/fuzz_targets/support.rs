//! Shared by the fuzz targets: certificates made with the openssl crate, a server
//! context whose certificate callback (nginx's certificate phase) runs a per-thread hook,
//! and real TLS handshakes over in-memory pipes, in one thread (no sockets).
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::io::{self, Read, Write};
use std::rc::Rc;

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{
    HandshakeError, Ssl, SslContext, SslContextBuilder, SslMethod, SslSessionCacheMode, SslStream, SslVerifyMode,
    SslVersion,
};
use openssl::x509::extension::BasicConstraints;
use openssl::x509::{X509, X509Name, X509NameBuilder, X509NameRef};
use openssl_sys::SSL;

pub fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

pub fn name(cn: &str) -> X509Name {
    let mut b = X509NameBuilder::new().unwrap();
    b.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    b.build()
}

/// A name of `units` organizational units of `unit_len` (1..=64) bytes each, then a CN:
/// up to tens of KB of DER.
pub fn big_name(cn: &str, units: usize, unit_len: usize, fill: u8) -> X509Name {
    let mut b = X509NameBuilder::new().unwrap();
    let fill = (b'a' + fill % 26) as char;
    let unit: String = std::iter::repeat_n(fill, unit_len.clamp(1, 64)).collect();
    for _ in 0..units {
        b.append_entry_by_nid(Nid::ORGANIZATIONALUNITNAME, &unit).unwrap();
    }
    b.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    b.build()
}

/// A certificate for `subject`, signed by `issuer_key` under `issuer` (self-signed when
/// `issuer` is None).
pub fn issue(
    subject: &X509NameRef,
    key: &PKey<Private>,
    issuer: Option<(&X509NameRef, &PKey<Private>)>,
    serial: u32,
) -> X509 {
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&BigNum::from_u32(serial).unwrap().to_asn1_integer().unwrap()).unwrap();
    b.set_subject_name(subject).unwrap();
    b.set_issuer_name(issuer.map_or(subject, |i| i.0)).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
    b.set_not_after(&Asn1Time::days_from_now(365).unwrap()).unwrap();
    b.append_extension(BasicConstraints::new().critical().ca().build().unwrap()).unwrap();
    b.sign(issuer.map_or(key, |i| i.1), MessageDigest::sha256()).unwrap();
    b.build()
}

/// root -> leaf (client), and a server certificate.
pub struct Pki {
    pub root_key: PKey<Private>,
    pub root: X509,
    pub leaf_key: PKey<Private>,
    pub leaf: X509,
    pub server_key: PKey<Private>,
    pub server: X509,
    /// One key for every generated CA (signing is what costs, not key generation).
    pub ca_key: PKey<Private>,
}

impl Pki {
    pub fn new() -> Pki {
        let root_key = ec_key();
        let root = issue(&name("Fuzz Root CA"), &root_key, None, 1);
        let leaf_key = ec_key();
        let leaf = issue(&name("fuzz client"), &leaf_key, Some((root.subject_name(), &root_key)), 2);
        let server_key = ec_key();
        let server = issue(&name("fuzz server"), &server_key, None, 3);
        Pki { root_key, root, leaf_key, leaf, server_key, server, ca_key: ec_key() }
    }
}

// ---- in-memory transport -----------------------------------------------------------

type Queue = Rc<RefCell<VecDeque<u8>>>;

/// One end of a duplex in-memory pipe; reads say WouldBlock when nothing is queued.
pub struct Pipe {
    rx: Queue,
    tx: Queue,
}

pub fn pipes() -> (Pipe, Pipe) {
    let (a, b): (Queue, Queue) = Default::default();
    (Pipe { rx: a.clone(), tx: b.clone() }, Pipe { rx: b, tx: a })
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut q = self.rx.borrow_mut();
        if q.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(q.len());
        for (dst, src) in buf.iter_mut().zip(q.drain(..n)) {
            *dst = src;
        }
        Ok(n)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx.borrow_mut().extend(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// ---- the server side ---------------------------------------------------------------

type Hook = Box<dyn FnMut(*mut SSL)>;

thread_local! {
    static CERT_HOOK: RefCell<Option<Hook>> = const { RefCell::new(None) };
}

unsafe extern "C" {
    fn SSL_CTX_set_cert_cb(
        ctx: *mut openssl_sys::SSL_CTX,
        cb: Option<extern "C" fn(*mut SSL, *mut c_void) -> c_int>,
        arg: *mut c_void,
    );
    pub fn SSL_get_client_CA_list(s: *const SSL) -> *mut openssl_sys::stack_st_X509_NAME;
}

extern "C" fn cert_cb(ssl: *mut SSL, _arg: *mut c_void) -> c_int {
    CERT_HOOK.with(|h| {
        if let Some(hook) = h.borrow_mut().as_mut() {
            hook(ssl);
        }
    });
    1
}

/// An nginx-like server context: certificate, session ID context, session cache, an
/// acknowledging SNI callback, the certificate callback.
pub fn server_ctx(pki: &Pki, version: SslVersion) -> SslContext {
    let mut b = SslContext::builder(SslMethod::tls_server()).unwrap();
    b.set_certificate(&pki.server).unwrap();
    b.set_private_key(&pki.server_key).unwrap();
    b.set_min_proto_version(Some(version)).unwrap();
    b.set_max_proto_version(Some(version)).unwrap();
    b.set_session_id_context(b"rctls-fuzz").unwrap();
    b.set_session_cache_mode(SslSessionCacheMode::SERVER);
    b.set_servername_callback(|_, _| Ok(()));
    unsafe { SSL_CTX_set_cert_cb(b.as_ptr(), Some(cert_cb), std::ptr::null_mut()) };
    b.build()
}

/// A client context sending `cert` (with `extra` as its chain, in that order) if given.
pub fn client_ctx(version: SslVersion, cert: Option<(&X509, &PKey<Private>)>, extra: &[X509]) -> SslContextBuilder {
    let mut b = SslContext::builder(SslMethod::tls_client()).unwrap();
    b.set_verify(SslVerifyMode::NONE);
    b.set_min_proto_version(Some(version)).unwrap();
    b.set_max_proto_version(Some(version)).unwrap();
    if let Some((c, k)) = cert {
        b.set_certificate(c).unwrap();
        b.set_private_key(k).unwrap();
        for x in extra {
            b.add_extra_chain_cert(x.clone()).unwrap();
        }
    }
    b
}

enum Side {
    Mid(openssl::ssl::MidHandshakeSslStream<Pipe>),
    Done(SslStream<Pipe>),
}

fn step(side: Side) -> Result<Side, ()> {
    match side {
        Side::Done(s) => Ok(Side::Done(s)),
        Side::Mid(m) => match m.handshake() {
            Ok(s) => Ok(Side::Done(s)),
            Err(HandshakeError::WouldBlock(m)) => Ok(Side::Mid(m)),
            Err(_) => Err(()),
        },
    }
}

fn start(r: Result<SslStream<Pipe>, HandshakeError<Pipe>>) -> Result<Side, ()> {
    match r {
        Ok(s) => Ok(Side::Done(s)),
        Err(HandshakeError::WouldBlock(m)) => Ok(Side::Mid(m)),
        Err(_) => Err(()),
    }
}

/// Runs one handshake; `hook` runs in the server's certificate callback. Returns the
/// server and client streams, or None when the handshake failed.
pub fn handshake(
    server: Ssl,
    client: Ssl,
    hook: impl FnMut(*mut SSL) + 'static,
) -> Option<(SslStream<Pipe>, SslStream<Pipe>)> {
    CERT_HOOK.with(|h| *h.borrow_mut() = Some(Box::new(hook)));
    let (a, b) = pipes();
    let result = (|| {
        let mut c = start(client.connect(b))?;
        let mut s = start(server.accept(a))?;
        for _ in 0..64 {
            s = step(s)?;
            c = step(c)?;
            if let (Side::Done(_), Side::Done(_)) = (&s, &c) {
                break;
            }
        }
        match (s, c) {
            (Side::Done(s), Side::Done(c)) => Ok((s, c)),
            _ => Err(()),
        }
    })();
    CERT_HOOK.with(|h| *h.borrow_mut() = None);
    result.ok()
}

/// Lets the client read what the server sent after the handshake (TLS 1.3 tickets), so
/// its session is complete.
pub fn pump(s: &mut SslStream<Pipe>, c: &mut SslStream<Pipe>) {
    let _ = s.write_all(b"x");
    let mut one = [0u8; 1];
    let _ = c.read(&mut one);
}

pub fn msg(err: *const c_char) -> String {
    assert!(!err.is_null(), "err was not set on an error");
    unsafe { CStr::from_ptr(err) }.to_string_lossy().into_owned()
}

/// Input reader: bytes, then zeros once the input is used up.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { data }
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }
}
