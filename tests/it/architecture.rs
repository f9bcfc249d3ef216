//! The crate's layering, as a test: every module of `src/` sits in one layer, and a module may
//! only name (`use crate::x`, or a `crate::x::…` path written inline, or `super::` climbing to
//! another module) modules of lower layers. An import that points up, or sideways to another
//! module of the same layer that is not on [`SIDEWAYS`], fails with the file and line. A second
//! test fails when one `const`/`static` is defined twice (same name, same value): shared
//! constants have one home.
//!
//! It reads source text, not a parsed crate: comment lines are dropped, and scanning a file stops
//! at its `#[cfg(test)]` (unit tests are not shipped). That is enough to catch the accidental
//! arrow that review misses; the layer table below is the rule, written down.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layers, top to bottom. A module may name modules of lower layers only.
const LAYERS: &[&[&str]] = &[
    &["cli"],
    &["train", "report", "submission", "pipeline"],
    &["run", "model"],
    &["download", "splits", "postprocess"],
    &["data", "engine", "prompt"],
    &["eval", "preprocess", "registry", "util"],
];

/// Arrows between two modules of one layer that are part of the design: (from, to, why).
const SIDEWAYS: &[(&str, &str, &str)] = &[];

/// A file's path relative to the crate root (`src/…`) and its text.
struct Source {
    path: String,
    text: String,
}

/// The files of `src/` (of another checkout with `ODINW_ARCH_ROOT`, e.g. to see an old tree's
/// arrows).
fn sources() -> Vec<Source> {
    let root = std::env::var_os("ODINW_ARCH_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let root = root.as_path();
    let mut paths = Vec::new();
    collect(&root.join("src"), &mut paths);
    assert!(
        paths.len() > 50,
        "found only {} files under src/",
        paths.len()
    );
    paths.sort();
    paths
        .into_iter()
        .map(|p| Source {
            path: p
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/"),
            text: std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display())),
        })
        .collect()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a file: `src/run/store.rs` → `[run, store]`, `src/run/mod.rs` → `[run]`,
