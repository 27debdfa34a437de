//! Shared by the integration tests: a throwaway PKI made with the openssl crate, and real
//! TLS handshakes over a socketpair whose server runs a certificate callback
//! (`SSL_CTX_set_cert_cb`, the hook behind nginx's `ssl_certificate_by_lua`).
#![allow(dead_code)]

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use foreign_types::ForeignTypeRef;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{
    Ssl, SslContext, SslContextBuilder, SslMethod, SslOptions, SslRef, SslSession, SslSessionCacheMode, SslVerifyMode,
    SslVersion,
};
use openssl::stack::Stack;
use openssl::x509::extension::{BasicConstraints, KeyUsage};
use openssl::x509::{X509, X509Name, X509NameBuilder};
use openssl_sys::SSL;

/// A key and its certificate.
pub struct Cert {
    pub key: PKey<Private>,
    pub cert: X509,
}

impl Cert {
    pub fn pem(&self) -> String {
        String::from_utf8(self.cert.to_pem().expect("PEM_write_bio_X509")).unwrap()
    }
}

pub fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

pub fn name(cn: &str) -> X509Name {
    let mut b = X509NameBuilder::new().unwrap();
    b.append_entry_by_nid(Nid::ORGANIZATIONNAME, "resty-client-tls tests").unwrap();
    b.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    b.build()
}

/// Issues a certificate for `subject` with `key`, signed by `issuer` (self-signed when
/// None), valid from `from_days` to `to_days` relative to now.
pub fn issue(
    subject: &X509Name,
    key: &PKey<Private>,
    issuer: Option<&Cert>,
    ca: bool,
    from_days: i64,
    to_days: i64,
) -> X509 {
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap()).unwrap();
    b.set_subject_name(subject).unwrap();
    b.set_issuer_name(issuer.map(|i| i.cert.subject_name()).unwrap_or(subject)).unwrap();
    b.set_pubkey(key).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    b.set_not_before(&Asn1Time::from_unix(now + from_days * 86400).unwrap()).unwrap();
    b.set_not_after(&Asn1Time::from_unix(now + to_days * 86400).unwrap()).unwrap();
    if ca {
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap()).unwrap();
        b.append_extension(KeyUsage::new().critical().key_cert_sign().crl_sign().build().unwrap()).unwrap();
    } else {
        b.append_extension(KeyUsage::new().critical().digital_signature().build().unwrap()).unwrap();
    }
    b.sign(issuer.map(|i| &i.key).unwrap_or(key), MessageDigest::sha256()).unwrap();
    b.build()
}

pub fn make(cn: &str, issuer: Option<&Cert>, ca: bool) -> Cert {
    let key = ec_key();
    let cert = issue(&name(cn), &key, issuer, ca, -1, 365);
    Cert { key, cert }
}

/// root -> intermediate -> leaf, plus a server certificate, a self-signed client, an
/// expired client and a client from an unknown CA.
pub struct Pki {
    pub root: Cert,
    pub int: Cert,
    pub leaf: Cert,
    pub server: Cert,
    pub self_signed: Cert,
    pub expired: Cert,
    pub other_root: Cert,
    pub unknown: Cert,
}

impl Pki {
    pub fn new() -> Pki {
        let root = make("Test Root CA", None, true);
        let int = make("Test Intermediate CA", Some(&root), true);
        let leaf = make("client.test", Some(&int), false);
        let server = make("server.test", None, false);
        let self_signed = make("self-signed.test", None, false);
        let expired_key = ec_key();
        let expired =
            Cert { cert: issue(&name("expired.test"), &expired_key, Some(&int), false, -30, -1), key: expired_key };
        let other_root = make("Other Root CA", None, true);
        let unknown = make("unknown.test", Some(&other_root), false);
        Pki { root, int, leaf, server, self_signed, expired, other_root, unknown }
    }
}

pub fn stack(certs: &[&X509]) -> Stack<X509> {
    let mut s = Stack::new().unwrap();
    for c in certs {
        s.push((*c).to_owned()).unwrap();
    }
    s
}

