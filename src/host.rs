//! The OpenSSL-copy guard (see docs/openssl.md): an `SSL*` made by one OpenSSL copy and
//! handed to another is memory corruption, so before any export touches an `SSL*` it
//! proves that every OpenSSL function this library calls belongs to one copy, and that
//! this copy is the one the process uses. Three checks, all computed once:
//!
//! 1. **Series.** The OpenSSL that the library's calls reach (`OpenSSL_version_num()`
//!    through its own binding) is of the ABI series of the headers it was compiled against
//!    (`OPENSSL_VERSION_NUMBER`, exported by build.rs), and not an older release of it.
//! 2. **One object per library.** Every libssl function the library imports resolves into
//!    one loaded object, and every libcrypto function into one loaded object (`dladdr` on
//!    the address the library calls, listed in [`OPENSSL_IMPORTS`]). An nginx that embeds
//!    a static OpenSSL of another series exports most of these names itself, by
//!    interposition, while the names its copy lacks fall through to the system libssl that
//!    the library depends on: two copies, split per function.
//! 3. **The process's copy.** `SSL_new` and `OpenSSL_version_num` as the library binds them
//!    are those that `dlsym` finds in the main program's global scope (`dlopen(NULL)`, not
//!    `RTLD_DEFAULT`, which a library loaded with `RTLD_DEEPBIND` would see through its own
//!    dependencies first). When the global scope has no OpenSSL at all (plain LuaJIT, a C
//!    program that only links us) ours is the only copy and there is nothing to mix up.

use std::ffi::{CStr, CString, c_char, c_int, c_ulong, c_void};
use std::sync::OnceLock;

use crate::error::Error;

/// Which OpenSSL library exports a function (when OpenSSL is shared: a static build puts
/// both into one object).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lib {
    Ssl,
    Crypto,
}

impl Lib {
    fn name(self) -> &'static str {
        match self {
            Lib::Ssl => "libssl",
            Lib::Crypto => "libcrypto",
        }
    }
}

/// One OpenSSL function this library imports, with the address the library calls: the
/// dynamic linker resolves the address taken here from the same dynamic symbol (same name,
/// same version, same lookup scope) as the library's calls.
pub struct Import {
    /// The symbol name.
    pub name: &'static str,
    /// The library that exports it.
    pub lib: Lib,
    address: fn() -> usize,
}

impl Import {
    /// The address the library calls for this function.
    pub fn address(&self) -> usize {
        (self.address)()
    }
}

/// The declarations the library calls through: openssl-sys's, `sys.rs`'s, and those that
/// `sys.rs` keeps private, declared again with the same signatures.
#[allow(non_snake_case, unused_imports)]
mod imported {
    pub use crate::sys::*;
    pub use openssl_sys::*;

    #[cfg(rctls_ossl300)]
    unsafe extern "C" {
        pub fn SSL_set_options(s: *mut SSL, op: u64) -> u64;
        pub fn SSL_get0_peer_certificate(s: *const SSL) -> *mut X509;
    }

    #[cfg(not(rctls_ossl300))]
    unsafe extern "C" {
        pub fn SSL_set_options(s: *mut SSL, op: std::ffi::c_ulong) -> std::ffi::c_ulong;
    }
}

