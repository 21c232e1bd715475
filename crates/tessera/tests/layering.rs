//! Layering: no import cycle between the project's source files, and the stored records in a
//! leaf of the core.
//!
//! Reads every `crates/*/src/**/*.rs`, maps each `crate::…` and `super::…` path (in `use`
//! items and in code; outside comments, strings and `#[cfg(test)]` items) to the file that
//! defines it (following `pub use` re-exports), and fails naming every cycle of files that
//! import one another. A parent module naming its own children by relative path (a table
//! listing its rows, a `pub use` of a child) is not an import: the children are its parts.
//! Other crates are not followed: Cargo already forbids cycles between crates.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path inside a crate: `[]` for the crate root.
type ModPath = Vec<String>;

/// One source file.
struct File {
    /// Relative to the workspace root, for messages.
    name: String,
    /// Absolute paths (from the crate root) the file names with `crate::` or `super::`.
    paths: Vec<ModPath>,
    /// What its `pub use` items re-export: the public name and the absolute path it stands
    /// for (relative `pub use` paths included).
    reexports: BTreeMap<String, ModPath>,
}

/// The files of one crate, by module path.
struct Crate {
    files: BTreeMap<ModPath, File>,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

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

/// The module path of a file under `src`.
fn module_path(src: &Path, file: &Path) -> ModPath {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    match last.as_str() {
        "mod.rs" => {}
        "lib.rs" | "main.rs" if parts.is_empty() => {}
        other => parts.push(other.trim_end_matches(".rs").to_owned()),
    }
    parts
}

/// The source with comments, string and character literals blanked out (newlines kept).
fn strip(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_before(&b, i) {
            // A raw string: r"…", r#"…"#, …
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                blank(&mut out, b[j]);
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                }
                if let Some(&ch) = b.get(i) {
                    blank(&mut out, ch);
                }
                i += 1;
            }
            out.push_str("\"\"");
            i += 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{1F600}') or a lifetime ('a).
            if next == Some('\\') {
                let mut j = i + 2;
                while j < b.len() && b[j] != '\'' {
                    j += 1;
                }
                out.push_str("' '");
                i = j + 1;
            } else if b.get(i + 2) == Some(&'\'') {
                out.push_str("' '");
                i += 3;
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(b: &[char], i: usize) -> bool {
    i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_')
}

/// Tokens: identifiers, `::`, and single punctuation characters.
fn tokens(src: &str) -> Vec<String> {
    let b: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_') {
                i += 1;
            }
            out.push(b[start..i].iter().collect());
        } else if c == ':' && b.get(i + 1) == Some(&':') {
            out.push("::".to_owned());
            i += 2;
        } else if c.is_whitespace() {
            i += 1;
        } else {
            out.push(c.to_string());
            i += 1;
        }
    }
    out
}

/// Removes every item marked `#[cfg(test)]` (a `mod tests { … }`, a `use`, a function).
fn without_test_items(toks: Vec<String>) -> Vec<String> {
    let is_cfg_test = |t: &[String], i: usize| {
        t.get(i..i + 7)
            .is_some_and(|w| w.join("") == "#[cfg(test)]")
    };
    let mut out = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        if !is_cfg_test(&toks, i) {
            out.push(toks[i].clone());
            i += 1;
            continue;
        }
        i += 7;
        // The item: up to its `;` or through its matching `}`.
        let mut depth = 0usize;
        while i < toks.len() {
            let t = toks[i].as_str();
            i += 1;
            match t {
                "{" => depth += 1,
                "}" => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                ";" if depth == 0 => break,
                _ => {}
            }
        }
    }
    out
}

