//! Return codes, error messages, the panic/OpenSSL-copy `guard` every export runs in,
//! and the buffer protocol (`copy_out`).

use std::ffi::{CStr, c_char, c_int};
use std::panic::{AssertUnwindSafe, catch_unwind};

use openssl::error::ErrorStack;

use crate::host;

/// Success. Equal to nginx's `NGX_OK`.
pub const RESTY_CLIENT_TLS_OK: c_int = 0;
/// Failure; `*err` says why. Equal to nginx's `NGX_ERROR`.
pub const RESTY_CLIENT_TLS_ERROR: c_int = -1;
/// The buffer is too small; `*buf_len` is the size needed. Equal to nginx's `NGX_AGAIN`.
pub const RESTY_CLIENT_TLS_AGAIN: c_int = -2;
/// Nothing to return (no client certificate). Equal to nginx's `NGX_DECLINED`.
pub const RESTY_CLIENT_TLS_DECLINED: c_int = -5;

/// Every way a call can fail. Each maps to a message that lives as long as the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    NullSsl,
    NullBufLen,
    NullBuf,
    NullResumed,
    NotServer,
    HandshakeDone,
    HintsTooLarge,
    /// An OpenSSL call failed; the message names it.
    OpenSsl(&'static CStr),
    /// The process and the library use different OpenSSL copies (see `host`).
    OpenSslMismatch(&'static CStr),
    Panic,
}

impl Error {
    /// The NUL-terminated message handed to C through `*err`.
    pub fn message(self) -> &'static CStr {
        match self {
            Error::NullSsl => c"ssl is NULL",
            Error::NullBufLen => c"buf_len is NULL",
            Error::NullBuf => c"buf is NULL but *buf_len is not 0",
            Error::NullResumed => c"resumed is NULL",
            Error::NotServer => c"ssl is a client-side connection: only server-side SSL* are supported",
            Error::HandshakeDone => {
                c"the handshake is already complete: call it during the handshake (certificate phase)"
            }
            Error::HintsTooLarge => {
                c"CA DN hints exceed the 65535-byte TLS certificate_authorities limit (less in TLS 1.3, see RESTY_CLIENT_TLS_MAX_HINT_BYTES_TLS13): send fewer CA certificates"
            }
            Error::OpenSsl(m) | Error::OpenSslMismatch(m) => m,
            Error::Panic => c"internal error (panic)",
        }
    }
}

/// An OpenSSL failure: drains the thread's error queue (nginx would otherwise log
/// "ignoring stale global SSL error" on an unrelated connection) and names the call.
pub(crate) fn openssl_failed(call: &'static CStr) -> impl FnOnce(ErrorStack) -> Error {
    move |_| {
        ErrorStack::get();
        Error::OpenSsl(call)
    }
}

/// Runs an export's body: refuses to touch an `SSL*` from another OpenSSL copy, turns
/// a panic into `RESTY_CLIENT_TLS_ERROR`, writes `*err` on error only, and leaves the
/// OpenSSL error queue empty on every error path.
pub(crate) fn guard<F>(err: *mut *const c_char, body: F) -> c_int
where
    F: FnOnce() -> Result<c_int, Error>,
{
    let result = host::check().and_then(|()| {
        catch_unwind(AssertUnwindSafe(|| {
            #[cfg(feature = "test-hooks")]
            test_hook_panic();
            body()
        }))
        .unwrap_or(Err(Error::Panic))
    });
    match result {
        Ok(rc) => rc,
        Err(e) => {
            ErrorStack::get();
            if !err.is_null() {
                // SAFETY: the caller promises a NULL or writable `err`.
                unsafe { *err = e.message().as_ptr() };
            }
            RESTY_CLIENT_TLS_ERROR
        }
    }
}

/// With the `test-hooks` feature (never in a release build): panics when
/// RESTY_CLIENT_TLS_TEST_PANIC is set, so tests can prove no panic crosses the boundary.
#[cfg(feature = "test-hooks")]
pub(crate) fn test_hook_panic() {
    if std::env::var_os("RESTY_CLIENT_TLS_TEST_PANIC").is_some() {
        panic!("RESTY_CLIENT_TLS_TEST_PANIC is set");
    }
}

