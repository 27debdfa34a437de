//! The committed header must be exactly what cbindgen generates from the source.

const GENERATED: &str = include_str!(concat!(env!("OUT_DIR"), "/resty_client_tls.h"));
const COMMITTED: &str = "include/resty_client_tls.h";

#[test]
fn committed_header_matches_cbindgen() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(COMMITTED);
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, GENERATED).expect("write the header");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == GENERATED,
        "{COMMITTED} differs from what cbindgen generates: run `BLESS=1 cargo test --test header` and commit it"
    );
}

#[test]
fn lua_cdef_declares_every_export_with_the_same_arity() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let lua = std::fs::read_to_string(root.join("lua-bindings/resty/client_tls.lua")).expect("the Lua module");
    let mut checked = 0;
    for decl in GENERATED.split(';') {
        // The declared function: the last `resty_client_tls_<identifier>(` of the segment
        // (doc comments before it may name other functions, without a parenthesis).
        let Some((at, open)) = decl
            .match_indices("resty_client_tls_")
            .filter_map(|(at, _)| {
                let len = decl[at..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
                decl[at + len..].starts_with('(').then_some((at, len))
            })
            .last()
        else {
            continue;
        };
        let name = &decl[at..at + open];
        let arity = decl[at..].matches(',').count() + 1;
        let lua_decl = lua
            .find(&format!("{name}("))
            .map(|i| &lua[i..i + lua[i..].find(')').expect("closing parenthesis")])
            .unwrap_or_else(|| panic!("{name} is not declared in client_tls.lua"));
        assert_eq!(lua_decl.matches(',').count() + 1, arity, "{name}: parameter count differs in client_tls.lua");
        checked += 1;
    }
    assert!(checked >= 6, "found only {checked} exports in the header");
}

#[test]
fn header_declares_only_our_own_functions() {
    for line in GENERATED.lines() {
        let decl = line.trim_start_matches("extern ");
        if decl.ends_with(");") && !decl.starts_with(' ') && !decl.starts_with('#') {
            assert!(
                decl.contains(" resty_client_tls_") || decl.contains("*resty_client_tls_"),
                "foreign declaration: {line}"
            );
        }
    }
}
