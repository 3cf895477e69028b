//! `file://` references resolved the way promptfoo resolves them, relative
//! to the suite file's folder, into one self-contained document: prompts
//! from `.txt` (split on `---` lines), `.md`, `.json`, `.jsonl`, `.yaml`;
//! `tests` from `.csv`, `.json`, `.jsonl` and `.yaml` files and globs;
//! var values from files (text trimmed, YAML as JSON); assertion values
//! and `defaultTest` from JSON or YAML files.
//!
//! Only `promptgauge run` calls this, on the user's own files. The service
//! never does: a posted suite that still holds a `file://` is refused.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{Problem, SuiteError, rows};

/// The document with every `file://` replaced by what it refers to.
pub fn inline(mut doc: Value, base: &Path) -> Result<Value, SuiteError> {
    let mut problems = Vec::new();
    let Value::Object(root) = &mut doc else {
        return Ok(doc);
    };
    let files = Files { base };
    if let Some(prompts) = root.get_mut("prompts") {
        *prompts = files.prompts(prompts.take(), &mut problems);
    }
    if let Some(Value::String(s)) = root.get("defaultTest")
        && let Some(path) = s.strip_prefix("file://")
    {
        let loaded = files.structured(path, "defaultTest", &mut problems);
        root.insert("defaultTest".to_owned(), loaded.unwrap_or(Value::Null));
    }
    if let Some(default) = root.get_mut("defaultTest") {
        files.test("defaultTest", default, &mut problems);
    }
    if let Some(tests) = root.get_mut("tests") {
        let mut expanded = files.tests(tests.take(), &mut problems);
        for (i, t) in expanded.iter_mut().enumerate() {
            files.test(&format!("tests[{i}]"), t, &mut problems);
        }
        *tests = Value::Array(expanded);
    }
    if problems.is_empty() {
        Ok(doc)
    } else {
        Err(SuiteError { problems })
    }
}

struct Files<'a> {
    base: &'a Path,
}

