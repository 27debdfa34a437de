//! disable_session_reuse and get_session_info over real resumptions: each case first
//! proves with a control that the same client does resume against the same server,
//! then that a connection which disabled reuse is never resumed, by ticket (TLS 1.2,
//! TLS 1.3 stateless and stateful) or by session ID (TLS 1.2 without tickets), also
//! when an SNI callback switched the SSL_CTX.

mod common;

use std::ptr::null;

use common::*;
use foreign_types::ForeignTypeRef;
use openssl::ssl::{SslContext, SslContextBuilder, SslOptions, SslSession, SslVersion};

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