macro_rules! openssl_imports {
    ($($(#[$cfg:meta])* $lib:ident $name:ident,)*) => {
        /// Every libssl and libcrypto function the library imports (`nm -D --undefined-only`
        /// on the cdylib, for the OpenSSL series it is built against). `tests/openssl_imports.rs`
        /// fails when the built library imports an OpenSSL symbol missing here: add it, with
        /// its library. The first of each library is the one the messages name first.
        pub static OPENSSL_IMPORTS: &[Import] = &[
            $($(#[$cfg])* Import {
                name: stringify!($name),
                lib: Lib::$lib,
                address: || imported::$name as *const () as usize,
            },)*
        ];
    };
}

openssl_imports! {
    Ssl SSL_new,
    Ssl OPENSSL_init_ssl,
    Ssl SSL_SESSION_get0_hostname,
    Ssl SSL_SESSION_set1_id,
    Ssl SSL_SESSION_set1_id_context,
    Ssl SSL_ctrl,
    Ssl SSL_get_ex_data,
    Ssl SSL_get_peer_cert_chain,
    Ssl SSL_get_session,
    Ssl SSL_get_verify_result,
    Ssl SSL_in_init,
    Ssl SSL_is_server,
    Ssl SSL_session_reused,
    Ssl SSL_set_client_CA_list,
    Ssl SSL_set_ex_data,
    Ssl SSL_set_num_tickets,
    Ssl SSL_set_session_id_context,
    Ssl SSL_set_verify,
    Ssl SSL_set_verify_depth,
    Ssl SSL_version,
    Ssl SSL_set_options,
    #[cfg(rctls_ossl300)] Ssl SSL_get0_peer_certificate,
    #[cfg(not(rctls_ossl300))] Ssl SSL_get_peer_certificate,
    Crypto EVP_EncodeBlock,
    Crypto OpenSSL_version_num,
    Crypto OpenSSL_version,
    Crypto ASN1_STRING_get0_data,
    Crypto ASN1_STRING_length,
    Crypto CRYPTO_get_ex_new_index,
    Crypto OPENSSL_sk_free,
    Crypto OPENSSL_sk_new_null,
    Crypto OPENSSL_sk_num,
    Crypto OPENSSL_sk_pop,
    Crypto OPENSSL_sk_push,
    Crypto OPENSSL_sk_value,
    Crypto X509_NAME_free,
    Crypto X509_STORE_add_cert,
    Crypto X509_STORE_free,
    Crypto X509_STORE_new,
    Crypto X509_STORE_up_ref,
    Crypto X509_cmp,
    Crypto X509_free,
    Crypto X509_get0_signature,
    Crypto X509_get_subject_name,
    Crypto X509_up_ref,
    Crypto X509_verify_cert_error_string,
    Crypto d2i_X509_NAME,
    Crypto i2d_X509,
    Crypto i2d_X509_NAME,
    #[cfg(rctls_ossl300)] Crypto ERR_get_error_all,
    #[cfg(not(rctls_ossl300))] Crypto ERR_get_error_line_data,
    #[cfg(not(rctls_ossl300))] Crypto ERR_func_error_string,
}

/// `OPENSSL_VERSION_NUMBER` of the headers the library was compiled against (from
/// openssl-sys, through build.rs); `None` when openssl-sys did not report one.
pub fn compiled_version() -> Option<c_ulong> {
    option_env!("RESTY_CLIENT_TLS_OPENSSL_VERSION_NUMBER").and_then(|v| c_ulong::from_str_radix(v, 16).ok())
}

/// A loaded object (executable or shared library), as `dladdr` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// Its load address: the identity of the object.
    pub base: usize,
    /// Its file name (for messages).
    pub file: String,
}

/// Where one imported function resolves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub name: &'static str,
    pub lib: Lib,
    /// The object holding the address the library calls; `None` when `dladdr` knows no
    /// object there.
    pub object: Option<Object>,
    /// False when the address is not the function's code but a non-PIE program's PLT
    /// entry for it (the program took the function's address, so the whole process calls
    /// it through that entry): it proves nothing about the copy behind it.
    pub definition: bool,
}

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
    /// `SSL_new` and `OpenSSL_version_num` live in one object: OpenSSL linked statically
    /// into it (for a process, nginx built with `--with-openssl=DIR`).
    pub one_object: bool,
}

/// Everything the decision needs, gathered once by [`facts`].
#[derive(Debug, Clone)]
pub struct Facts {
    /// `OPENSSL_VERSION_NUMBER` of the headers the library was compiled against.
    pub compiled: Option<c_ulong>,
    /// The copy the library's calls reach.
    pub ours: Copy,
    /// The copy the process's global scope resolves to, if it has one.
    pub host: Option<Copy>,
    /// Where each of [`OPENSSL_IMPORTS`] resolves.
    pub bindings: Vec<Binding>,
}

