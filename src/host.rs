//! The OpenSSL-copy guard (CONTRACT.md, PITFALLS 7): an `SSL*` made by one OpenSSL copy
//! and handed to another is memory corruption, so before any export touches an `SSL*`
//! it checks that the OpenSSL this library calls is the one the process exposes.
//!
//! "The process's OpenSSL" is what `dlsym` finds in the main program's global scope
//! (`dlopen(NULL)`, not `RTLD_DEFAULT`, which a library loaded with `RTLD_DEEPBIND` would
//! see through its own dependencies first): nginx links libssl
//! (or exports its static copy with `-Wl,-E`, as lua-nginx-module's build does). When the
//! global namespace has no OpenSSL at all (plain LuaJIT, a C program that only links us)
//! ours is the only copy and there is nothing to mix up.

use std::ffi::{CStr, CString, c_char, c_ulong, c_void};
use std::sync::OnceLock;

use crate::error::Error;

/// One OpenSSL copy as seen from this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// Address of its `SSL_new` (libssl).
    pub ssl_new: usize,
    /// Address of its `OpenSSL_version_num` (libcrypto).
    pub version_fn: usize,
    /// `OpenSSL_version_num()`.
    pub version: c_ulong,
    /// `OpenSSL_version(OPENSSL_VERSION)`, e.g. "OpenSSL 3.0.19 27 Jan 2026".
    pub text: String,
    /// The file `SSL_new` lives in, when `dladdr` knows it.
    pub file: Option<String>,
}

/// The decision, kept apart from symbol lookup so it can be unit-tested: `Ok` when the
/// process exposes no OpenSSL or exactly the copy we call, else the message to report.
pub fn decide(ours: &Copy, host: Option<&Copy>) -> Result<(), String> {
    let Some(host) = host else { return Ok(()) };
    if host.ssl_new == ours.ssl_new && host.version_fn == ours.version_fn {
        return Ok(());
    }
    let place = |c: &Copy| c.file.clone().unwrap_or_else(|| format!("SSL_new at {:#x}", c.ssl_new));
    let what = if host.version == ours.version {
        "two copies of the same OpenSSL version"
    } else {
        "two different OpenSSL versions"
    };
    Err(format!(
        "resty-client-tls: {what} in one process: the library uses {} ({:#x}, {}), the process uses {} ({:#x}, {}); \
         rebuild the library against the process's OpenSSL (OPENSSL_DIR / OPENSSL_LIB_DIR, see README)",
        ours.text,
        ours.version,
        place(ours),
        host.text,
        host.version,
        place(host),
    ))
}

/// The copy this library is linked against.
pub fn ours() -> Copy {
    let ssl_new = openssl_sys::SSL_new as *const () as usize;
    // SAFETY: plain getters of the linked libcrypto; the string is static.
    let (version, text) = unsafe {
        (openssl_sys::OpenSSL_version_num(), cstr_lossy(openssl_sys::OpenSSL_version(openssl_sys::OPENSSL_VERSION)))
    };
    Copy {
        ssl_new,
        version_fn: openssl_sys::OpenSSL_version_num as *const () as usize,
        version,
        text,
        file: file_of(ssl_new),
    }
}

/// The copy the process's global namespace resolves to, if any.
pub fn host() -> Option<Copy> {
    // The global scope as the main program sees it. Not RTLD_DEFAULT: that searches the
    // caller's scope, which for a library loaded with RTLD_DEEPBIND starts with the
    // library's own dependencies, so it would find our own OpenSSL and see no mismatch.
    // SAFETY: dlopen(NULL) returns the main program's handle, which is never unloaded.
    let main = unsafe { libc::dlopen(std::ptr::null(), libc::RTLD_NOW) };
    if main.is_null() {
        return None;
    }
    // SAFETY: dlsym on a valid handle with NUL-terminated names only looks symbols up.
    let sym = |name: &CStr| unsafe { libc::dlsym(main, name.as_ptr()) };
    let ssl_new = sym(c"SSL_new");
    let version_num = sym(c"OpenSSL_version_num");
    let version_str = sym(c"OpenSSL_version");
    if ssl_new.is_null() || version_num.is_null() || version_str.is_null() {
        return None;
    }
    // SAFETY: these are OpenSSL's own exported functions with these C signatures.
    let (version, text) = unsafe {
        let num: extern "C" fn() -> c_ulong = std::mem::transmute(version_num);
        let text: extern "C" fn(i32) -> *const c_char = std::mem::transmute(version_str);
        (num(), cstr_lossy(text(openssl_sys::OPENSSL_VERSION)))
    };
    Some(Copy {
        ssl_new: ssl_new as usize,
        version_fn: version_num as usize,
        version,
        text,
        file: file_of(ssl_new as usize),
    })
}