unsafe extern "C" {
    fn SSL_CTX_set_cert_cb(
        ctx: *mut openssl_sys::SSL_CTX,
        cb: Option<extern "C" fn(*mut SSL, *mut c_void) -> c_int>,
        arg: *mut c_void,
    );
    fn SSL_get_client_CA_list(s: *const SSL) -> *mut openssl_sys::stack_st_X509_NAME;
    fn SSL_SESSION_has_ticket(s: *const openssl_sys::SSL_SESSION) -> c_int;
    fn SSL_set_fd(s: *mut SSL, fd: c_int) -> c_int;
    fn SSL_clear(s: *mut SSL) -> c_int;
    pub fn SSL_get_verify_depth(s: *const SSL) -> c_int;
    pub fn SSL_SESSION_get0_id_context(
        s: *const openssl_sys::SSL_SESSION,
        sid_ctx_length: *mut std::ffi::c_uint,
    ) -> *const u8;
    pub fn SSL_SESSION_set1_id(s: *mut openssl_sys::SSL_SESSION, sid: *const u8, sid_len: std::ffi::c_uint) -> c_int;
    pub fn SSL_SESSION_dup(s: *const openssl_sys::SSL_SESSION) -> *mut openssl_sys::SSL_SESSION;
}

/// Whether a client's session carries a ticket.
pub fn has_ticket(s: &openssl::ssl::SslSessionRef) -> bool {
    unsafe { SSL_SESSION_has_ticket(s.as_ptr()) == 1 }
}

// ---- the server side --------------------------------------------------------------

type Hook = Box<dyn FnMut(*mut SSL) + Send>;

thread_local! {
    static CERT_HOOK: RefCell<Option<Hook>> = const { RefCell::new(None) };
    /// The message of a panic of this thread's certificate-phase hook, until the
    /// handshake helper reports it.
    static HOOK_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The text of a panic payload (`panic!` with a literal or with a format).
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    match (payload.downcast_ref::<&str>(), payload.downcast_ref::<String>()) {
        (Some(s), _) => (*s).to_owned(),
        (_, Some(s)) => s.clone(),
        _ => "a panic without a message".to_owned(),
    }
}

/// The certificate callback. The hook is Rust code run from C: a panic unwinding out of
/// this `extern "C"` function would abort the whole test binary, hiding every other
/// test's result. So a panic is caught, its message kept for the handshake helper (which
/// returns it as the test's failure), and the handshake failed (0: internal_error alert).
extern "C" fn cert_cb(ssl: *mut SSL, _arg: *mut c_void) -> c_int {
    let run = catch_unwind(AssertUnwindSafe(|| {
        CERT_HOOK.with(|h| {
            if let Some(hook) = h.borrow_mut().as_mut() {
                hook(ssl);
            }
        })
    }));
    match run {
        Ok(()) => 1,
        Err(payload) => {
            let msg = panic_message(&*payload);
            HOOK_PANIC.with(|p| *p.borrow_mut() = Some(msg));
            0
        }
    }
}

/// Installs `hook` as this thread's certificate-phase hook (None: none).
fn set_hook(hook: Option<Hook>) {
    CERT_HOOK.with(|h| *h.borrow_mut() = hook);
    HOOK_PANIC.with(|p| *p.borrow_mut() = None);
}

/// The panic of this thread's hook since `set_hook`, as an error.
fn hook_panic() -> Result<(), String> {
    match HOOK_PANIC.with(|p| p.borrow_mut().take()) {
        Some(msg) => Err(format!("the certificate-phase hook panicked: {msg}")),
        None => Ok(()),
    }
}

/// A server context like nginx's: certificate, session ID context, the server session
/// cache on, tickets on, an SNI callback, the certificate callback installed.
pub fn server_ctx(pki: &Pki, version: SslVersion) -> SslContextBuilder {
    let mut b = SslContext::builder(SslMethod::tls_server()).unwrap();
    b.set_certificate(&pki.server.cert).unwrap();
    b.set_private_key(&pki.server.key).unwrap();
    b.set_min_proto_version(Some(version)).unwrap();
    b.set_max_proto_version(Some(version)).unwrap();
    b.set_session_id_context(b"resty-client-tls-test").unwrap();
    b.set_session_cache_mode(SslSessionCacheMode::SERVER);
    // nginx always acknowledges SNI; only then does OpenSSL record it in the session.
    b.set_servername_callback(|_, _| Ok(()));
    install_cert_cb(&mut b);
    b
}

pub fn install_cert_cb(b: &mut SslContextBuilder) {
    // SAFETY: a live context; cert_cb is a plain function with the expected signature.
    unsafe { SSL_CTX_set_cert_cb(b.as_ptr(), Some(cert_cb), std::ptr::null_mut()) };
}

/// How many sessions the server context's internal cache holds (SSL_CTX_sess_number).
pub fn cached_sessions(ctx: &SslContext) -> i64 {
    const SSL_CTRL_SESS_NUMBER: c_int = 20;
    unsafe { openssl_sys::SSL_CTX_ctrl(ctx.as_ptr(), SSL_CTRL_SESS_NUMBER, 0, std::ptr::null_mut()) as i64 }
}

// ---- the client side --------------------------------------------------------------