/// The ABI series of an `OPENSSL_VERSION_NUMBER` and its feature level within it. From 3.0
/// on, OpenSSL keeps the ABI within a major version (0xMNN00PP0: series M, level NN);
/// before, the series was major.minor and the level the fix number (0xMNNFFPPS: 1.1.0 and
/// 1.1.1 share `libssl.so.1.1`).
fn series(n: c_ulong) -> ((c_ulong, c_ulong), c_ulong) {
    let major = (n >> 28) & 0xf;
    if major >= 3 { ((major, 0), (n >> 20) & 0xff) } else { ((major, (n >> 20) & 0xff), (n >> 12) & 0xff) }
}

fn series_name(n: c_ulong) -> String {
    match series(n).0 {
        (major, 0) if major >= 3 => format!("{major}.x"),
        (major, minor) => format!("{major}.{minor}"),
    }
}

/// "3.0.19" or "1.1.1w" from an `OPENSSL_VERSION_NUMBER`.
pub fn version_name(n: c_ulong) -> String {
    let (major, minor, patch) = ((n >> 28) & 0xf, (n >> 20) & 0xff, (n >> 4) & 0xff);
    if major >= 3 {
        return format!("{major}.{minor}.{patch}");
    }
    let fix = (n >> 12) & 0xff;
    let letter = match patch {
        1..=26 => char::from(b'a' + (patch as u8 - 1)).to_string(),
        0 => String::new(),
        _ => format!("+{patch}"),
    };
    format!("{major}.{minor}.{fix}{letter}")
}

/// Check 1: `None` when the OpenSSL the library calls suits the headers it was built with.
fn series_problem(f: &Facts) -> Option<String> {
    let compiled = f.compiled?;
    let run = f.ours.version;
    let ((cs, cl), (rs, rl)) = (series(compiled), series(run));
    let why = if cs != rs {
        format!("another ABI series ({} vs {})", series_name(compiled), series_name(run))
    } else if rl < cl {
        "an older release of the series, which may lack functions the library calls".to_owned()
    } else {
        return None;
    };
    Some(format!(
        "the library was built against OpenSSL {} headers ({compiled:#x}) but its calls reach {} ({run:#x}, {}): {why}",
        version_name(compiled),
        f.ours.text,
        place(&f.ours),
    ))
}

/// Check 2: for each of libssl and libcrypto, the objects its imports resolve into, when
/// there is more than one.
fn split_problems(f: &Facts) -> Vec<String> {
    let mut out = Vec::new();
    for lib in [Lib::Ssl, Lib::Crypto] {
        // (object file, names), in the order of OPENSSL_IMPORTS: the reference function
        // (SSL_new, OpenSSL_version_num) first.
        let mut groups: Vec<(Option<&Object>, Vec<&str>)> = Vec::new();
        for b in f.bindings.iter().filter(|b| b.lib == lib && (b.definition || b.object.is_none())) {
            let key = b.object.as_ref();
            let same = |o: &Option<&Object>| o.map(|o| o.base) == key.map(|k| k.base);
            match groups.iter_mut().find(|(o, _)| same(o)) {
                Some((_, names)) => names.push(b.name),
                None => groups.push((key, vec![b.name])),
            }
        }
        if groups.len() < 2 {
            continue;
        }
        let described: Vec<String> = groups
            .iter()
            .map(|(o, names)| {
                let file = o.map_or("no known object", |o| o.file.as_str());
                let shown = names.iter().take(3).copied().collect::<Vec<_>>().join(", ");
                match names.len() {
                    n if n > 3 => format!("{file} ({shown} and {} more)", n - 3),
                    _ => format!("{file} ({shown})"),
                }
            })
            .collect();
        out.push(format!(
            "the library's {} calls resolve into {} different objects: {}",
            lib.name(),
            groups.len(),
            described.join(" but ")
        ));
    }
    out
}