/// Cached result of `decide(ours(), host())`: computed once, then a load and a branch.
pub(crate) fn check() -> Result<(), Error> {
    static VERDICT: OnceLock<Option<CString>> = OnceLock::new();
    match VERDICT.get_or_init(|| decide(&ours(), host().as_ref()).err().map(to_cstring)) {
        None => Ok(()),
        Some(msg) => Err(Error::OpenSslMismatch(msg.as_c_str())),
    }
}

fn to_cstring(s: String) -> CString {
    CString::new(s.replace('\0', "?")).unwrap_or_default()
}

fn cstr_lossy(p: *const c_char) -> String {
    if p.is_null() {
        return "unknown OpenSSL".to_owned();
    }
    // SAFETY: OpenSSL returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

fn file_of(addr: usize) -> Option<String> {
    // SAFETY: dladdr only reads loader tables; dli_fname points into them.
    unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        if libc::dladdr(addr as *const c_void, &mut info) == 0 || info.dli_fname.is_null() {
            return None;
        }
        Some(CStr::from_ptr(info.dli_fname).to_string_lossy().into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(ssl_new: usize, version: c_ulong, text: &str) -> Copy {
        Copy {
            ssl_new,
            version_fn: ssl_new + 8,
            version,
            text: text.to_owned(),
            file: Some(format!("/lib/libssl-{ssl_new:x}.so")),
        }
    }

    #[test]
    fn no_openssl_in_the_process_is_fine() {
        assert_eq!(decide(&copy(1, 0x3000_0130, "OpenSSL 3.0.19"), None), Ok(()));
    }

    #[test]
    fn same_copy_is_fine() {
        let c = copy(0x1000, 0x3000_0130, "OpenSSL 3.0.19");
        assert_eq!(decide(&c, Some(&c.clone())), Ok(()));
    }

    #[test]
    fn different_version_names_both() {
        let ours = copy(0x1000, 0x3000_0130, "OpenSSL 3.0.19 27 Jan 2026");
        let host = copy(0x2000, 0x1010_117f, "OpenSSL 1.1.1w  11 Sep 2023");
        let msg = decide(&ours, Some(&host)).unwrap_err();
        assert!(msg.contains("two different OpenSSL versions"), "{msg}");
        assert!(msg.contains("OpenSSL 3.0.19 27 Jan 2026") && msg.contains("OpenSSL 1.1.1w"), "{msg}");
        assert!(msg.contains("/lib/libssl-1000.so") && msg.contains("/lib/libssl-2000.so"), "{msg}");
    }

    #[test]
    fn same_version_other_copy_is_refused() {
        let ours = copy(0x1000, 0x3000_0130, "OpenSSL 3.0.19");
        let host = copy(0x2000, 0x3000_0130, "OpenSSL 3.0.19");
        let msg = decide(&ours, Some(&host)).unwrap_err();
        assert!(msg.contains("two copies of the same OpenSSL version"), "{msg}");
    }

    #[test]
    fn libcrypto_mismatch_alone_is_refused() {
        let ours = copy(0x1000, 0x3000_0130, "OpenSSL 3.0.19");
        let mut host = ours.clone();
        host.version_fn += 1;
        assert!(decide(&ours, Some(&host)).is_err());
    }

    #[test]
    fn this_test_process_has_one_copy() {
        // The test binary links libssl itself, so the global namespace has it: the very
        // copy we call.
        let host = host().expect("the test binary exports OpenSSL through libssl.so");
        assert_eq!(decide(&ours(), Some(&host)), Ok(()));
        assert!(check().is_ok());
    }
}
