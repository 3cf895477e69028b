//! README.md against the code: its configuration table names exactly the
//! variables `Config` reads, and its command list names every subcommand
//! and the README every flag clap knows, so neither can drift silently.

use std::cell::RefCell;
use std::collections::BTreeSet;

use promptgauge::config::{Config, Overrides};

use crate::helpers::run_binary;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

/// The lines of README's section `## {title}` (up to the next `## `).
fn section(doc: &str, title: &str) -> Vec<String> {
    doc.lines()
        .skip_while(|l| *l != format!("## {title}"))
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .map(str::to_owned)
        .collect()
}

/// The backticked names in the first cell of each table row.
fn documented_variables(doc: &str) -> BTreeSet<String> {
    section(doc, "Configuration")
        .iter()
        .filter(|l| l.starts_with("| `"))
        .flat_map(|l| {
            let cell = l.split('|').nth(1).unwrap_or_default();
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_configuration_table_names_every_variable_and_only_those() {
    let asked = RefCell::new(BTreeSet::new());
    Config::from_lookup(
        |name| {
            asked.borrow_mut().insert(name.to_owned());
            Ok(None)
        },
        &Overrides::default(),
    )
    .unwrap();
    let asked = asked.into_inner();
    assert!(asked.len() > 20, "{asked:?}");
    assert_eq!(documented_variables(&readme()), asked);
}

/// `--long` flags in a `--help` text (not help/version).
fn flags(help: &str) -> BTreeSet<String> {
    help.split_whitespace()
        .filter_map(|w| {
            let w = w.trim_end_matches([',', '.']);
            let name = w.strip_prefix("--")?;
            let name = name.split(['=', '<', '[']).next()?;
            (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
                .then(|| format!("--{name}"))
        })
        .filter(|f| f != "--help" && f != "--version")
        .collect()
}

#[test]
fn the_command_list_names_every_subcommand_and_the_readme_every_flag() {
    let doc = readme();
    let commands = section(&doc, "Commands").join("\n");
    let top = run_binary(&["--help"], &[]);
    let help = String::from_utf8_lossy(&top.stdout).into_owned();
    let subcommands: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|c| c != "help")
        .collect();
    assert!(subcommands.len() >= 7, "{help}");
    let mut missing = Vec::new();
    for sub in &subcommands {
        if !commands.contains(&format!("promptgauge {sub}"))
            && !commands.contains(&format!("promptgauge [{sub}]"))
        {
            missing.push(format!("subcommand {sub} is not in README's command list"));
        }
        let out = run_binary(&[sub, "--help"], &[]);
        for flag in flags(&String::from_utf8_lossy(&out.stdout)) {
            if !doc.contains(&flag) {
                missing.push(format!("{sub} {flag} is not in README"));
            }
        }
    }
    for flag in flags(&help) {
        if !doc.contains(&flag) {
            missing.push(format!("{flag} is not in README"));
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
}