/// Check 3: the copy the library calls is the one the process's global scope exposes.
fn host_problem(f: &Facts) -> Option<String> {
    let (ours, host) = (&f.ours, f.host.as_ref()?);
    if host.ssl_new == ours.ssl_new && host.version_fn == ours.version_fn {
        return None;
    }
    let what = if host.version == ours.version {
        "two copies of the same OpenSSL version"
    } else {
        "two different OpenSSL versions"
    };
    Some(format!(
        "{what} in one process: the library uses {} ({:#x}, {}), the process uses {} ({:#x}, {})",
        ours.text,
        ours.version,
        place(ours),
        host.text,
        host.version,
        place(host),
    ))
}

fn place(c: &Copy) -> String {
    c.file.clone().unwrap_or_else(|| format!("SSL_new at {:#x}", c.ssl_new))
}

/// The decision, kept apart from symbol lookup so it can be unit-tested: `Ok` when the
/// library's OpenSSL calls all reach one copy of the right series and the process exposes
/// no other, else the message to report (every problem found, then the fix).
pub fn decide(f: &Facts) -> Result<(), String> {
    let (series, splits, host) = (series_problem(f), split_problems(f), host_problem(f));
    let split_only = series.is_none() && host.is_none() && !splits.is_empty();
    let problems: Vec<String> = series.into_iter().chain(splits).chain(host).collect();
    if problems.is_empty() {
        return Ok(());
    }
    let target = f.host.as_ref().unwrap_or(&f.ours);
    let file = place(target);
    let fix = if split_only && target.one_object {
        // The right series, linked into the program, but without some functions we call.
        format!(
            "{file} holds OpenSSL but not every function the library calls (those named outside it above): \
             link it against a shared OpenSSL, or make it keep them (nginx: \
             --with-ld-opt=\"-Wl,-u,<function>\" for each)"
        )
    } else if target.one_object {
        format!(
            "build the library against the OpenSSL the process uses, {} in {file}: build and install that \
             same OpenSSL source (the nginx --with-openssl=DIR), then OPENSSL_DIR=<its prefix> cargo build --release",
            target.text
        )
    } else {
        format!(
            "build the library against the OpenSSL the process uses, {} in {file}: \
             OPENSSL_DIR=<the prefix of that libssl> cargo build --release",
            target.text
        )
    };
    Err(format!(
        "resty-client-tls: refusing to mix OpenSSL copies: {}. Fix: {fix} (see docs/openssl.md)",
        problems.join("; ")
    ))
}

/// The copy this library is linked against (as its calls reach it).
pub fn ours() -> Copy {
    let ssl_new = openssl_sys::SSL_new as *const () as usize;
    // SAFETY: plain getters of the linked libcrypto; the string is static.
    let (version, text) = unsafe {
        (openssl_sys::OpenSSL_version_num(), cstr_lossy(openssl_sys::OpenSSL_version(openssl_sys::OPENSSL_VERSION)))
    };
    copy(ssl_new, openssl_sys::OpenSSL_version_num as *const () as usize, version, text)
}

fn copy(ssl_new: usize, version_fn: usize, version: c_ulong, text: String) -> Copy {
    let (ssl, crypto) = (object_of(ssl_new).map(|(o, _)| o), object_of(version_fn).map(|(o, _)| o));
    let one_object = matches!((&ssl, &crypto), (Some(s), Some(c)) if s.base == c.base);
    Copy { ssl_new, version_fn, version, text, file: ssl.map(|o| o.file), one_object }
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
        let text: extern "C" fn(c_int) -> *const c_char = std::mem::transmute(version_str);
        (num(), cstr_lossy(text(openssl_sys::OPENSSL_VERSION)))
    };
    Some(copy(ssl_new as usize, version_num as usize, version, text))
}

