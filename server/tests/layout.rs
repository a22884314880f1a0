//! The code's shape, checked: what ARCHITECTURE.md promises a newcomer stays true. Reads the
//! source files only; no engine, no binary.

use std::fs;
use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 500;
const MAX_FN_LINES: usize = 80;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.rs` file under `dir`, as a path relative to the repository's root.
fn sources(dir: &str) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).expect("a source folder") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(&root().join(dir), &mut paths);
    let mut files: Vec<String> = paths
        .iter()
        .map(|p| {
            p.strip_prefix(root())
                .expect("under the root")
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    files.sort();
    files
}

fn all_sources() -> Vec<String> {
    let mut files = sources("server/src");
    files.extend(sources("app/src"));
    files
}

/// The file's code before its unit tests.
fn code(file: &str) -> String {
    let text = fs::read_to_string(root().join(file)).expect("a readable source file");
    match text.find("#[cfg(test)]") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// Each function's name and length in lines, found by its braces (good enough for this
/// code: braces in strings come in pairs).
fn functions(code: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut found = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let Some(name) = fn_name(line) else { continue };
        let mut depth = 0i32;
        let mut opened = false;
        for (i, l) in lines[start..].iter().enumerate() {
            for c in l.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    ';' if !opened && depth == 0 => break,
                    _ => {}
                }
            }
            if (opened && depth <= 0) || (!opened && l.trim_end().ends_with(';')) {
                found.push((name.clone(), i + 1));
                break;
            }
        }
    }
    found
}

fn fn_name(line: &str) -> Option<String> {
    let t = line.trim_start();
    if t.starts_with("//") {
        return None;
    }
    let at = t.find("fn ")?;
    let before = &t[..at];
    let qualifiers = [
        "pub",
        "pub(crate)",
        "pub(super)",
        "async",
        "const",
        "unsafe",
    ];
    if !before.split_whitespace().all(|w| qualifiers.contains(&w)) {
        return None;
    }
    let name: String = t[at + 3..]
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

#[test]
fn no_source_file_is_over_500_lines_before_its_tests() {
    let long: Vec<String> = all_sources()
        .into_iter()
        .filter_map(|f| {
            let n = code(&f).lines().count();
            (n > MAX_FILE_LINES).then(|| format!("{f}: {n} lines"))
        })
        .collect();
    assert!(long.is_empty(), "over {MAX_FILE_LINES} lines: {long:#?}");
}

#[test]
fn no_function_is_over_80_lines() {
    let mut long = Vec::new();
    for f in all_sources() {
        for (name, n) in functions(&code(&f)) {
            if n > MAX_FN_LINES {
                long.push(format!("{f}: fn {name}: {n} lines"));
            }
        }
    }
    assert!(long.is_empty(), "over {MAX_FN_LINES} lines: {long:#?}");
}

#[test]
fn the_function_counter_sees_a_long_function() {
    let body = "    let x = 1;\n".repeat(90);
    let src = format!("pub async fn long() {{\n{body}}}\nfn short() {{}}\nfn decl();\n");
    let found = functions(&src);
    assert_eq!(found[0], ("long".to_owned(), 92));
    assert_eq!(found[1], ("short".to_owned(), 1));
    assert_eq!(found[2], ("decl".to_owned(), 1));
}

#[test]
fn only_the_docker_folder_talks_to_the_engine() {
    let outside: Vec<String> = sources("server/src")
        .into_iter()
        .filter(|f| !f.starts_with("server/src/docker/"))
        .filter(|f| {
            fs::read_to_string(root().join(f))
                .expect("readable")
                .contains("bollard")
        })
        .collect();
    assert!(
        outside.is_empty(),
        "bollard used outside docker/: {outside:?}"
    );
}

#[test]
fn no_module_reaches_back_up_to_the_whole_app_state() {
    let users: Vec<String> = sources("server/src")
        .into_iter()
        .filter(|f| !f.ends_with("/state.rs") && !f.ends_with("/serve.rs"))
        .filter(|f| code(f).contains("AppState"))
        .collect();
    assert!(users.is_empty(), "take a sub-state instead: {users:?}");
}

#[test]
fn architecture_md_maps_every_source_file_and_only_files_that_exist() {
    let map = fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let unmapped: Vec<String> = all_sources()
        .into_iter()
        .filter(|f| !map.contains(&format!("`{f}`")))
        .collect();
    assert!(
        unmapped.is_empty(),
        "ARCHITECTURE.md names no `path` for: {unmapped:#?}"
    );
    let named: Vec<&str> = map
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| (s.starts_with("server/") || s.starts_with("app/")) && s.ends_with(".rs"))
        .collect();
    let gone: Vec<&&str> = named.iter().filter(|f| !root().join(f).exists()).collect();
    assert!(
        gone.is_empty(),
        "ARCHITECTURE.md names files that do not exist: {gone:?}"
    );
}