/// The buffer protocol of the C header: `*buf_len` is an exact byte count (no NUL).
/// The output is the concatenation of `parts`. When it does not fit, `*buf_len` becomes
/// the size needed and the result is AGAIN, with `buf` untouched.
///
/// # Safety
/// `buf_len`: NULL or writable. `buf`: NULL, or writable for `*buf_len` bytes.
pub(crate) unsafe fn copy_out(parts: &[&[u8]], buf: *mut c_char, buf_len: *mut usize) -> Result<c_int, Error> {
    if buf_len.is_null() {
        return Err(Error::NullBufLen);
    }
    // SAFETY: checked non-NULL; the caller promises it is writable.
    let cap = unsafe { *buf_len };
    if buf.is_null() && cap != 0 {
        return Err(Error::NullBuf);
    }
    let needed: usize = parts.iter().map(|p| p.len()).sum();
    if needed > cap {
        unsafe { *buf_len = needed };
        return Ok(RESTY_CLIENT_TLS_AGAIN);
    }
    let mut at = buf.cast::<u8>();
    for part in parts.iter().filter(|p| !p.is_empty()) {
        // SAFETY: buf is non-NULL (cap >= needed > 0) and writable for cap bytes; the
        // parts add up to needed <= cap.
        unsafe {
            std::ptr::copy_nonoverlapping(part.as_ptr(), at, part.len());
            at = at.add(part.len());
        }
    }
    unsafe { *buf_len = needed };
    Ok(RESTY_CLIENT_TLS_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(bytes: &[u8], cap: usize, with_buf: bool) -> (Result<c_int, Error>, usize, Vec<u8>) {
        let mut buf = vec![b'#'; cap.max(1)];
        let mut len = cap;
        let p = if with_buf { buf.as_mut_ptr().cast() } else { std::ptr::null_mut() };
        let rc = unsafe { copy_out(&[bytes], p, &mut len) };
        (rc, len, buf)
    }

    #[test]
    fn size_query_with_null_buf() {
        let (rc, len, _) = run(b"hello", 0, false);
        assert_eq!(rc, Ok(RESTY_CLIENT_TLS_AGAIN));
        assert_eq!(len, 5);
    }

    #[test]
    fn exact_fit_writes_no_nul() {
        let (rc, len, buf) = run(b"hello", 5, true);
        assert_eq!(rc, Ok(RESTY_CLIENT_TLS_OK));
        assert_eq!(len, 5);
        assert_eq!(&buf[..5], b"hello");
    }

    #[test]
    fn one_byte_short_is_again_and_untouched() {
        let (rc, len, buf) = run(b"hello", 4, true);
        assert_eq!(rc, Ok(RESTY_CLIENT_TLS_AGAIN));
        assert_eq!(len, 5);
        assert_eq!(&buf[..4], b"####");
    }

    #[test]
    fn larger_buffer_reports_exact_length() {
        let (rc, len, buf) = run(b"hi", 10, true);
        assert_eq!(rc, Ok(RESTY_CLIENT_TLS_OK));
        assert_eq!(len, 2);
        assert_eq!(&buf[..3], b"hi#");
    }

    #[test]
    fn parts_are_concatenated() {
        let mut buf = [0u8; 16];
        let mut len = buf.len();
        let rc = unsafe { copy_out(&[b"FAILED:", b"", b"why"], buf.as_mut_ptr().cast(), &mut len) };
        assert_eq!(rc, Ok(RESTY_CLIENT_TLS_OK));
        assert_eq!(&buf[..len], b"FAILED:why");
    }

    #[test]
    fn null_buf_with_length_is_error() {
        let (rc, _, _) = run(b"hi", 10, false);
        assert_eq!(rc, Err(Error::NullBuf));
    }

    #[test]
    fn null_buf_len_is_error() {
        let rc = unsafe { copy_out(&[b"x"], std::ptr::null_mut(), std::ptr::null_mut()) };
        assert_eq!(rc, Err(Error::NullBufLen));
    }

    #[test]
    fn every_message_is_nul_terminated_and_non_empty() {
        let all = [
            Error::NullSsl,
            Error::NullBufLen,
            Error::NullBuf,
            Error::NullResumed,
            Error::NotServer,
            Error::HandshakeDone,
            Error::HintsTooLarge,
            Error::OpenSsl(c"X509_STORE_new() failed"),
            Error::Panic,
        ];
        for e in all {
            let m = e.message().to_bytes_with_nul();
            assert_eq!(m.last(), Some(&0));
            assert!(m.len() > 5, "{e:?}");
        }
    }

    #[test]
    fn guard_turns_a_panic_into_error() {
        let mut err: *const c_char = std::ptr::null();
        let rc = guard(&mut err, || -> Result<c_int, Error> { panic!("boom") });
        assert_eq!(rc, RESTY_CLIENT_TLS_ERROR);
        assert_eq!(unsafe { CStr::from_ptr(err) }, c"internal error (panic)");
    }

    #[test]
    fn guard_leaves_err_alone_on_success() {
        let sentinel = c"untouched";
        let mut err: *const c_char = sentinel.as_ptr();
        assert_eq!(guard(&mut err, || Ok(RESTY_CLIENT_TLS_DECLINED)), RESTY_CLIENT_TLS_DECLINED);
        assert_eq!(err, sentinel.as_ptr());
        // A NULL err is skipped, not written.
        assert_eq!(guard(std::ptr::null_mut(), || Err(Error::NullSsl)), RESTY_CLIENT_TLS_ERROR);
    }

    #[test]
    fn guard_drains_the_openssl_error_queue() {
        let mut err: *const c_char = std::ptr::null();
        let rc = guard(&mut err, || {
            // Provoke a real OpenSSL error with a raw call, which leaves it queued.
            let der = b"not der";
            let mut p = der.as_ptr();
            let x = unsafe { openssl_sys::d2i_X509(std::ptr::null_mut(), &mut p, der.len() as _) };
            assert!(x.is_null());
            unsafe extern "C" {
                fn ERR_peek_error() -> std::ffi::c_ulong;
            }
            assert_ne!(unsafe { ERR_peek_error() }, 0);
            Err(Error::OpenSsl(c"d2i_X509() failed"))
        });
        assert_eq!(rc, RESTY_CLIENT_TLS_ERROR);
        assert!(ErrorStack::get().errors().is_empty());
    }
}
