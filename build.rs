//! Build script: OpenSSL version cfgs for `src/sys.rs`, the cbindgen header into
//! `$OUT_DIR` (never into the source tree: `tests/header.rs` compares it with the
//! committed `include/resty_client_tls.h`), and `-z nodelete` for the cdylib.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo::rustc-check-cfg=cfg(rctls_ossl300)");

    // openssl-sys (links = "openssl") exports the version it built against.
    if let Ok(v) = env::var("DEP_OPENSSL_VERSION_NUMBER") {
        let n = u64::from_str_radix(&v, 16).unwrap_or(0);
        if n >= 0x3000_0000 {
            println!("cargo:rustc-cfg=rctls_ossl300");
        }
        // For the OpenSSL-copy guard (src/host.rs): the series the library is compiled
        // against, compared with OpenSSL_version_num() at run time.
        println!("cargo:rustc-env=RESTY_CLIENT_TLS_OPENSSL_VERSION_NUMBER={n:x}");
    }

    // The verify callback and the ex_data free function live in this library and are
    // installed into nginx's SSL objects: it must never be unmapped, even if LuaJIT
    // collects the clib namespace that loaded it (lj_clib_unload -> dlclose).
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");

    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets it")).join("resty_client_tls.h");
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml is readable");
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header")
        .write_to_file(out);
}
