//! The crate's modules depend on each other in one direction only, from
//! the top (`server`) down to `util` (see `src/lib.rs`). This test reads
//! every source file and fails on any `crate::<module>` reference that
//! points up or sideways, which also rules out import cycles.
//!
//! Run it alone with `cargo test --test layering`.

use std::fs;
use std::path::{Path, PathBuf};

/// Top-level modules, lowest first. A module may use the ones before it;
/// modules on one line are peers and may not use each other.
const LAYERS: &[&[&str]] = &[
    &["util"],
    &["config"],
    &["crypto", "web", "ops"],
    &["docusign"],
    &["session"],
    &["auth", "webhook"],
    &["proxy"],
    &["server"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable source dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every module named right after `crate::` in `text`.
fn crate_refs(text: &str) -> Vec<String> {
    let mut refs = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        // `crate::{a, b}` would hide its modules from this check.
        assert!(
            !after.starts_with('{'),
            "grouped crate:: imports are not allowed"
        );
        refs.push(name);
        rest = after;
    }
    refs
}

#[test]
fn dependencies_point_down_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    let mut checked = 0;
    for (module, files) in LAYERS.iter().flat_map(|l| l.iter()).map(|m| {
        let mut files = Vec::new();
        rust_files(&src.join(m), &mut files);
        (*m, files)
    }) {
        assert!(!files.is_empty(), "src/{module}/ has no source files");
        let own = layer_of(module).unwrap();
        for file in files {
            let text = fs::read_to_string(&file).expect("readable source file");
            for target in crate_refs(&text) {
                checked += 1;
                if target == module {
                    continue;
                }
                match layer_of(&target) {
                    Some(l) if l < own => {}
                    _ => violations.push(format!(
                        "{} ({module}) uses crate::{target}",
                        file.strip_prefix(&src).unwrap().display()
                    )),
                }
            }
        }
    }
    assert!(checked > 50, "the check found only {checked} references");
    assert!(
        violations.is_empty(),
        "dependencies that point up or sideways:\n{}",
        violations.join("\n")
    );
}

#[test]
fn every_module_is_placed_in_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = fs::read_to_string(src.join("lib.rs")).unwrap();
    for line in lib.lines() {
        if let Some(name) = line
            .strip_prefix("pub mod ")
            .and_then(|l| l.strip_suffix(';'))
        {
            assert!(
                layer_of(name).is_some(),
                "module {name} is in no layer of tests/layering.rs"
            );
        }
    }
}

#[test]
fn the_check_sees_a_violation() {
    let refs = crate_refs("use crate::proxy::Gateway;\nlet x = crate::util::time::now_unix();");
    assert_eq!(refs, ["proxy", "util"]);
}