/// Where each of [`OPENSSL_IMPORTS`] resolves.
pub fn bindings() -> Vec<Binding> {
    OPENSSL_IMPORTS
        .iter()
        .map(|imp| {
            let found = object_of(imp.address());
            Binding {
                name: imp.name,
                lib: imp.lib,
                definition: found.as_ref().is_some_and(|(_, definition)| *definition),
                object: found.map(|(o, _)| o),
            }
        })
        .collect()
}

/// Everything [`decide`] looks at, for this process.
pub fn facts() -> Facts {
    Facts { compiled: compiled_version(), ours: ours(), host: host(), bindings: bindings() }
}

/// Cached result of `decide(&facts())`: computed once, then a load and a branch.
pub(crate) fn check() -> Result<(), Error> {
    static VERDICT: OnceLock<Option<CString>> = OnceLock::new();
    match VERDICT.get_or_init(|| decide(&facts()).err().map(to_cstring)) {
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

/// The object holding `addr`, and whether `addr` is the start of a symbol that object
/// defines (false for a non-PIE program's PLT entry, which its dynamic symbol table lists
/// as undefined with a non-zero value: glibc's `dladdr` reports it like a definition, so
/// the symbol entry from `dladdr1(RTLD_DL_SYMENT)` is what tells them apart).
fn object_of(addr: usize) -> Option<(Object, bool)> {
    // SAFETY: dladdr/dladdr1 only read loader tables; dli_fname and the symbol entry point
    // into them, for objects that are never unloaded while we read them (ours and
    // OpenSSL, which we depend on).
    unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        let (found, defined) = {
            const RTLD_DL_SYMENT: c_int = 1;
            #[cfg(target_pointer_width = "64")]
            type Sym = libc::Elf64_Sym;
            #[cfg(target_pointer_width = "32")]
            type Sym = libc::Elf32_Sym;
            let mut sym: *mut c_void = std::ptr::null_mut();
            let found = libc::dladdr1(addr as *const c_void, &mut info, &mut sym, RTLD_DL_SYMENT) != 0;
            // SHN_UNDEF is 0.
            (found, sym.is_null() || (*sym.cast::<Sym>()).st_shndx != 0)
        };
        #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
        let (found, defined) = (libc::dladdr(addr as *const c_void, &mut info) != 0, true);
        if !found {
            return None;
        }
        let base = info.dli_fbase as usize;
        // For the main program glibc's dli_fname is argv[0], which nginx overwrites with
        // its process title ("nginx: worker process"): name it by /proc/self/exe instead.
        let exe = (main_program_base() == Some(base)).then(|| std::fs::read_link("/proc/self/exe").ok()).flatten();
        let file = match exe {
            Some(path) => path.to_string_lossy().into_owned(),
            None if info.dli_fname.is_null() => String::new(),
            None => CStr::from_ptr(info.dli_fname).to_string_lossy().into_owned(),
        };
        let file = if file.is_empty() { "the main program".to_owned() } else { file };
        let definition = defined && info.dli_saddr as usize == addr;
        Some((Object { base, file }, definition))
    }
}

/// The load address of the main program: the object holding its program headers
/// (`getauxval(AT_PHDR)`).
fn main_program_base() -> Option<usize> {
    // SAFETY: getauxval only reads the auxiliary vector; dladdr only reads loader tables.
    unsafe {
        let phdr = libc::getauxval(libc::AT_PHDR) as usize;
        let mut info: libc::Dl_info = std::mem::zeroed();
        (phdr != 0 && libc::dladdr(phdr as *const c_void, &mut info) != 0).then_some(info.dli_fbase as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V3019: c_ulong = 0x3000_0130;
    const V111W: c_ulong = 0x1010_117f;

    fn copy(ssl_new: usize, version: c_ulong, text: &str) -> Copy {
        Copy {
            ssl_new,
            version_fn: ssl_new + 8,
            version,
            text: text.to_owned(),
            file: Some(format!("/lib/libssl-{ssl_new:x}.so")),
            one_object: false,
        }
    }

    fn obj(base: usize, file: &str) -> Option<Object> {
        Some(Object { base, file: file.to_owned() })
    }

    /// Every import bound into `ssl` (libssl) or `crypto` (libcrypto), as real definitions.
    fn bound(ssl: Option<Object>, crypto: Option<Object>) -> Vec<Binding> {
        OPENSSL_IMPORTS
            .iter()
            .map(|i| Binding {
                name: i.name,
                lib: i.lib,
                object: if i.lib == Lib::Ssl { ssl.clone() } else { crypto.clone() },
                definition: true,
            })
            .collect()
    }

    /// A process with one shared OpenSSL 3.0.19, the library built against it.
    fn one_copy() -> Facts {
        let c = copy(0x1000, V3019, "OpenSSL 3.0.19 27 Jan 2026");
        Facts {
            compiled: Some(V3019),
            ours: c.clone(),
            host: Some(c),
            bindings: bound(obj(0x10_0000, "/lib/libssl.so.3"), obj(0x20_0000, "/lib/libcrypto.so.3")),
        }
    }

    fn rebind(f: &mut Facts, name: &str, object: Option<Object>, definition: bool) {
        let b = f.bindings.iter_mut().find(|b| b.name == name).expect("name is in OPENSSL_IMPORTS");
        b.object = object;
        b.definition = definition;
    }

    #[test]
    fn version_names() {
        assert_eq!(version_name(V3019), "3.0.19");
        assert_eq!(version_name(0x3050_0090), "3.5.9");
        assert_eq!(version_name(V111W), "1.1.1w");
        assert_eq!(version_name(0x1010_100f), "1.1.1");
        assert_eq!(series_name(V111W), "1.1");
        assert_eq!(series_name(0x3060_0050), "3.x");
    }

    #[test]
    fn no_openssl_in_the_process_is_fine() {
        let mut f = one_copy();
        f.host = None;
        assert_eq!(decide(&f), Ok(()));
    }

    #[test]
    fn same_copy_is_fine() {
        assert_eq!(decide(&one_copy()), Ok(()));
    }

    #[test]
    fn static_copy_of_the_same_series_is_fine() {
        // nginx --with-openssl=<3.0 source>, exported with -Wl,-E: every import binds to
        // the executable, both libraries in one object.
        let mut f = one_copy();
        let nginx = obj(0x5000, "/usr/sbin/nginx");
        f.bindings = bound(nginx.clone(), nginx);
        f.ours = copy(0x5100, 0x3000_0140, "OpenSSL 3.0.20 1 Apr 2026");
        f.host = Some(f.ours.clone());
        assert_eq!(decide(&f), Ok(()));
    }

    #[test]
    fn newer_release_of_the_series_is_fine() {
        let mut f = one_copy();
        f.ours.version = 0x3050_0090;
        f.host = Some(f.ours.clone());
        assert_eq!(decide(&f), Ok(()));
        // 1.1.1 headers, a later 1.1.1 letter at run time.
        f.compiled = Some(0x1010_100f);
        f.ours.version = V111W;
        f.host = Some(f.ours.clone());
        assert_eq!(decide(&f), Ok(()));
    }

    #[test]
    fn unknown_compile_time_version_skips_the_series_check() {
        let mut f = one_copy();
        f.compiled = None;
        f.ours.version = V111W;
        f.host = Some(f.ours.clone());
        assert_eq!(decide(&f), Ok(()));
    }

    #[test]
    fn series_mismatch_names_both_versions() {
        // 3.0 headers, the calls reach nginx's static 1.1.1w.
        let mut f = one_copy();
        f.ours = copy(0x5100, V111W, "OpenSSL 1.1.1w  11 Sep 2023");
        f.ours.file = Some("/usr/sbin/nginx".to_owned());
        f.ours.one_object = true;
        f.host = Some(f.ours.clone());
        let nginx = obj(0x5000, "/usr/sbin/nginx");
        f.bindings = bound(nginx.clone(), nginx);
        let msg = decide(&f).unwrap_err();
        assert!(msg.contains("built against OpenSSL 3.0.19 headers (0x30000130)"), "{msg}");
        assert!(msg.contains("OpenSSL 1.1.1w  11 Sep 2023 (0x1010117f, /usr/sbin/nginx)"), "{msg}");
        assert!(msg.contains("another ABI series (3.x vs 1.1)"), "{msg}");
        assert!(
            msg.contains("build the library against the OpenSSL the process uses, OpenSSL 1.1.1w  11 Sep 2023 in /usr/sbin/nginx: build and install that same OpenSSL source"),
            "{msg}"
        );
        assert!(msg.contains("OPENSSL_DIR=<its prefix> cargo build --release (see docs/openssl.md)"), "{msg}");
        // And the other way round: 1.1.1 headers, 3.x at run time.
        f.compiled = Some(V111W);
        f.ours.version = V3019;
        f.host = Some(f.ours.clone());
        assert!(decide(&f).unwrap_err().contains("another ABI series (1.1 vs 3.x)"));
    }

    #[test]
    fn older_release_of_the_series_is_refused() {
        let mut f = one_copy();
        f.compiled = Some(0x3050_0090);
        let msg = decide(&f).unwrap_err();
        assert!(msg.contains("OpenSSL 3.5.9 headers"), "{msg}");
        assert!(msg.contains("an older release of the series"), "{msg}");
        f.compiled = Some(V111W);
        f.ours.version = 0x1010_006f; // 1.1.0f
        f.host = Some(f.ours.clone());
        assert!(decide(&f).unwrap_err().contains("an older release"));
    }

    #[test]
    fn a_symbol_in_another_object_is_refused() {
        // The issue's case: nginx exports a static 1.1.1w; the two names 1.1.1 lacks fall
        // through to the system 3.0 the library depends on. Here with the series check
        // passing (compiled version unknown) to see check 2 alone.
        let mut f = one_copy();
        f.compiled = None;
        let nginx = obj(0x5000, "/usr/sbin/nginx");
        f.bindings = bound(nginx.clone(), nginx);
        let name = OPENSSL_IMPORTS.iter().rev().find(|i| i.lib == Lib::Ssl).unwrap().name;
        rebind(&mut f, name, obj(0x10_0000, "/lib/libssl.so.3"), true);
        rebind(&mut f, "X509_free", obj(0x20_0000, "/lib/libcrypto.so.3"), true);
        let msg = decide(&f).unwrap_err();
        assert!(
            msg.contains(&format!(
                "the library's libssl calls resolve into 2 different objects: /usr/sbin/nginx (SSL_new, \
                 OPENSSL_init_ssl, SSL_SESSION_get0_hostname and {} more) but /lib/libssl.so.3 ({name})",
                OPENSSL_IMPORTS.iter().filter(|i| i.lib == Lib::Ssl).count() - 4
            )),
            "{msg}"
        );
        assert!(msg.contains("libcrypto calls resolve into 2 different objects"), "{msg}");
        assert!(msg.contains("/lib/libcrypto.so.3 (X509_free)"), "{msg}");
    }

    #[test]
    fn a_static_copy_lacking_functions_gets_its_own_fix() {
        // The right series linked into the program, two functions missing from it.
        let mut f = one_copy();
        let nginx = obj(0x5000, "/usr/sbin/nginx");
        f.bindings = bound(nginx.clone(), nginx);
        f.ours.file = Some("/usr/sbin/nginx".to_owned());
        f.ours.one_object = true;
        f.host = Some(f.ours.clone());
        rebind(&mut f, "X509_cmp", obj(0x20_0000, "/lib/libcrypto.so.3"), true);
        let msg = decide(&f).unwrap_err();
        assert!(msg.contains("Fix: /usr/sbin/nginx holds OpenSSL but not every function the library calls"), "{msg}");
        assert!(msg.contains("--with-ld-opt=\"-Wl,-u,<function>\""), "{msg}");
    }

    #[test]
    fn issue_17_static_other_series_reports_everything() {
        let mut f = one_copy();
        f.ours = copy(0x5100, V111W, "OpenSSL 1.1.1w  11 Sep 2023");
        f.host = Some(f.ours.clone());
        let nginx = obj(0x5000, "/usr/sbin/nginx");
        f.bindings = bound(nginx.clone(), nginx);
        rebind(&mut f, "X509_cmp", obj(0x20_0000, "/lib/libcrypto.so.3"), true);
        let msg = decide(&f).unwrap_err();
        assert!(msg.contains("another ABI series") && msg.contains("libcrypto calls resolve"), "{msg}");
        assert!(!msg.contains("in one process"), "the global scope agrees with the library: {msg}");
    }

    #[test]
    fn a_plt_entry_proves_nothing_and_is_ignored() {
        // A non-PIE nginx that takes X509_free's address: the library's X509_free is the
        // program's PLT entry, reported by dladdr in the executable.
        let mut f = one_copy();
        rebind(&mut f, "X509_free", obj(0x40_0000, "/usr/sbin/nginx"), false);
        assert_eq!(decide(&f), Ok(()));
    }

    #[test]
    fn an_address_in_no_object_is_refused() {
        let mut f = one_copy();
        rebind(&mut f, "X509_free", None, false);
        let msg = decide(&f).unwrap_err();
        assert!(msg.contains("no known object (X509_free)"), "{msg}");
    }

    #[test]
    fn different_version_names_both() {
        let mut f = one_copy();
        f.host = Some(copy(0x2000, V111W, "OpenSSL 1.1.1w  11 Sep 2023"));
        let msg = decide(&f).unwrap_err();
        assert!(msg.contains("two different OpenSSL versions"), "{msg}");
        assert!(msg.contains("OpenSSL 3.0.19 27 Jan 2026") && msg.contains("OpenSSL 1.1.1w"), "{msg}");
        assert!(msg.contains("/lib/libssl-1000.so") && msg.contains("/lib/libssl-2000.so"), "{msg}");
    }

    #[test]
    fn same_version_other_copy_is_refused() {
        let mut f = one_copy();
        f.host = Some(copy(0x2000, V3019, "OpenSSL 3.0.19"));
        let msg = decide(&f).unwrap_err();
        assert!(msg.contains("two copies of the same OpenSSL version"), "{msg}");
        assert!(
            msg.contains(
                "the process uses, OpenSSL 3.0.19 in /lib/libssl-2000.so: OPENSSL_DIR=<the prefix of that libssl>"
            ),
            "{msg}"
        );
    }

    #[test]
    fn libcrypto_mismatch_alone_is_refused() {
        let mut f = one_copy();
        let mut host = f.ours.clone();
        host.version_fn += 1;
        f.host = Some(host);
        assert!(decide(&f).is_err());
    }

    #[test]
    fn this_test_process_has_one_copy() {
        // The test binary links libssl itself, so the global namespace has it: the very
        // copy we call, every import a real definition in libssl.so or libcrypto.so.
        let f = facts();
        assert!(f.host.is_some(), "the test binary exports OpenSSL through libssl.so");
        assert!(!f.ours.one_object, "libssl.so and libcrypto.so are two objects");
        assert_eq!(f.compiled.map(|c| series(c).0), Some(series(f.ours.version).0));
        for b in &f.bindings {
            let file = &b.object.as_ref().expect("dladdr knows every import").file;
            assert!(b.definition, "{} is a definition in {file}", b.name);
            let want = if b.lib == Lib::Ssl { "libssl" } else { "libcrypto" };
            assert!(file.contains(want), "{} is in {file}, not in {want}", b.name);
        }
        assert_eq!(decide(&f), Ok(()));
        assert!(check().is_ok());
    }
}