#[derive(Default)]
pub struct Client<'a> {
    pub version: Option<SslVersion>,
    /// Certificate, key and extra chain certificates to send.
    pub cert: Option<(&'a Cert, Vec<&'a X509>)>,
    pub sni: Option<&'a str>,
    pub session: Option<&'a SslSession>,
    pub no_ticket: bool,
}

/// What the client saw.
pub struct ClientView {
    pub session: Option<SslSession>,
    pub resumed: bool,
    /// DER of each CA name of the CertificateRequest, in order.
    pub ca_names: Vec<Vec<u8>>,
    pub tickets: usize,
}

/// Runs one handshake: the server thread installs `hook` as its certificate callback,
/// accepts, then runs `after` on the established connection; the client reads one byte
/// (so TLS 1.3 tickets are processed) and both shut down cleanly. A failure of either
/// side (a panic of `hook` or `after` included) fails the calling test with its message.
pub fn handshake<T: Send + 'static>(
    ctx: &SslContext,
    client: &Client,
    hook: impl FnMut(*mut SSL) + Send + 'static,
    after: impl FnOnce(&mut SslRef) -> T + Send + 'static,
) -> (T, ClientView) {
    try_handshake(ctx, client, hook, after).unwrap_or_else(|e| panic!("{e}"))
}

/// `handshake`, with a failure returned instead: a panic of `hook` (caught in the
/// certificate callback, which then fails the handshake) or of `after`, or a handshake
/// error of either side. The server's error comes first: the client's is its echo.
pub fn try_handshake<T: Send + 'static>(
    ctx: &SslContext,
    client: &Client,
    hook: impl FnMut(*mut SSL) + Send + 'static,
    after: impl FnOnce(&mut SslRef) -> T + Send + 'static,
) -> Result<(T, ClientView), String> {
    let (s_sock, c_sock) = UnixStream::pair().unwrap();
    let ctx = ctx.clone();
    let server = std::thread::spawn(move || -> Result<T, String> {
        set_hook(Some(Box::new(hook)));
        let ssl = Ssl::new(&ctx).unwrap();
        let accepted = ssl.accept(s_sock);
        let panicked = hook_panic();
        set_hook(None);
        panicked?;
        let mut stream = accepted.map_err(|e| format!("server handshake: {e}"))?;
        // SAFETY: the stream owns the SSL and is not used while `after` runs.
        let out = after(unsafe { SslRef::from_ptr_mut(stream.ssl().as_ptr()) });
        stream.write_all(b"x").map_err(|e| format!("server write: {e}"))?;
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        let _ = stream.shutdown();
        Ok(out)
    });
    let view = run_client(c_sock, client);
    let out = server.join().map_err(|p| format!("server thread panicked: {}", panic_message(&*p)))??;
    Ok((out, view?))
}

/// Runs one handshake per client on a single server `SSL`, reset with `SSL_clear`
/// between them (a server reusing its SSL objects; the SSL's ex_data survives the
/// reset). `hook` is the certificate-phase hook of every handshake, `after` runs on each
/// established connection. Connections end with a clean bidirectional shutdown.
pub fn handshakes_on_one_ssl<T: Send + 'static>(
    ctx: &SslContext,
    clients: &[Client],
    hook: impl FnMut(*mut SSL) + Send + 'static,
    mut after: impl FnMut(&mut SslRef) -> T + Send + 'static,
) -> Result<Vec<(T, ClientView)>, String> {
    let pairs: Vec<(UnixStream, UnixStream)> = clients.iter().map(|_| UnixStream::pair().unwrap()).collect();
    let (s_socks, c_socks): (Vec<UnixStream>, Vec<UnixStream>) = pairs.into_iter().unzip();
    let ctx = ctx.clone();
    let server = std::thread::spawn(move || -> Result<Vec<T>, String> {
        set_hook(Some(Box::new(hook)));
        let ssl = Ssl::new(&ctx).unwrap();
        let p = ssl.as_ptr();
        let mut outs = Vec::new();
        for (i, sock) in s_socks.iter().enumerate() {
            // SAFETY: a live SSL; the socket outlives its use (a BIO_NOCLOSE socket BIO).
            let accepted = unsafe {
                assert_eq!(SSL_set_fd(p, sock.as_raw_fd()), 1, "SSL_set_fd");
                openssl_sys::SSL_accept(p)
            };
            hook_panic()?;
            if accepted != 1 {
                let e = unsafe { openssl_sys::SSL_get_error(p, accepted) };
                return Err(format!("server handshake {i}: SSL_get_error {e}: {}", openssl::error::ErrorStack::get()));
            }
            // SAFETY: owned by `ssl` above, not used elsewhere while `after` runs.
            outs.push(after(unsafe { SslRef::from_ptr_mut(p) }));
            // SAFETY: plain I/O on the live SSL; a clean shutdown keeps the session good.
            unsafe {
                assert_eq!(openssl_sys::SSL_write(p, b"x".as_ptr().cast(), 1), 1, "SSL_write");
                let mut buf = [0u8; 16];
                while openssl_sys::SSL_read(p, buf.as_mut_ptr().cast(), buf.len() as c_int) > 0 {}
                openssl_sys::SSL_shutdown(p);
                // SSL_clear keeps a cleanly closed session for reuse with the same peer;
                // on OpenSSL 1.1.1 a TLS 1.3 server then answers the next ClientHello
                // with a pre_shared_key extension nobody offered ("unsolicited
                // extension"). Drop it: the SSL's ex_data, what is tested here, stays.
                assert_eq!(openssl_sys::SSL_set_session(p, std::ptr::null_mut()), 1, "SSL_set_session(NULL)");
                assert_eq!(SSL_clear(p), 1, "SSL_clear");
            }
        }
        set_hook(None);
        Ok(outs)
    });
    let views: Vec<Result<ClientView, String>> =
        c_socks.into_iter().zip(clients).map(|(sock, client)| run_client(sock, client)).collect();
    let outs = server.join().map_err(|p| format!("server thread panicked: {}", panic_message(&*p)))??;
    outs.into_iter().zip(views).map(|(out, view)| Ok((out, view?))).collect()
}

