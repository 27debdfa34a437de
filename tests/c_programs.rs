//! Builds the C programs of `tests/c/` with `cc -std=c11 -Wall -Wextra -Werror -Wpedantic`
//! against `include/`, links them to the built shared library and runs them: C modules can
//! use us, and per-connection CA lists survive every abuse under valgrind. Fails loudly
//! when `cc` or `valgrind` is missing (the README's test command installs both).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use openssl::x509::X509;

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("rctls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn lib_dir() -> PathBuf {
    // target/<profile>/deps/: `cargo test` refreshes the cdylib there, beside this test;
    // target/<profile>/ itself is refreshed only by `cargo build`.
    let exe = std::env::current_exe().unwrap();
    exe.parent().expect("target/<profile>/deps/<test>").to_path_buf()
}

/// Compiles `sources` (under tests/c/) into `out`, linked to the library.
fn compile(sources: &[&str], out: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = lib_dir();
    assert!(lib.join("libresty_client_tls.so").exists(), "no libresty_client_tls.so in {}", lib.display());
    let result = Command::new("cc")
        .args(["-std=c11", "-g", "-Wall", "-Wextra", "-Werror", "-Wpedantic", "-o"])
        .arg(out)
        .args(sources.iter().map(|s| root.join("tests/c").join(s)))
        .arg("-I")
        .arg(root.join("include"))
        .arg("-L")
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-lresty_client_tls", "-lssl", "-lcrypto"])
        .output()
        .expect("cc must be installed: the README's test command installs build-essential");
    assert!(result.status.success(), "cc failed:\n{}", String::from_utf8_lossy(&result.stderr));
}

fn report(run: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr))
}

fn pems(certs: &[&X509]) -> Vec<u8> {
    certs.iter().flat_map(|c| c.to_pem().unwrap()).collect()
}

#[test]
fn c_program_drives_a_handshake_through_every_function() {
    let tmp = Scratch::new("c-example");
    let pki = Pki::new();
    let key_pem = |c: &Cert| c.key.private_key_to_pem_pkcs8().unwrap();
    let args = [
        tmp.write("server.pem", pki.server.cert.to_pem().unwrap()),
        tmp.write("server.key", key_pem(&pki.server)),
        tmp.write("client.pem", pki.leaf.cert.to_pem().unwrap()),
        tmp.write("client.key", key_pem(&pki.leaf)),
        tmp.write("int.pem", pki.int.cert.to_pem().unwrap()),
        tmp.write("root.pem", pki.root.cert.to_pem().unwrap()),
        tmp.write("expected.pem", concat(&[&pki.leaf.cert, &pki.int.cert])),
    ];
    let exe = tmp.0.join("example");
    compile(&["example.c", "header_alone.c"], &exe);
    let run = Command::new(&exe).args(&args).output().unwrap();
    assert!(run.status.success(), "C example failed:\n{}", report(&run));
    assert!(String::from_utf8_lossy(&run.stdout).contains("all checks passed"));
}

#[test]
fn ca_lists_survive_every_abuse_under_valgrind() {
    let tmp = Scratch::new("c-ca-abuse");
    let key = ec_key();
    let many: Vec<X509> = (0..100).map(|i| issue(&name(&format!("Abuse CA {i}")), &key, None, true, -1, 1)).collect();
    let few: Vec<X509> = (0..10).map(|i| issue(&name(&format!("Other CA {i}")), &key, None, true, -1, 1)).collect();
    let many = tmp.write("many.pem", pems(&many.iter().collect::<Vec<_>>()));
    let few = tmp.write("few.pem", pems(&few.iter().collect::<Vec<_>>()));
    let exe = tmp.0.join("ca_list_abuse");
    compile(&["ca_list_abuse.c"], &exe);
    let run = Command::new("valgrind")
        .args(["-q", "--error-exitcode=9", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect"])
        .args(["--show-leak-kinds=definite,indirect"])
        .arg(&exe)
        .arg(&many)
        .arg(&few)
        .output()
        .expect("valgrind must be installed: the README's test command installs it");
    assert!(run.status.success(), "CA list abuse test failed under valgrind:\n{}", report(&run));
    assert!(String::from_utf8_lossy(&run.stdout).contains("ca list abuse test OK"), "{}", report(&run));
}
