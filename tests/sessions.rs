//! disable_session_reuse and get_session_info over real resumptions: each case first
//! proves with a control that the same client does resume against the same server,
//! then that a connection which disabled reuse is never resumed, by ticket (TLS 1.2,
//! TLS 1.3 stateless and stateful) or by session ID (TLS 1.2 without tickets), also
//! when an SNI callback switched the SSL_CTX.

mod common;

use std::ptr::null;

use common::*;
use foreign_types::ForeignType;
use foreign_types::ForeignTypeRef;
use openssl::ssl::{ClientHelloResponse, SslContext, SslContextBuilder, SslOptions, SslSession, SslVersion};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// TLS 1.2, stateless tickets.
    Tls12Ticket,
    /// TLS 1.2, client without tickets: session-ID caching.
    Tls12SessionId,
    /// TLS 1.3, stateless tickets.
    Tls13,
    /// TLS 1.3 with SSL_OP_NO_TICKET on the server: stateful tickets (sessions cached).
    Tls13Stateful,
}

const MODES: [Mode; 4] = [Mode::Tls12Ticket, Mode::Tls12SessionId, Mode::Tls13, Mode::Tls13Stateful];

impl Mode {
    fn version(self) -> SslVersion {
        match self {
            Mode::Tls12Ticket | Mode::Tls12SessionId => SslVersion::TLS1_2,
            Mode::Tls13 | Mode::Tls13Stateful => SslVersion::TLS1_3,
        }
    }

    fn server(self, pki: &Pki) -> SslContextBuilder {
        let mut b = server_ctx(pki, self.version());
        if self == Mode::Tls13Stateful {
            b.set_options(SslOptions::NO_TICKET);
        }
        b
    }
}

struct Round {
    seen: Seen,
    view: ClientView,
}

/// One connection with a client certificate; the certificate phase requests it
/// (trusting the root, depth 2) and, when `disable`, disables reuse.
fn connect(
    ctx: &SslContext,
    pki: &Pki,
    mode: Mode,
    sni: &str,
    session: Option<&SslSession>,
    disable_reuse: bool,
) -> Round {
    let root = pki.root.cert.clone();
    let client = Client {
        version: Some(mode.version()),
        cert: Some((&pki.leaf, vec![&pki.int.cert])),
        sni: Some(sni),
        session,
        no_ticket: mode == Mode::Tls12SessionId,
    };
    let (seen, view) = handshake(
        ctx,
        &client,
        move |ssl| {
            request(ssl, stack(&[&root]).as_ptr(), 2).unwrap();
            if disable_reuse {
                disable(ssl).unwrap();
            }
        },
        observe,
    );
    assert_eq!(seen.resumed, view.resumed, "server and client agree on resumption");
    Round { seen, view }
}

#[test]
fn control_resumes_and_keeps_only_the_leaf() {
    let pki = Pki::new();
    for mode in MODES {
        let ctx = mode.server(&pki).build();
        let first = connect(&ctx, &pki, mode, "a.test", None, false);
        assert!(!first.seen.resumed, "{mode:?}");
        assert_eq!(first.seen.session_sni, "a.test", "{mode:?}");
        let second = connect(&ctx, &pki, mode, "a.test", first.view.session.as_ref(), false);
        assert!(second.seen.resumed, "{mode:?}: the control must resume");
        // Resumed: OpenSSL kept the leaf and the original verify result, not the chain.
        assert_eq!(second.seen.chain, Some(pki.leaf.pem()), "{mode:?}");
        assert_eq!(second.seen.verify, "SUCCESS", "{mode:?}");
    }
}

#[test]
fn disabled_connections_are_never_resumed() {
    let pki = Pki::new();
    for mode in MODES {
        let ctx = mode.server(&pki).build();
        let cached_before = cached_sessions(&ctx);
        let first = connect(&ctx, &pki, mode, "a.test", None, true);
        if mode.version() == SslVersion::TLS1_3 {
            assert_eq!(first.view.tickets, 0, "{mode:?}: no TLS 1.3 ticket issued");
        }
        assert_eq!(cached_sessions(&ctx), cached_before, "{mode:?}: nothing added to the server cache");
        if let Some(session) = &first.view.session {
            assert!(session.id().is_empty() || mode.version() == SslVersion::TLS1_3, "{mode:?}: empty session ID");
        }
        // Try to resume it, twice.
        for _ in 0..2 {
            let again = connect(&ctx, &pki, mode, "a.test", first.view.session.as_ref(), false);
            assert!(!again.seen.resumed, "{mode:?}: a disabled session was resumed");
            assert_eq!(again.seen.chain, Some(concat(&[&pki.leaf.cert, &pki.int.cert])), "{mode:?}: full chain");
        }
        // Other connections of the same server still resume.
        let other = connect(&ctx, &pki, mode, "a.test", None, false);
        let resumed = connect(&ctx, &pki, mode, "a.test", other.view.session.as_ref(), false);
        assert!(resumed.seen.resumed, "{mode:?}: reuse of other connections is untouched");
    }
}