impl Files<'_> {
    fn resolve(&self, path: &str) -> PathBuf {
        self.base.join(path)
    }

    fn read(&self, path: &str, at: &str, problems: &mut Vec<Problem>) -> Option<String> {
        let full = self.resolve(path);
        match std::fs::read_to_string(&full) {
            Ok(text) => Some(text),
            Err(e) => {
                problems.push(Problem::new(
                    at,
                    format!("cannot read {} (file://{path}): {e}", full.display()),
                ));
                None
            }
        }
    }

    /// The files a path or glob names, sorted; a plain path names itself.
    fn matches(&self, path: &str, at: &str, problems: &mut Vec<Problem>) -> Vec<String> {
        if !path.contains(['*', '?', '[', '{']) {
            return vec![path.to_owned()];
        }
        let pattern = self.resolve(path);
        let found: Vec<String> = match glob::glob(&pattern.to_string_lossy()) {
            Ok(paths) => paths
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .map(|p| {
                    p.strip_prefix(self.base)
                        .unwrap_or(&p)
                        .to_string_lossy()
                        .into_owned()
                })
                .collect(),
            Err(e) => {
                problems.push(Problem::new(at, format!("bad glob file://{path}: {e}")));
                return Vec::new();
            }
        };
        if found.is_empty() {
            problems.push(Problem::new(
                at,
                format!("no files match file://{path} in {}", self.base.display()),
            ));
        }
        found
    }

    /// A JSON or YAML file, parsed (CSV as records, anything else as text),
    /// as promptfoo's `maybeLoadFromExternalFile`.
    fn structured(&self, path: &str, at: &str, problems: &mut Vec<Problem>) -> Option<Value> {
        let text = self.read(path, at, problems)?;
        let parsed = match extension(path) {
            "json" => serde_json::from_str(&text).map_err(|e| e.to_string()),
            "yaml" | "yml" => crate::yaml::from_str(&text),
            "csv" => rows::tests_from_csv(&text)
                .map(|rows| Value::Array(rows.into_iter().map(|r| r["vars"].clone()).collect())),
            _ => Ok(Value::String(text)),
        };
        parsed
            .map_err(|e| problems.push(Problem::new(at, format!("file://{path}: {e}"))))
            .ok()
    }

    fn prompts(&self, value: Value, problems: &mut Vec<Problem>) -> Value {
        let items = match value {
            Value::Array(items) => items,
            other => vec![other],
        };
        let mut out = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let at = format!("prompts[{i}]");
            let (raw, label) = match &item {
                Value::String(s) => (s.as_str(), None),
                Value::Object(o) => match o.get("raw").and_then(Value::as_str) {
                    Some(raw) => (raw, o.get("label").and_then(Value::as_str)),
                    None => {
                        out.push(item.clone());
                        continue;
                    }
                },
                _ => {
                    out.push(item.clone());
                    continue;
                }
            };
            let Some(path) = raw.strip_prefix("file://") else {
                out.push(item.clone());
                continue;
            };
            for file in self.matches(path, &at, problems) {
                out.extend(self.prompt_file(&file, label, &at, problems));
            }
        }
        Value::Array(out)
    }

    /// The prompts in one file, as promptfoo's prompt processors read them.
    fn prompt_file(
        &self,
        path: &str,
        label: Option<&str>,
        at: &str,
        problems: &mut Vec<Problem>,
    ) -> Vec<Value> {
        let Some(text) = self.read(path, at, problems) else {
            return Vec::new();
        };
        let prompt = |raw: String, label: String| {
            let mut o = Map::new();
            o.insert("raw".to_owned(), Value::String(raw));
            o.insert("label".to_owned(), Value::String(label));
            Value::Object(o)
        };
        let named = |raw: &str| label.map_or_else(|| format!("{path}: {raw}"), str::to_owned);
        match extension(path) {
            "txt" => {
                let mut out = Vec::new();
                let mut chunk: Vec<&str> = Vec::new();
                let lines: Vec<&str> = text.split('\n').map(|l| l.trim_end_matches('\r')).collect();
                for line in lines.iter().chain(std::iter::once(&"---")) {
                    if line.trim() == "---" {
                        let raw = chunk.join("\n").trim().to_owned();
                        if !raw.is_empty() {
                            let l = label.map_or_else(
                                || format!("{path}: {raw}"),
                                |l| format!("{l}: {path}: {raw}"),
                            );
                            out.push(prompt(raw, l));
                        }
                        chunk.clear();
                    } else {
                        chunk.push(line);
                    }
                }
                out
            }
            "md" | "j2" => vec![prompt(text.clone(), named(&text))],
            // promptfoo re-prints JSON compactly; the template renders it back.
            "json" => {
                let raw = serde_json::from_str::<Value>(&text).map_or(text, |v| v.to_string());
                vec![prompt(raw.clone(), named(&raw))]
            }
            "jsonl" => text
                .split('\n')
                .map(|l| l.trim_end_matches('\r'))
                .filter(|l| !l.is_empty())
                .map(|l| prompt(l.to_owned(), named(l)))
                .collect(),
            "yaml" | "yml" => {
                let raw = crate::yaml::from_str(&text).map_or(text, |v| v.to_string());
                vec![prompt(raw.clone(), named(&raw))]
            }
            other => {
                problems.push(Problem::new(
                    at,
                    format!(
                        "file://{path}: prompts from .{other} files are not supported \
                         (.txt, .md, .j2, .json, .jsonl, .yaml are)"
                    ),
                ));
                Vec::new()
            }
        }
    }

    /// `tests`: a file, or a list of tests and files, expanded into tests.
    fn tests(&self, value: Value, problems: &mut Vec<Problem>) -> Vec<Value> {
        match value {
            Value::String(s) => {
                let path = s.strip_prefix("file://").unwrap_or(&s).to_owned();
                let yaml = path.ends_with("yaml") || path.ends_with("yml");
                self.tests_from(&path, "tests", !yaml, problems)
            }
            Value::Array(items) => {
                let mut out = Vec::new();
                for (i, item) in items.into_iter().enumerate() {
                    match item {
                        Value::String(s) => {
                            let path = s.strip_prefix("file://").unwrap_or(&s).to_owned();
                            out.extend(self.tests_from(
                                &path,
                                &format!("tests[{i}]"),
                                false,
                                problems,
                            ));
                        }
                        other => out.push(other),
                    }
                }
                out
            }
            other => vec![other],
        }
    }

    /// The tests in the files `path` names. `standalone` is promptfoo's
    /// single-file form (`tests: file://x.json`), whose unnamed tests are
    /// described `Row #N` like CSV rows.
    fn tests_from(
        &self,
        path: &str,
        at: &str,
        standalone: bool,
        problems: &mut Vec<Problem>,
    ) -> Vec<Value> {
        let mut out = Vec::new();
        for file in self.matches(path, at, problems) {
            let Some(text) = self.read(&file, at, problems) else {
                continue;
            };
            let fail = |problems: &mut Vec<Problem>, e: String| {
                problems.push(Problem::new(at, format!("file://{file}: {e}")));
            };
            let (tests, rows) = match extension(&file) {
                // A CSV goes in whole, as text the suite parser reads row
                // by row (a 100,000-row file is 100,000 objects otherwise).
                // Only cells that are file references need the rows now.
                "csv" if !text.contains("file://") => {
                    let mut block = Map::new();
                    block.insert("csv".to_owned(), Value::String(text));
                    block.insert("file".to_owned(), Value::String(file.clone()));
                    out.push(Value::Object(block));
                    continue;
                }
                "csv" => match rows::tests_from_csv(&text) {
                    Ok(t) => (t, false),
                    Err(e) => {
                        fail(problems, e);
                        continue;
                    }
                },
                "jsonl" => {
                    let mut tests = Vec::new();
                    for (n, line) in text.split('\n').enumerate() {
                        if line.trim().is_empty() {
                            continue;
                        }
                        match serde_json::from_str(line) {
                            Ok(t) => tests.push(t),
                            Err(e) => fail(problems, format!("line {}: {e}", n + 1)),
                        }
                    }
                    (tests, standalone)
                }
                ext @ ("json" | "yaml" | "yml") => {
                    let parsed = if ext == "json" && !standalone {
                        serde_json::from_str(&text).map_err(|e| e.to_string())
                    } else {
                        crate::yaml::from_str(&text)
                    };
                    match parsed {
                        Ok(Value::Array(t)) => (t, standalone),
                        Ok(Value::Null) => (Vec::new(), false),
                        Ok(one) => (vec![one], standalone),
                        Err(e) => {
                            fail(problems, e);
                            continue;
                        }
                    }
                }
                other => {
                    fail(
                        problems,
                        format!(
                            "tests from .{other} files are not supported (.csv, .json, .jsonl, .yaml are)"
                        ),
                    );
                    continue;
                }
            };
            for (n, mut t) in tests.into_iter().enumerate() {
                if let Value::Object(o) = &mut t {
                    let named = o
                        .get("description")
                        .and_then(Value::as_str)
                        .is_some_and(|d| !d.is_empty());
                    if rows && !named {
                        o.insert(
                            "description".to_owned(),
                            Value::String(format!("Row #{}", n + 1)),
                        );
                    }
                    // promptfoo loads every other file:// in a test read from a file.
                    for (k, v) in o.iter_mut() {
                        if k != "vars" {
                            self.deref(&format!("{at}.{k}"), v, problems);
                        }
                    }
                }
                out.push(t);
            }
        }
        out
    }

    /// Loads a test's var files and its assertions' value files.
    fn test(&self, at: &str, test: &mut Value, problems: &mut Vec<Problem>) {
        let Value::Object(t) = test else { return };
        if let Some(Value::Object(vars)) = t.get_mut("vars") {
            for (name, v) in vars.iter_mut() {
                self.var(&format!("{at}.vars.{name}"), v, problems);
            }
        }
        if let Some(Value::Array(asserts)) = t.get_mut("assert") {
            for (j, a) in asserts.iter_mut().enumerate() {
                self.deref(&format!("{at}.assert[{j}]"), a, problems);
            }
        }
    }

    /// A var from a file: text trimmed, YAML as JSON text; a glob gives a
    /// list, which expands into one test per file.
    fn var(&self, at: &str, v: &mut Value, problems: &mut Vec<Problem>) {
        let Value::String(s) = v else { return };
        let Some(path) = s.strip_prefix("file://") else {
            return;
        };
        let path = path.to_owned();
        let globbed = path.contains(['*', '?', '[', '{']);
        let mut loaded = Vec::new();
        for file in self.matches(&path, at, problems) {
            let Some(text) = self.read(&file, at, problems) else {
                continue;
            };
            let value = match extension(&file) {
                "yaml" | "yml" => match crate::yaml::from_str(&text) {
                    Ok(y) => crate::js::json(&y),
                    Err(e) => {
                        problems.push(Problem::new(at, format!("file://{file}: {e}")));
                        continue;
                    }
                },
                "js" | "ts" | "mjs" | "cjs" | "py" | "pdf" | "png" | "jpg" | "jpeg" | "gif"
                | "webp" | "mp3" | "wav" | "mp4" => {
                    problems.push(Problem::new(
                        at,
                        format!("file://{file}: vars from scripts, documents and media are not supported"),
                    ));
                    continue;
                }
                _ => crate::js::trim(&text).to_owned(),
            };
            loaded.push(Value::String(value));
        }
        *v = if globbed {
            Value::Array(loaded)
        } else {
            loaded.pop().unwrap_or(Value::Null)
        };
    }

    /// Every `file://` string in `v` replaced by the file's content.
    fn deref(&self, at: &str, v: &mut Value, problems: &mut Vec<Problem>) {
        match v {
            Value::String(s) => {
                if let Some(path) = s.strip_prefix("file://") {
                    let path = path.to_owned();
                    if let Some(loaded) = self.structured(&path, at, problems) {
                        *v = loaded;
                    }
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.deref(&format!("{at}[{i}]"), item, problems);
                }
            }
            Value::Object(map) => {
                for (k, item) in map.iter_mut() {
                    self.deref(&format!("{at}.{k}"), item, problems);
                }
            }
            _ => {}
        }
    }
}

fn extension(path: &str) -> &str {
    Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
}
