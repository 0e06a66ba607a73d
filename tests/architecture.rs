//! The library's top-level modules depend on each other without loops: each
//! `crate::NAME` path in `src/MODULE/**` (or `src/MODULE.rs`) is an edge from
//! MODULE to NAME, and the graph of those edges must have no cycle. A loop
//! means two modules that can only be understood together; the failure names
//! the cycle and the files behind each of its edges.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `text` without `//` comments (doc comments included: a link to another
/// module in prose is no dependency).
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The identifier at the start of `s`.
fn ident(s: &str) -> &str {
    let end = s.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(s.len());
    &s[..end]
}

/// The top-level names a file's code reaches through `crate::`: `crate::a::b`
/// gives `a`, `crate::{a, b::{c, d}}` gives `a` and `b`.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `somecrate::` is another path
        }
        if let Some(group) = rest.strip_prefix('{') {
            // The names at depth 0 of the group.
            let mut depth = 0;
            let mut start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && !c.is_whitespace() => {
                        start = false;
                        let name = ident(&group[i..]);
                        if !name.is_empty() {
                            names.insert(name.to_string());
                        }
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                names.insert(name.to_string());
            }
        }
    }
    names
}

/// A cycle through `node` in `edges`, if any: the path from `node` back to it.
fn cycle_from(node: &str, edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn walk(
        at: &str,
        goal: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        seen: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> bool {
        for next in edges.get(at).into_iter().flatten() {
            if next == goal {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(next, goal, edges, seen, path) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![node.to_string()];
    walk(node, node, edges, &mut BTreeSet::new(), &mut path).then_some(path)
}

#[test]
fn top_level_modules_have_no_import_loops() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    // The top-level modules: src/NAME.rs and src/NAME/.
    let modules: BTreeSet<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|m| m != "lib" && m != "bin")
        .collect();
    assert!(modules.len() > 5, "the modules of {}: {modules:?}", src.display());
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut behind: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel.components().next().unwrap().as_os_str().to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if !modules.contains(&module) {
            continue; // lib.rs and the binary sit on top of everything
        }
        let code = without_comments(&std::fs::read_to_string(file).unwrap());
        for name in crate_paths(&code) {
            if name != module && modules.contains(&name) {
                edges.entry(module.clone()).or_default().insert(name.clone());
                behind
                    .entry((module.clone(), name))
                    .or_default()
                    .insert(rel.display().to_string());
            }
        }
    }
    for module in &modules {
        if let Some(cycle) = cycle_from(module, &edges) {
            let steps: Vec<String> = cycle
                .windows(2)
                .map(|w| {
                    let files = &behind[&(w[0].clone(), w[1].clone())];
                    format!(
                        "  {} -> {} ({})",
                        w[0],
                        w[1],
                        files.iter().cloned().collect::<Vec<_>>().join(", ")
                    )
                })
                .collect();
            panic!(
                "an import loop between top-level modules: {}\n{}",
                cycle.join(" -> "),
                steps.join("\n")
            );
        }
    }
}

#[test]
fn the_path_reader_sees_single_paths_and_groups() {
    let code = "use crate::gpu::{Gpu, CHUNK};\nuse crate::{arena::Arena, optim::{Kind, spec}};\nlet x = crate::nap::MIN_NORM; mycrate::other;";
    let names: Vec<String> = crate_paths(code).into_iter().collect();
    assert_eq!(names, ["arena", "gpu", "nap", "optim"]);
    let mut edges = BTreeMap::new();
    edges.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    edges.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    assert_eq!(cycle_from("a", &edges), None);
    edges.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(
        cycle_from("a", &edges),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}