#[test]
fn tls12_tickets_are_not_issued_when_disabled() {
    let pki = Pki::new();
    let ctx = Mode::Tls12Ticket.server(&pki).build();
    let control = connect(&ctx, &pki, Mode::Tls12Ticket, "a.test", None, false);
    let disabled = connect(&ctx, &pki, Mode::Tls12Ticket, "a.test", None, true);
    let ticket = |r: &Round| r.view.session.as_ref().is_some_and(|s| has_ticket(s));
    assert!(ticket(&control), "the control gets a ticket");
    assert!(!ticket(&disabled), "no ticket when disabled");
}

#[test]
fn tls13_tickets_are_not_issued_when_disabled() {
    let pki = Pki::new();
    for mode in [Mode::Tls13, Mode::Tls13Stateful] {
        let ctx = mode.server(&pki).build();
        assert!(connect(&ctx, &pki, mode, "a.test", None, false).view.tickets > 0, "{mode:?}: control");
        assert_eq!(connect(&ctx, &pki, mode, "a.test", None, true).view.tickets, 0, "{mode:?}");
    }
}

/// Like nginx: the default server's context takes the handshake, and the SNI callback
/// switches to the named server's context (`SSL_set_SSL_CTX`); the session cache stays
/// the default one's.
fn sni_switching(pki: &Pki, mode: Mode) -> (SslContext, SslContext) {
    let named = mode.server(pki).build();
    let mut default = mode.server(pki);
    let target = named.clone();
    default.set_servername_callback(move |ssl, _| {
        if ssl.servername(openssl::ssl::NameType::HOST_NAME) == Some("b.test") {
            ssl.set_ssl_context(&target).expect("SSL_set_SSL_CTX");
        }
        Ok(())
    });
    (default.build(), named)
}

#[test]
fn disabled_after_an_sni_switch_is_never_resumed() {
    let pki = Pki::new();
    for mode in MODES {
        let (ctx, named) = sni_switching(&pki, mode);
        // Control: resumption works through the switch.
        let first = connect(&ctx, &pki, mode, "b.test", None, false);
        let second = connect(&ctx, &pki, mode, "b.test", first.view.session.as_ref(), false);
        assert!(second.seen.resumed, "{mode:?}: control through the SNI switch");
        // Disabled on the switched context.
        let (cached, cached_named) = (cached_sessions(&ctx), cached_sessions(&named));
        let first = connect(&ctx, &pki, mode, "b.test", None, true);
        assert_eq!((cached_sessions(&ctx), cached_sessions(&named)), (cached, cached_named), "{mode:?}");
        let again = connect(&ctx, &pki, mode, "b.test", first.view.session.as_ref(), false);
        assert!(!again.seen.resumed, "{mode:?}: resumed after an SNI switch");
    }
}

#[test]
fn session_info_reports_the_original_server_name_on_cross_sni_resumption() {
    let pki = Pki::new();
    for mode in MODES {
        let ctx = mode.server(&pki).build();
        let first = connect(&ctx, &pki, mode, "a.test", None, false);
        let cross = connect(&ctx, &pki, mode, "b.test", first.view.session.as_ref(), false);
        if cross.seen.resumed {
            assert_eq!(cross.seen.session_sni, "a.test", "{mode:?}: the session's own SNI, not the new one");
        } else {
            assert_eq!(cross.seen.session_sni, "b.test", "{mode:?}");
        }
        println!("{mode:?}: a.test session offered under b.test: resumed={}", cross.seen.resumed);
    }
}

#[test]
fn disable_after_the_handshake_is_an_error() {
    let pki = Pki::new();
    let ctx = Mode::Tls13.server(&pki).build();
    let (err, _) = handshake(&ctx, &Client::default(), |_| {}, |ssl| disable(ssl.as_ptr()).unwrap_err());
    assert!(err.contains("handshake is already complete"), "{err}");
}

#[test]
fn request_without_ca_on_a_plain_connection() {
    // NULL ca_certs and a negative depth only set SSL_VERIFY_PEER and the callback.
    let pki = Pki::new();
    let ctx = Mode::Tls12Ticket.server(&pki).build();
    let client = Client { cert: Some((&pki.self_signed, vec![])), ..Default::default() };
    let (seen, _) = handshake(&ctx, &client, |ssl| request(ssl, null(), -1).unwrap(), observe);
    assert!(seen.verify.starts_with("FAILED:"), "{}", seen.verify);
}