fn is_ident(t: &str) -> bool {
    t.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// Parses a use tree or path starting at `toks[i]`, whose first segments are already
/// resolved to `prefix`. Pushes each full path (and its name in scope, for re-exports).
fn parse_tree(
    toks: &[String],
    mut i: usize,
    prefix: ModPath,
    out: &mut Vec<(ModPath, Option<String>)>,
) -> usize {
    let mut path = prefix;
    loop {
        match toks.get(i).map(String::as_str) {
            Some("{") => {
                i += 1;
                loop {
                    match toks.get(i).map(String::as_str) {
                        Some("}") => return i + 1,
                        Some(",") => i += 1,
                        None => return i,
                        _ => i = parse_tree(toks, i, path.clone(), out),
                    }
                }
            }
            Some("*") => {
                out.push((path, None));
                return i + 1;
            }
            Some("self") if !path.is_empty() => {
                i += 1;
            }
            Some(t) if is_ident(t) => {
                path.push(t.to_owned());
                i += 1;
                if toks.get(i).map(String::as_str) == Some("::") {
                    i += 1;
                    continue;
                }
                let mut name = path.last().cloned();
                if toks.get(i).map(String::as_str) == Some("as") {
                    name = toks.get(i + 1).cloned();
                    i += 2;
                }
                out.push((path, name));
                return i;
            }
            _ => {
                out.push((path, None));
                return i;
            }
        }
    }
}

/// The paths a file names, resolved from the crate root, and its re-exports.
fn read_file(
    module: &ModPath,
    text: &str,
    modules: &BTreeSet<ModPath>,
) -> (Vec<ModPath>, BTreeMap<String, ModPath>) {
    let toks = without_test_items(tokens(&strip(text)));
    let mut paths = Vec::new();
    let mut reexports = BTreeMap::new();
    // Inline modules (`mod name { … }`) open at brace depths.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i].as_str();
        match t {
            "{" => depth += 1,
            "}" => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            "mod" if toks.get(i + 2).map(String::as_str) == Some("{") => {
                inline.push((toks[i + 1].clone(), depth));
            }
            _ => {}
        }
        let here: ModPath = module
            .iter()
            .cloned()
            .chain(inline.iter().map(|(n, _)| n.clone()))
            .collect();
        let prev = i.checked_sub(1).map(|p| toks[p].as_str());
        let is_pub_use = t == "use" && matches!(prev, Some("pub") | Some(")"));
        if t == "use" && is_pub_use {
            // A re-export: relative paths count here (not as imports).
            let mut found = Vec::new();
            let start = i + 1;
            let first = toks.get(start).map(String::as_str);
            let prefix = match first {
                Some("crate") | Some("super") | Some("self") => None,
                Some(f) if modules.contains(&[here.clone(), vec![f.to_owned()]].concat()) => {
                    Some(here.clone())
                }
                _ => None,
            };
            if let Some(prefix) = prefix {
                parse_tree(&toks, start, prefix, &mut found);
                for (path, name) in found {
                    if let Some(name) = name {
                        reexports.insert(name, path);
                    }
                }
            }
        }
        let starts_path = (t == "crate" || t == "super")
            && toks.get(i + 1).map(String::as_str) == Some("::")
            && prev != Some("$")
            && prev != Some("::");
        if !starts_path {
            i += 1;
            continue;
        }
        let mut base = if t == "crate" {
            Vec::new()
        } else {
            here.clone()
        };
        let mut j = i;
        while toks.get(j).map(String::as_str) == Some("super")
            && toks.get(j + 1).map(String::as_str) == Some("::")
        {
            base.pop();
            j += 2;
        }
        if t == "crate" {
            j = i + 2;
        }
        let mut found = Vec::new();
        let end = parse_tree(&toks, j, base, &mut found);
        for (path, name) in found {
            if is_pub_use {
                if let Some(name) = name {
                    reexports.insert(name, path.clone());
                }
            }
            paths.push(path);
        }
        i = end.max(i + 1);
    }
    (paths, reexports)
}

fn read_crate(root: &Path, dir: &Path) -> Crate {
    let src = dir.join("src");
    let mut list = Vec::new();
    rust_files(&src, &mut list);
    let modules: BTreeSet<ModPath> = list.iter().map(|f| module_path(&src, f)).collect();
    let mut files = BTreeMap::new();
    for f in list {
        let module = module_path(&src, &f);
        let text = std::fs::read_to_string(&f).unwrap();
        let (paths, reexports) = read_file(&module, &text, &modules);
        let name = f.strip_prefix(root).unwrap().display().to_string();
        files.insert(
            module,
            File {
                name,
                paths,
                reexports,
            },
        );
    }
    Crate { files }
}

impl Crate {
    /// The file defining what `path` names: the longest module prefix, through re-exports.
    fn resolve(&self, path: &[String], hops: usize) -> &ModPath {
        let mut n = path.len();
        loop {
            let prefix = &path[..n];
            if let Some((key, file)) = self.files.get_key_value(prefix) {
                if hops < 8 {
                    if let Some(next) = path.get(n).and_then(|name| file.reexports.get(name)) {
                        let mut target = next.clone();
                        target.extend(path[n + 1..].iter().cloned());
                        return self.resolve(&target, hops + 1);
                    }
                }
                return key;
            }
            n -= 1;
        }
    }

    /// File-to-file imports.
    fn edges(&self) -> BTreeMap<&ModPath, BTreeSet<&ModPath>> {
        let mut edges: BTreeMap<&ModPath, BTreeSet<&ModPath>> = BTreeMap::new();
        for (module, file) in &self.files {
            let set = edges.entry(module).or_default();
            for path in &file.paths {
                let target = self.resolve(path, 0);
                if target != module {
                    set.insert(target);
                }
            }
        }
        edges
    }

    fn name(&self, module: &ModPath) -> &str {
        &self.files[module].name
    }
}