fn run_client(sock: UnixStream, c: &Client) -> Result<ClientView, String> {
    let mut b = SslContext::builder(SslMethod::tls_client()).unwrap();
    b.set_verify(SslVerifyMode::NONE);
    if let Some(v) = c.version {
        b.set_min_proto_version(Some(v)).unwrap();
        b.set_max_proto_version(Some(v)).unwrap();
    }
    if c.no_ticket {
        b.set_options(SslOptions::NO_TICKET);
    }
    if let Some((cert, chain)) = &c.cert {
        b.set_certificate(&cert.cert).unwrap();
        b.set_private_key(&cert.key).unwrap();
        for x in chain {
            b.add_extra_chain_cert((*x).to_owned()).unwrap();
        }
    }
    // Count the sessions (tickets) the server sends, but keep them out of the client
    // context's internal cache: freeing that context would mark them unresumable.
    b.set_session_cache_mode(SslSessionCacheMode::CLIENT | SslSessionCacheMode::NO_INTERNAL_STORE);
    let tickets = Arc::new(Mutex::new(0usize));
    let t = tickets.clone();
    b.set_new_session_callback(move |_, _| *t.lock().unwrap() += 1);
    let ctx = b.build();
    let mut ssl = Ssl::new(&ctx).unwrap();
    if let Some(sni) = c.sni {
        ssl.set_hostname(sni).unwrap();
    }
    if let Some(s) = c.session {
        unsafe { ssl.set_session(s).unwrap() };
    }
    let mut stream = ssl.connect(sock).map_err(|e| format!("client handshake: {e}"))?;
    let mut one = [0u8; 1];
    stream.read_exact(&mut one).map_err(|e| format!("client read: {e}"))?;
    let ca_names = client_ca_names(stream.ssl());
    let session = stream.ssl().session().map(|s| s.to_owned());
    let resumed = stream.ssl().session_reused();
    stream.shutdown().map_err(|e| format!("client shutdown: {e}"))?;
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    let tickets = *tickets.lock().unwrap();
    Ok(ClientView { session, resumed, ca_names, tickets })
}

fn client_ca_names(ssl: &SslRef) -> Vec<Vec<u8>> {
    // SAFETY: on a client, SSL_get_client_CA_list is the list the server sent; borrowed.
    unsafe {
        let list = SSL_get_client_CA_list(ssl.as_ptr());
        if list.is_null() {
            return Vec::new();
        }
        let list = openssl::stack::StackRef::<X509Name>::from_ptr(list);
        list.iter().map(|n| n.to_der().unwrap()).collect()
    }
}

// ---- calling the exports as C does -------------------------------------------------

use resty_client_tls::ffi::*;
use resty_client_tls::{
    RESTY_CLIENT_TLS_AGAIN, RESTY_CLIENT_TLS_DECLINED, RESTY_CLIENT_TLS_ERROR, RESTY_CLIENT_TLS_OK,
};
use std::ptr::{null, null_mut};

