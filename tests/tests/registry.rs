//! The conformance suite cannot silently skip a case: every `pub async fn`
//! in `src/cases/` must be registered in its module's `*_cases!` list (which
//! [`for_each_case!`](staunch_tests::for_each_case) hands to every runtime's
//! runner), and every registered name must be a declared case.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeSet;

/// `module::case` for every case the runners are given, read from the
/// macro lists themselves.
fn registered() -> Vec<&'static str> {
    let mut names = Vec::new();
    macro_rules! collect {
        ($(#[$attr:meta])* $module:ident :: $name:ident) => {
            names.push(concat!(stringify!($module), "::", stringify!($name)));
        };
    }
    staunch_tests::for_each_case!(collect);
    names
}

/// `module::case` for every `pub async fn` in the case files.
fn declared() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cases");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("src/cases is readable") {
        let path = entry.expect("a directory entry").path();
        let module = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        if module == "mod" || path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("a case file is readable");
        for line in source.lines() {
            if let Some(rest) = line.strip_prefix("pub async fn ") {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                names.push(format!("{module}::{name}"));
            }
        }
    }
    names
}

#[test]
fn every_declared_case_is_registered_once_and_every_registered_case_exists() {
    let registered = registered();
    let declared = declared();
    let registered_set: BTreeSet<&str> = registered.iter().copied().collect();
    let declared_set: BTreeSet<&str> = declared.iter().map(String::as_str).collect();
    assert_eq!(
        registered.len(),
        registered_set.len(),
        "a case is registered twice"
    );
    let missing: Vec<_> = declared_set.difference(&registered_set).collect();
    assert!(
        missing.is_empty(),
        "declared but never run (add them to the module's *_cases! list): {missing:?}"
    );
    let unknown: Vec<_> = registered_set.difference(&declared_set).collect();
    assert!(
        unknown.is_empty(),
        "registered but not declared: {unknown:?}"
    );
    assert!(declared.len() >= 100, "the case files were not found");
    println!(
        "{} conformance cases declared and registered",
        declared.len()
    );
}