/// Strongly connected components of more than one file (Tarjan).
fn cycles<'a>(edges: &BTreeMap<&'a ModPath, BTreeSet<&'a ModPath>>) -> Vec<Vec<&'a ModPath>> {
    struct State<'a> {
        index: BTreeMap<&'a ModPath, usize>,
        low: BTreeMap<&'a ModPath, usize>,
        stack: Vec<&'a ModPath>,
        on_stack: BTreeSet<&'a ModPath>,
        out: Vec<Vec<&'a ModPath>>,
    }
    fn visit<'a>(
        v: &'a ModPath,
        edges: &BTreeMap<&'a ModPath, BTreeSet<&'a ModPath>>,
        s: &mut State<'a>,
    ) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for &w in edges.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(w, edges, s);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut scc = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on_stack.remove(w);
                scc.push(w);
                if w == v {
                    break;
                }
            }
            if scc.len() > 1 {
                scc.sort();
                s.out.push(scc);
            }
        }
    }
    let mut s = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for &v in edges.keys() {
        if !s.index.contains_key(v) {
            visit(v, edges, &mut s);
        }
    }
    s.out
}

/// One cycle through `start` inside a strongly connected component, for the message.
fn one_cycle<'a>(
    start: &'a ModPath,
    scc: &[&'a ModPath],
    edges: &BTreeMap<&'a ModPath, BTreeSet<&'a ModPath>>,
) -> Vec<&'a ModPath> {
    let mut prev: BTreeMap<&ModPath, &ModPath> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for &w in edges.get(v).into_iter().flatten() {
            if !scc.contains(&w) {
                continue;
            }
            if w == start {
                let mut path = vec![v];
                let mut at = v;
                while at != start {
                    at = prev[at];
                    path.push(at);
                }
                path.reverse();
                path.push(start);
                return path;
            }
            if !prev.contains_key(w) {
                prev.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    vec![start]
}

fn crates() -> Vec<(String, Crate)> {
    let root = workspace_root();
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("src").is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        out.push((name, read_crate(&root, &dir)));
    }
    out
}

/// Cycles allowed, by crate and file stems: none.
const ALLOWED: &[(&str, &[&str])] = &[];

#[test]
fn no_import_cycle_between_the_project_files() {
    let mut failures = Vec::new();
    let all = crates();
    assert!(all.len() >= 5, "the crates were not found");
    for (name, krate) in &all {
        assert!(krate.files.len() > 1, "{name}: no sources read");
        let edges = krate.edges();
        for scc in cycles(&edges) {
            let stems: Vec<String> = scc.iter().map(|m| m.join("::")).collect();
            let allowed = ALLOWED.iter().any(|(c, files)| {
                c == name
                    && files.len() == stems.len()
                    && files.iter().all(|f| stems.contains(&(*f).to_owned()))
            });
            let cycle = one_cycle(scc[0], &scc, &edges);
            let shown: Vec<&str> = cycle.iter().map(|m| krate.name(m)).collect();
            let line = format!(
                "{name}: {} files import one another ({}), e.g. {}",
                scc.len(),
                stems.join(", "),
                shown.join(" -> ")
            );
            if allowed {
                eprintln!("allowed, {line}");
            } else {
                failures.push(line);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "import cycles:\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_stored_records_import_only_leaves() {
    let all = crates();
    let (_, core) = all.iter().find(|(n, _)| n == "tessera-core").unwrap();
    let edges = core.edges();
    let model = vec!["model".to_owned()];
    assert!(core.files.contains_key(&model), "no model.rs");
    // A leaf imports nothing from the crate, or only files that import nothing.
    let imports_nothing = |m: &ModPath| edges.get(m).is_none_or(BTreeSet::is_empty);
    let mut wrong = Vec::new();
    for &dep in &edges[&model] {
        let deeper: Vec<&str> = edges[dep]
            .iter()
            .filter(|d| !imports_nothing(d))
            .map(|d| core.name(d))
            .collect();
        if !deeper.is_empty() {
            wrong.push(format!(
                "{} (which imports {})",
                core.name(dep),
                deeper.join(", ")
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "model.rs imports what is not a leaf: {}",
        wrong.join("; ")
    );
}

#[test]
fn the_reader_sees_imports_and_ignores_comments_strings_and_tests() {
    let modules: BTreeSet<ModPath> = [
        vec![],
        vec!["a".to_owned()],
        vec!["b".to_owned()],
        vec!["b".to_owned(), "c".to_owned()],
    ]
    .into_iter()
    .collect();
    let text = r##"
        //! See [`crate::z`].
        use crate::a::{self, X, y::{Z as W}};
        pub use c::Thing;
        mod inner { use super::super::q::R; }
        fn f() { let s = "crate::no"; let r = r#"crate::nor"#; let c = '"'; crate::b::go(); }
        /* crate::nope */
        #[cfg(test)]
        mod tests { use crate::never; }
    "##;
    let (paths, reexports) = read_file(&vec!["b".to_owned()], text, &modules);
    let shown: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(shown, ["a", "a::X", "a::y::Z", "q::R", "b::go"]);
    assert_eq!(reexports["Thing"], vec!["b", "c", "Thing"]);
}
