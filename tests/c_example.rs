//! Builds `tests/c/` with `cc -std=c11 -Wall -Wextra -Werror -Wpedantic` against
//! `include/`, links it to the built shared library and runs it: C modules can use us.
//! Fails loudly when there is no C compiler (the README's test command installs one).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// target/<profile>, where cargo put the cdylib next to this test's deps/ folder.
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>").to_path_buf()
}

#[test]
fn c_program_drives_a_handshake_through_every_function() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = lib_dir();
    assert!(lib.join("libresty_client_tls.so").exists(), "no libresty_client_tls.so in {}", lib.display());
    let tmp = std::env::temp_dir().join(format!("rctls-c-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();

    let pki = Pki::new();
    let write = |name: &str, bytes: Vec<u8>| {
        let p = tmp.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let key_pem = |c: &Cert| c.key.private_key_to_pem_pkcs8().unwrap();
    let args = [
        write("server.pem", pki.server.cert.to_pem().unwrap()),
        write("server.key", key_pem(&pki.server)),
        write("client.pem", pki.leaf.cert.to_pem().unwrap()),
        write("client.key", key_pem(&pki.leaf)),
        write("int.pem", pki.int.cert.to_pem().unwrap()),
        write("root.pem", pki.root.cert.to_pem().unwrap()),
        write("expected.pem", concat(&[&pki.leaf.cert, &pki.int.cert]).into_bytes()),
    ];

    let exe = tmp.join("example");
    let out = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-Wpedantic", "-o"])
        .arg(&exe)
        .arg(root.join("tests/c/example.c"))
        .arg(root.join("tests/c/header_alone.c"))
        .arg("-I")
        .arg(root.join("include"))
        .arg("-L")
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-lresty_client_tls", "-lssl", "-lcrypto"])
        .output()
        .expect("cc must be installed: the README's test command installs build-essential");
    assert!(out.status.success(), "cc failed:\n{}", String::from_utf8_lossy(&out.stderr));

    let run = Command::new(&exe).args(&args).output().unwrap();
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(
        run.status.success(),
        "C example failed:\n{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(String::from_utf8_lossy(&run.stdout).contains("all checks passed"));
}