pub fn request(ssl: *mut SSL, ca: *const openssl_sys::stack_st_X509, depth: c_int) -> Result<(), String> {
    let mut err: *const c_char = null();
    match unsafe { resty_client_tls_request_client_certificate(ssl, ca, depth, &mut err) } {
        RESTY_CLIENT_TLS_OK => Ok(()),
        RESTY_CLIENT_TLS_ERROR => Err(msg(err)),
        rc => panic!("unexpected rc {rc}"),
    }
}

pub fn disable(ssl: *mut SSL) -> Result<(), String> {
    let mut err: *const c_char = null();
    match unsafe { resty_client_tls_disable_session_reuse(ssl, &mut err) } {
        RESTY_CLIENT_TLS_OK => Ok(()),
        RESTY_CLIENT_TLS_ERROR => Err(msg(err)),
        rc => panic!("unexpected rc {rc}"),
    }
}

/// The chain the way the Lua module gets it: size query, then fill.
pub fn chain(ssl: &mut SslRef) -> Option<String> {
    let mut err: *const c_char = null();
    let mut len = 0usize;
    let rc =
        unsafe { resty_client_tls_get_full_client_certificate_chain(ssl.as_ptr(), null_mut(), &mut len, &mut err) };
    if rc == RESTY_CLIENT_TLS_DECLINED {
        return None;
    }
    assert_eq!(rc, RESTY_CLIENT_TLS_AGAIN, "size query");
    let mut buf = vec![0u8; len];
    let rc = unsafe {
        resty_client_tls_get_full_client_certificate_chain(ssl.as_ptr(), buf.as_mut_ptr().cast(), &mut len, &mut err)
    };
    assert_eq!(rc, RESTY_CLIENT_TLS_OK);
    assert_eq!(len, buf.len());
    Some(String::from_utf8(buf).expect("PEM is ASCII"))
}

pub fn client_verify(ssl: &mut SslRef) -> String {
    let mut err: *const c_char = null();
    let mut buf = [0u8; 256];
    let mut len = buf.len();
    let rc = unsafe { resty_client_tls_get_client_verify(ssl.as_ptr(), buf.as_mut_ptr().cast(), &mut len, &mut err) };
    assert_eq!(rc, RESTY_CLIENT_TLS_OK);
    String::from_utf8(buf[..len].to_vec()).unwrap()
}

pub fn session_info(ssl: &mut SslRef) -> (bool, String) {
    let mut err: *const c_char = null();
    let mut resumed: c_int = -1;
    let mut buf = [0u8; 256];
    let mut len = buf.len();
    let rc = unsafe {
        resty_client_tls_get_session_info(ssl.as_ptr(), &mut resumed, buf.as_mut_ptr().cast(), &mut len, &mut err)
    };
    assert_eq!(rc, RESTY_CLIENT_TLS_OK);
    (resumed == 1, String::from_utf8(buf[..len].to_vec()).unwrap())
}

/// What the server saw after the handshake.
#[derive(Debug)]
pub struct Seen {
    pub chain: Option<String>,
    pub verify: String,
    pub resumed: bool,
    pub session_sni: String,
}

pub fn observe(ssl: &mut SslRef) -> Seen {
    let (resumed, session_sni) = session_info(ssl);
    Seen { chain: chain(ssl), verify: client_verify(ssl), resumed, session_sni }
}

/// One handshake where the certificate phase requests a certificate with `ca` as
/// hints and store (None: NULL) and verify depth `depth`.
pub fn with_request(ctx: &SslContext, client: &Client, ca: Option<Stack<X509>>, depth: c_int) -> (Seen, ClientView) {
    handshake(
        ctx,
        client,
        move |ssl| {
            let p = ca.as_ref().map_or(null(), |s| s.as_ptr().cast_const());
            request(ssl, p, depth).unwrap();
        },
        observe,
    )
}

/// What PEM_write_X509 writes for each certificate, concatenated.
pub fn concat(certs: &[&X509]) -> String {
    certs.iter().map(|c| String::from_utf8(c.to_pem().unwrap()).unwrap()).collect()
}

pub fn msg(err: *const c_char) -> String {
    assert!(!err.is_null(), "err was not set");
    unsafe { CStr::from_ptr(err) }.to_string_lossy().into_owned()
}

/// nginx's `$ssl_client_verify` for a failed verification with `code`, in the words of
/// the OpenSSL this test runs on (they differ between versions).
#[allow(dead_code)]
pub fn failed(code: std::ffi::c_int) -> String {
    // SAFETY: any code is accepted: X509_verify_cert_error_string has a text for unknown ones.
    let result = unsafe { openssl::x509::X509VerifyResult::from_raw(code) };
    format!("FAILED:{}", result.error_string())
}
