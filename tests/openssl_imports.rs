//! The OpenSSL-copy guard checks where each OpenSSL function the library imports resolves,
//! from a hand-kept list (`host::OPENSSL_IMPORTS`). These tests keep that list true: every
//! OpenSSL symbol the built cdylib imports is in it, and each entry's library (libssl or
//! libcrypto) is the one that defines it here. Needs `nm` (binutils, which `cc` brings).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use resty_client_tls::host::{self, Lib, OPENSSL_IMPORTS};

/// The cdylib built for this test run: target/<profile>/deps/, beside the test binary (the
/// copy in target/<profile>/ is refreshed by `cargo build`, not necessarily by `cargo test`).
fn cdylib() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let lib = exe.parent().expect("target/<profile>/deps/<test>").join("libresty_client_tls.so");
    assert!(lib.exists(), "no {}", lib.display());
    lib
}

/// `nm -D` lines of `file` with the given extra flag.
fn nm(flag: &str, file: &Path) -> Vec<String> {
    let out = Command::new("nm")
        .args(["-D", flag])
        .arg(file)
        .output()
        .expect("nm must be installed (binutils, with cc: the README's test command installs it)");
    assert!(out.status.success(), "nm {flag} {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect()
}

/// The OpenSSL symbols the cdylib imports: undefined, not weak, and versioned OPENSSL_*
/// or not versioned at all (an OpenSSL built without symbol versions).
fn imported_openssl_symbols() -> BTreeSet<String> {
    nm("--undefined-only", &cdylib())
        .iter()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (kind, sym) = (f.next()?, f.next()?);
            if kind != "U" {
                return None;
            }
            match sym.split_once('@') {
                Some((name, version)) if version.trim_start_matches('@').starts_with("OPENSSL_") => Some(name),
                Some(_) => None,
                None => Some(sym),
            }
            .map(str::to_owned)
        })
        .collect()
}

#[test]
fn every_openssl_import_of_the_library_is_in_the_guard_list() {
    let imported = imported_openssl_symbols();
    assert!(imported.contains("SSL_new") && imported.contains("OpenSSL_version_num"), "{imported:?}");
    let listed: BTreeSet<String> = OPENSSL_IMPORTS.iter().map(|i| i.name.to_owned()).collect();
    let missing: Vec<&String> = imported.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "the library imports OpenSSL functions that src/host.rs's openssl_imports! list lacks: {missing:?}; \
         add each with its library (Ssl or Crypto), so the guard checks where it resolves"
    );
    // The list is exactly the imports: its own entries make the library import them, so an
    // entry no longer used elsewhere still shows up here, and a name listed twice would too.
    assert_eq!(listed.len(), OPENSSL_IMPORTS.len(), "a name is listed twice");
    assert_eq!(listed, imported);
}

#[test]
fn each_listed_function_is_defined_by_its_library() {
    // The files this process's libssl and libcrypto were loaded from (the test binary links
    // the same OpenSSL as the cdylib).
    let facts = host::facts();
    let file_of = |name: &str| {
        let b = facts.bindings.iter().find(|b| b.name == name).unwrap();
        PathBuf::from(&b.object.as_ref().expect("dladdr knows SSL_new and OpenSSL_version_num").file)
    };
    let defined = |file: &Path| -> BTreeSet<String> {
        nm("--defined-only", file)
            .iter()
            .filter_map(|l| l.split_whitespace().nth(2))
            .map(|s| s.split('@').next().unwrap().to_owned())
            .collect()
    };
    let ssl = defined(&file_of("SSL_new"));
    let crypto = defined(&file_of("OpenSSL_version_num"));
    for i in OPENSSL_IMPORTS {
        let (mine, other) = match i.lib {
            Lib::Ssl => (&ssl, &crypto),
            Lib::Crypto => (&crypto, &ssl),
        };
        assert!(mine.contains(i.name), "{} is listed as {:?} but that library does not define it", i.name, i.lib);
        assert!(!other.contains(i.name), "{} is defined by both libraries", i.name);
    }
}
