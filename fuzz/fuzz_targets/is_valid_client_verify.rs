//! resty_client_tls_is_valid_client_verify on arbitrary bytes: never crashes, never reads
//! past `len` (the input is copied into an exact-size heap block, so ASan sees any
//! over-read), and agrees with an independent statement of Kong's rule.
#![no_main]

use std::ffi::c_int;

use libfuzzer_sys::fuzz_target;
use resty_client_tls::ffi::resty_client_tls_is_valid_client_verify;

/// Kong's rule, written independently of src/verify.rs.
fn oracle(v: &[u8]) -> c_int {
    let ok = match v.len() {
        4 => v == b"NONE",
        7 => v == b"SUCCESS" || v == b"FAILED:",
        n if n > 7 => &v[..7] == b"FAILED:",
        _ => false,
    };
    c_int::from(ok)
}

fuzz_target!(|data: &[u8]| {
    let exact: Box<[u8]> = data.into();
    let got = unsafe { resty_client_tls_is_valid_client_verify(exact.as_ptr().cast(), exact.len()) };
    assert_eq!(got, oracle(data), "{:?}", String::from_utf8_lossy(data));
    // Every prefix too (the length, not a NUL, ends the value).
    if let Some(cut) = data.first().map(|b| usize::from(*b) % (data.len() + 1)) {
        let got = unsafe { resty_client_tls_is_valid_client_verify(exact.as_ptr().cast(), cut) };
        assert_eq!(got, oracle(&data[..cut]));
    }
    // NULL is 0 whatever the length.
    assert_eq!(unsafe { resty_client_tls_is_valid_client_verify(std::ptr::null(), data.len()) }, 0);
});