/// `src/lib.rs` → `[]`.
fn module_path(path: &str) -> Vec<String> {
    let rel = path.trim_start_matches("src/").trim_end_matches(".rs");
    let mut parts: Vec<String> = rel.split('/').map(String::from).collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The shipped code of a file: comment lines blanked (line numbers kept), cut at `#[cfg(test)]`.
fn code(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            break;
        }
        out.push(if t.starts_with("//") {
            String::new()
        } else {
            line.to_string()
        });
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The top-level modules a line of code names through `crate::` (including every item of a
/// `crate::{a, b::c}` group, read on until its closing brace) and through `super::` chains,
/// resolved from `module` (the file's module path; `nested` when inside an inline `mod`).
fn targets(lines: &[String], at: usize, module: &[String], nested: bool) -> Vec<String> {
    let line = &lines[at];
    let mut out = Vec::new();
    for kw in ["crate::", "super::"] {
        let mut start = 0;
        while let Some(pos) = line[start..].find(kw) {
            let begin = start + pos;
            start = begin + kw.len();
            let before = &line[..begin];
            if before.chars().next_back().is_some_and(is_ident) || before.ends_with("super::") {
                continue; // part of a longer name, or of a `super::` chain counted at its start
            }
            let mut rest = &line[begin + kw.len()..];
            if kw == "super::" {
                let mut ups = 1;
                while let Some(r) = rest.strip_prefix("super::") {
                    ups += 1;
                    rest = r;
                }
                // Inside an inline `mod tests`, one `super::` is used by the nesting.
                let ups = ups - usize::from(nested);
                if ups > module.len() {
                    out.push("<above the crate>".into());
                    continue;
                }
                if ups == 0 || ups < module.len() {
                    // Still inside the file's own top-level module.
                    continue;
                }
                // Climbed to the crate root: `rest` names a top-level module, as after `crate::`.
            }
            if let Some(group) = rest.strip_prefix('{') {
                // Read the group, across lines if rustfmt split it.
                let mut text = group.to_string();
                let mut next = at + 1;
                while depth(&text) >= 0 && next < lines.len() {
                    text.push(' ');
                    text.push_str(&lines[next]);
                    next += 1;
                }
                out.extend(group_heads(&text));
            } else {
                let name: String = rest.chars().take_while(|c| is_ident(*c)).collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        }
    }
    out
}

/// Open braces minus closed ones, −1 once the group's own `}` is passed.
fn depth(text: &str) -> i32 {
    let mut d = 0;
    for c in text.chars() {
        match c {
            '{' => d += 1,
            '}' => {
                d -= 1;
                if d < 0 {
                    return -1;
                }
            }
            _ => {}
        }
    }
    d
}

/// The first identifier of each top-level item of a `{a::b, c, d::{e}}` group (text after `{`).
fn group_heads(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut d = 0;
    let mut expect = true;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' => d += 1,
            '}' if d == 0 => break,
            '}' => d -= 1,
            ',' if d == 0 => expect = true,
            c if expect && d == 0 && is_ident(c) => {
                let mut name = c.to_string();
                while let Some(&n) = chars.peek() {
                    if !is_ident(n) {
                        break;
                    }
                    name.push(n);
                    chars.next();
                }
                if name != "self" {
                    out.push(name);
                }
                expect = false;
            }
            _ => {}
        }
    }
    out
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// Every arrow from a module to a module of the same or a higher layer, as `path:line: text`.
fn violations(files: &[Source]) -> Vec<String> {
    let mut out = Vec::new();
    for f in files {
        let module = module_path(&f.path);
        let Some(from) = module.first() else {
            continue; // lib.rs declares the modules; main.rs calls cli
        };
        let Some(from_layer) = layer_of(from) else {
            out.push(format!(
                "{}: module {from} is not in the layer table",
                f.path
            ));
            continue;
        };
        let lines = code(&f.text);
        let mut nested = false;
        for (i, line) in lines.iter().enumerate() {
            if line.trim_start().starts_with("mod ") && line.trim_end().ends_with('{') {
                nested = true;
            }
            for to in targets(&lines, i, &module, nested) {
                if &to == from {
                    continue;
                }
                let bad = match layer_of(&to) {
                    None => !matches!(to.as_str(), "Result" | "Error"),
                    Some(l) if l < from_layer => true,
                    Some(l) if l == from_layer => {
                        !SIDEWAYS.iter().any(|(a, b, _)| a == from && *b == to)
                    }
                    Some(_) => false,
                };
                if bad {
                    out.push(format!(
                        "{}:{}: {from} → {to}: {}",
                        f.path,
                        i + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn imports_point_down_the_layer_table() {
    let found = violations(&sources());
    assert!(
        found.is_empty(),
        "imports that point up (or sideways) the layer table {LAYERS:?}:\n  {}\n\nMove the code \
         to the lowest layer that owns its job, or pass it in from above (a trait or a closure).",
        found.join("\n  ")
    );
}

/// `const NAME: T = VALUE;` and `static NAME: T = VALUE;` items (read across lines to the `;`),
/// as (name, value with whitespace removed) → where.
fn constants(files: &[Source]) -> BTreeMap<(String, String), Vec<String>> {
    let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for f in files {
        let lines = code(&f.text);
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            let t = t
                .strip_prefix("pub(crate) ")
                .or_else(|| t.strip_prefix("pub(super) "))
                .or_else(|| t.strip_prefix("pub "))
                .unwrap_or(t);
            let Some(decl) = t
                .strip_prefix("const ")
                .or_else(|| t.strip_prefix("static "))
            else {
                continue;
            };
            let name: String = decl.chars().take_while(|c| is_ident(*c)).collect();
            if name.is_empty() || name == "fn" || !decl[name.len()..].trim_start().starts_with(':')
            {
                continue; // `const fn`, `static ref`, ...
            }
            // The value: after the first `=`, up to the `;` outside brackets, across lines.
            let mut item = line.clone();
            let mut next = i + 1;
            let value = loop {
                if let Some((_, after)) = item.split_once('=') {
                    if let Some(v) = value_end(after) {
                        break Some(v);
                    }
                }
                if next >= lines.len() {
                    break None;
                }
                item.push_str(&lines[next]);
                next += 1;
            };
            let Some(value) = value else {
                continue;
            };
            // Whitespace and rustfmt's trailing commas do not make another value.
            let value: String = value.chars().filter(|c| !c.is_whitespace()).collect();
            let value = value
                .replace(",]", "]")
                .replace(",)", ")")
                .replace(",}", "}");
            out.entry((name, value))
                .or_default()
                .push(format!("{}:{}", f.path, i + 1));
        }
    }
    out
}

/// The text before the first `;` outside brackets and strings, if there is one.
fn value_end(text: &str) -> Option<&str> {
    let (mut d, mut in_str) = (0i32, false);
    for (i, c) in text.char_indices() {
        match c {
            '"' => in_str = !in_str,
            _ if in_str => {}
            '[' | '(' | '{' => d += 1,
            ']' | ')' | '}' => d -= 1,
            ';' if d == 0 => return Some(&text[..i]),
            _ => {}
        }
    }
    None
}

fn duplicates(files: &[Source]) -> Vec<String> {
    constants(files)
        .into_iter()
        .filter(|(_, at)| at.len() > 1)
        .map(|((name, _), at)| format!("{name} at {}", at.join(", ")))
        .collect()
}

#[test]
fn a_shared_constant_is_defined_once() {
    let found = duplicates(&sources());
    assert!(
        found.is_empty(),
        "constants defined twice with the same value (keep one, import it):\n  {}",
        found.join("\n  ")
    );
}

/// What only `cli/` (and `main.rs`) may use: printing to the terminal and drawing bars. The
/// library reports through `util::reporter::Reporter` and `download::progress::Bars`.
const PRINTING: &[&str] = &[
    "println!",
    "eprintln!",
    "print!",
    "eprint!",
    "dbg!",
    "indicatif",
    "io::stdout",
    "io::stderr",
];

/// `path:line: what` for every printing call in shipped library code.
fn prints(files: &[Source]) -> Vec<String> {
    let mut found = Vec::new();
    for f in files {
        if f.path.starts_with("src/cli/") || f.path == "src/main.rs" {
            continue;
        }
        for (i, line) in code(&f.text).iter().enumerate() {
            for what in PRINTING {
                let named = line.match_indices(what).any(|(at, _)| {
                    !line[..at].ends_with(|c: char| is_ident(c) || c == '.' && !what.contains("::"))
                });
                if named {
                    found.push(format!("{}:{}: {what}", f.path, i + 1));
                }
            }
        }
    }
    found
}

#[test]
fn library_code_never_prints() {
    let found = prints(&sources());
    assert!(
        found.is_empty(),
        "library code prints (report through util::reporter::Reporter instead):\n  {}",
        found.join("\n  ")
    );
}

/// The checks themselves: they see an up-import in each spelling, a twice-defined constant and
/// a print outside `cli/`.
#[test]
fn the_checks_catch_what_they_are_for() {
    let file = |path: &str, text: &str| Source {
        path: path.into(),
        text: text.into(),
    };
    let bad = [
        file("src/util/a.rs", "use crate::cli::Thing;\n"),
        file("src/run/b.rs", "fn f() { crate::report::write(); }\n"),
        file(
            "src/data/c.rs",
            "use crate::{\n    util::fs,\n    train::x,\n};\n",
        ),
        file("src/eval/h.rs", "use crate::util::fs;\n"),
        file("src/train/d.rs", "use crate::pipeline::detector;\n"),
        file("src/util/mod.rs", "use super::run::Store;\n"),
        file("src/prompt/e/f.rs", "use super::super::super::cli::X;\n"),
        file("src/newmod/g.rs", "use crate::util::fs;\n"),
    ];
    for f in &bad {
        let found = violations(std::slice::from_ref(f));
        assert_eq!(found.len(), 1, "{}: {found:?}", f.path);
    }
    let good = [
        file(
            "src/cli/a.rs",
            "use crate::run::Driver;\nuse super::args::X;\n",
        ),
        file(
            "src/run/b.rs",
            "use super::store::RunStore;\nuse crate::{eval::X, util};\n",
        ),
        file(
            "src/util/c.rs",
            "// use crate::cli::X;\n#[cfg(test)]\nuse crate::cli::Y;\n",
        ),
        file("src/run/d.rs", "mod tests {\n    use super::*;\n}\n"),
        file(
            "src/registry/mod.rs",
            "use self::task::Task;\nuse crate::Result;\n",
        ),
    ];
    for f in &good {
        let found = violations(std::slice::from_ref(f));
        assert!(found.is_empty(), "{}: {found:?}", f.path);
    }
    let twice = [
        file(
            "src/a/x.rs",
            "pub const NAMES: [&str; 2] = [\"a\", \"b\"];\n",
        ),
        file(
            "src/b/y.rs",
            "const NAMES: [&str; 2] = [\n    \"a\",\n    \"b\",\n];\n",
        ),
        file(
            "src/b/z.rs",
            "const OTHER: u32 = 1;\nconst LIMIT: u32 = 2;\n",
        ),
    ];
    assert_eq!(duplicates(&twice).len(), 1, "{:?}", duplicates(&twice));
    let printing = [
        file("src/run/p.rs", "fn f() {\n    eprintln!(\"x\");\n}\n"),
        file("src/download/q.rs", "use indicatif::ProgressBar;\n"),
        file(
            "src/util/r.rs",
            "fn f() { let _ = std::io::stdout().lock(); }\n",
        ),
    ];
    for f in &printing {
        assert_eq!(prints(std::slice::from_ref(f)).len(), 1, "{}", f.path);
    }
    let quiet = [
        file("src/cli/s.rs", "fn f() {\n    println!(\"x\");\n}\n"),
        file(
            "src/run/t.rs",
            "// println!(\"x\");\nfn f() { reporter.println(); }\n",
        ),
        file(
            "src/util/u.rs",
            "#[cfg(test)]\nmod tests {\n    fn f() { dbg!(1); }\n}\n",
        ),
    ];
    for f in &quiet {
        assert!(prints(std::slice::from_ref(f)).is_empty(), "{}", f.path);
    }
}