/// The session ID context of the server's current session.
fn session_sid_ctx(ssl: &mut openssl::ssl::SslRef) -> Vec<u8> {
    // SAFETY: getters on the live SSL and its session; the bytes are copied out.
    unsafe {
        let session = openssl_sys::SSL_get_session(ssl.as_ptr());
        assert!(!session.is_null(), "no session");
        let mut len = 0;
        let p = SSL_SESSION_get0_id_context(session, &mut len);
        std::slice::from_raw_parts(p, len as usize).to_vec()
    }
}

const CTX_SID_CTX: &[u8] = b"resty-client-tls-test"; // server_ctx's

#[test]
fn disabled_sessions_carry_a_session_id_context_of_their_own() {
    let pki = Pki::new();
    for mode in MODES {
        // `early`: disable_session_reuse from the ClientHello callback, before OpenSSL has
        // made the connection's session: what it sets on the SSL must reach the session.
        for early in [false, true] {
            let mut b = mode.server(&pki);
            if early {
                b.set_client_hello_callback(|ssl, _| {
                    assert!(ssl.session().is_none(), "no session yet in the ClientHello callback");
                    disable(ssl.as_ptr()).unwrap();
                    Ok(ClientHelloResponse::SUCCESS)
                });
            }
            let ctx = b.build();
            let sid_ctx = |disable_reuse: bool| {
                let client = Client {
                    version: Some(mode.version()),
                    no_ticket: mode == Mode::Tls12SessionId,
                    ..Default::default()
                };
                handshake(
                    &ctx,
                    &client,
                    move |ssl| {
                        if disable_reuse && !early {
                            disable(ssl).unwrap();
                        }
                    },
                    session_sid_ctx,
                )
                .0
            };
            let (a, b) = (sid_ctx(true), sid_ctx(true));
            assert!(!a.is_empty(), "{mode:?}, early {early}");
            assert_ne!(
                a, CTX_SID_CTX,
                "{mode:?}, early {early}: a disabled session has the SSL_CTX's session ID context"
            );
            assert_ne!(a, b, "{mode:?}, early {early}: two disabled sessions share a session ID context");
            if !early {
                assert_eq!(sid_ctx(false), CTX_SID_CTX, "{mode:?}: control: a normal session has the SSL_CTX's");
            }
        }
    }
}

#[test]
fn a_disabled_session_put_into_the_cache_by_hand_is_not_resumed() {
    // The session-ID-context layer on its own: the session of a disabled connection is
    // given a session ID and put into the server's cache, as a cache that stored it by
    // other means would hold it; the client offers it with that ID (TLS 1.2, no tickets).
    // The control, a normal session treated the same way, is resumed.
    let pki = Pki::new();
    let mode = Mode::Tls12SessionId;
    let ctx = mode.server(&pki).build();
    for (n, disable_reuse) in [false, true, false, true].into_iter().enumerate() {
        let id: Vec<u8> = (0..32u8).map(|i| i ^ (0x40 + n as u8)).collect();
        let cache = ctx.clone();
        let server_id = id.clone();
        let client = Client { version: Some(mode.version()), no_ticket: true, ..Default::default() };
        let ((), first) = handshake(
            &ctx,
            &client,
            move |ssl| {
                if disable_reuse {
                    disable(ssl).unwrap();
                }
            },
            move |ssl| unsafe {
                // A copy (the original may be in the cache already, hashed by its ID).
                let copy = SSL_SESSION_dup(openssl_sys::SSL_get_session(ssl.as_ptr()));
                assert!(!copy.is_null(), "SSL_SESSION_dup");
                assert_eq!(SSL_SESSION_set1_id(copy, server_id.as_ptr(), server_id.len() as _), 1);
                assert_eq!(openssl_sys::SSL_CTX_add_session(cache.as_ptr(), copy), 1, "SSL_CTX_add_session");
                openssl_sys::SSL_SESSION_free(copy);
            },
        );
        let offered = first.session.expect("client session");
        // SAFETY: the client's own session object, used by no connection now.
        assert_eq!(unsafe { SSL_SESSION_set1_id(offered.as_ptr(), id.as_ptr(), id.len() as _) }, 1);
        assert_eq!(offered.id(), &id[..]);
        let (seen, view) = handshake(&ctx, &Client { session: Some(&offered), ..client }, |_| {}, observe);
        assert_eq!(seen.resumed, view.resumed);
        if disable_reuse {
            assert!(!seen.resumed, "round {n}: a disabled session, cached with an ID, was resumed");
        } else {
            assert!(seen.resumed, "round {n}: control: a normal session cached the same way must resume");
        }
    }
}
