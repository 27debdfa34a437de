//! `$ssl_client_verify` as nginx computes it (without OCSP), and the validator Kong's
//! `set_client_verify` applies.

use std::ffi::CStr;

use foreign_types::ForeignTypeRef;
use openssl::ssl::SslRef;

use crate::sys;

/// The client-verify result of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientVerify {
    /// No peer certificate.
    None,
    /// A peer certificate that verified.
    Success,
    /// A peer certificate that did not verify: `X509_verify_cert_error_string(result)`.
    Failed(&'static CStr),
}

impl ClientVerify {
    /// The value as nginx prints it, in up to two parts ("FAILED:" and the reason), so
    /// it can be copied out without an allocation.
    pub fn parts(&self) -> [&'static [u8]; 2] {
        match self {
            ClientVerify::None => [b"NONE", b""],
            ClientVerify::Success => [b"SUCCESS", b""],
            ClientVerify::Failed(reason) => [b"FAILED:", reason.to_bytes()],
        }
    }
}

/// `ngx_ssl_get_client_verify` without OCSP: NONE when there is no peer certificate,
/// else SUCCESS or FAILED:<reason> from `SSL_get_verify_result`.
pub fn client_verify(ssl: &SslRef) -> ClientVerify {
    // SAFETY: a live SSL; the certificate is only tested for NULL.
    if unsafe { sys::ssl_peer_certificate(ssl.as_ptr()) }.is_null() {
        return ClientVerify::None;
    }
    // SAFETY: plain getter on a live SSL.
    let rc = unsafe { openssl_sys::SSL_get_verify_result(ssl.as_ptr()) };
    if rc == openssl_sys::X509_V_OK as _ {
        return ClientVerify::Success;
    }
    // SAFETY: OpenSSL returns a pointer into its static table of reasons.
    let reason = unsafe { openssl_sys::X509_verify_cert_error_string(rc) };
    if reason.is_null() {
        ClientVerify::Failed(c"unknown certificate verification error")
    } else {
        ClientVerify::Failed(unsafe { CStr::from_ptr(reason) })
    }
}

/// Kong's `set_client_verify` rule: "SUCCESS", "NONE", or "FAILED:" followed by any
/// reason, the empty one included.
pub fn is_valid_client_verify(v: &[u8]) -> bool {
    v == b"SUCCESS" || v == b"NONE" || v.starts_with(b"FAILED:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_values() {
        for v in ["SUCCESS", "NONE", "FAILED:", "FAILED:x", "FAILED:unable to get local issuer certificate"] {
            assert!(is_valid_client_verify(v.as_bytes()), "{v}");
        }
    }

    #[test]
    fn rejected_values() {
        for v in ["", "success", "SUCCESS ", " NONE", "FAILED", "FAIL:x", "NONE\0", "failed:x", "SUCCES"] {
            assert!(!is_valid_client_verify(v.as_bytes()), "{v:?}");
        }
    }

    #[test]
    fn parts_join_to_nginx_strings() {
        assert_eq!(ClientVerify::None.parts().concat(), b"NONE");
        assert_eq!(ClientVerify::Success.parts().concat(), b"SUCCESS");
        assert_eq!(
            ClientVerify::Failed(c"certificate has expired").parts().concat(),
            b"FAILED:certificate has expired"
        );
    }
}
