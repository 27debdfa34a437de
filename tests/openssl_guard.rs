//! The OpenSSL-copy guard at the C boundary, in a real process with two OpenSSL copies:
//! a C program (`tests/c/openssl_guard_host.c`) links OpenSSL statically and exports it,
//! loads the built library with `dlopen` and hands it an `SSL*` of its own copy. Loaded
//! plainly, the library's calls bind to the program's copy and it must work; loaded with
//! `RTLD_DEEPBIND`, they bind to the shared libssl the library depends on, and every
//! function must refuse with one message naming both. (`src/host.rs` unit-tests the
//! decision on made-up facts; `tests/reliability/openssl_mismatch.sh` adds renamed copies
//! and other series.) Needs `cc` and OpenSSL's static libraries (libssl-dev).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use resty_client_tls::host::OPENSSL_IMPORTS;

/// The cdylib built with this test: target/<profile>/deps/, beside the test binary. (The
/// copy in target/<profile>/ is refreshed by `cargo build` only, not by `cargo test`.)
fn cdylib() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let lib = exe.parent().expect("target/<profile>/deps/<test>").join("libresty_client_tls.so");
    assert!(lib.exists(), "no {}", lib.display());
    lib
}

fn report(run: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr))
}

/// Builds the program once per test process, in a directory removed by the caller.
fn build_host(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = dir.join("openssl_guard_host");
    // Every OpenSSL function the library imports is pulled out of the archives (-u) and
    // exported with the rest of the program (-E), so that a plain dlopen binds all of the
    // library's calls to the program's copy.
    let pulled: Vec<String> = OPENSSL_IMPORTS.iter().map(|i| format!("-Wl,-u,{}", i.name)).collect();
    // The archives and what they need, as this system's libssl.pc says (OpenSSL 3.5+ on
    // Debian also needs zlib and zstd), with libssl and libcrypto taken as archives.
    let pc = Command::new("pkg-config")
        .args(["--static", "--libs", "libssl"])
        .output()
        .expect("pkg-config must be installed: the README's test command installs it");
    assert!(pc.status.success(), "pkg-config --static --libs libssl failed:\n{}", report(&pc));
    let libs: Vec<String> = String::from_utf8_lossy(&pc.stdout)
        .split_whitespace()
        .map(|l| match l {
            "-lssl" => "-l:libssl.a".to_owned(),
            "-lcrypto" => "-l:libcrypto.a".to_owned(),
            other => other.to_owned(),
        })
        .collect();
    let out = Command::new("cc")
        .args(["-std=c11", "-g", "-Wall", "-Wextra", "-Werror", "-Wpedantic", "-o"])
        .arg(&exe)
        .arg(root.join("tests/c/openssl_guard_host.c"))
        .arg("-Wl,-E")
        .args(&pulled)
        .args(&libs)
        .output()
        .expect("cc must be installed: the README's test command installs build-essential");
    assert!(
        out.status.success(),
        "building a program with a static OpenSSL failed (needs libssl.a and libcrypto.a from libssl-dev, and \
         the libraries `pkg-config --static --libs libssl` names):\n{}",
        report(&out)
    );
    exe
}

fn run(mode: &str) -> Output {
    let dir = std::env::temp_dir().join(format!("rctls-guard-{mode}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = build_host(&dir);
    // The canonical path: the library names the program by /proc/self/exe.
    let exe = std::fs::canonicalize(exe).unwrap();
    let out = Command::new(&exe).arg(cdylib()).arg(mode).output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    out
}

#[test]
fn one_copy_through_interposition_is_accepted_and_works() {
    let out = run("plain");
    assert!(out.status.success(), "the library refused or failed with the program's own copy:\n{}", report(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("all checks passed"), "{}", report(&out));
}

#[test]
fn two_copies_every_function_refuses_with_one_message() {
    let out = run("deepbind");
    assert!(out.status.success(), "the library used an SSL* of another OpenSSL copy:\n{}", report(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("all checks passed"), "{}", report(&out));
    assert!(stdout.contains("two copies of the same OpenSSL version in one process"), "{}", report(&out));
}
