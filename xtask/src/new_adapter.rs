//! `cargo xtask new-adapter NAME [--path DIR]`: scaffolds a store crate that builds as
//! generated and whose conformance run lists what is left to implement.

use std::fs;
use std::path::{Path, PathBuf};

use crate::ci::workspace_root;

const CARGO_TOML: &str = include_str!("../templates/Cargo.toml.in");
const LIB_RS: &str = include_str!("../templates/lib.rs.in");
const CONFORMANCE_RS: &str = include_str!("../templates/conformance.rs.in");
const README_MD: &str = include_str!("../templates/README.md.in");

/// What `cargo xtask new-adapter` was asked to create.
pub(crate) struct Options {
    /// The name after `session-`, already validated.
    name: String,
    /// Where to create the crate; in the workspace, as a member, when absent.
    path: Option<PathBuf>,
}

pub(crate) fn parse(args: &[String]) -> Result<Options, String> {
    let mut name = None;
    let mut path = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--path" => path = Some(PathBuf::from(args.next().ok_or("--path needs a folder")?)),
            other if other.starts_with('-') => return Err(format!("unknown option {other}")),
            other if name.is_none() => name = Some(other.to_owned()),
            other => return Err(format!("unexpected argument {other}")),
        }
    }
    let name = name.ok_or("the adapter's NAME is missing")?;
    validate_name(&name)?;
    Ok(Options { name, path })
}

pub(crate) fn run(options: Options) -> Result<(), String> {
    let Options { name, path } = options;
    let root = workspace_root();
    let in_workspace = path.is_none();
    let dir = match path {
        Some(path) if path.is_absolute() => path,
        Some(path) => std::env::current_dir()
            .map_err(|e| crate::explain(&e))?
            .join(path),
        None => root.join(format!("session-{name}")),
    };
    if dir.exists() {
        return Err(format!(
            "{} already exists; refusing to overwrite it",
            dir.display()
        ));
    }
    scaffold(&name, &dir, &root, in_workspace)?;
    if in_workspace {
        add_member(&root, &format!("session-{name}"))?;
    }
    println!("created session-{name} at {}", dir.display());
    println!("next: implement the methods in src/lib.rs, then run");
    println!("  cargo xtask conformance --adapter {}", dir.display());
    Ok(())
}

/// A crate name suffix: lowercase ASCII letters, digits, `-` and `_`, starting with a
/// letter, at most 40 characters, and not one of this workspace's own crates.
pub(crate) fn validate_name(name: &str) -> Result<(), String> {
    let valid = name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && !name.ends_with(['-', '_']);
    if !valid {
        return Err(format!(
            "`{name}` is not a valid adapter name: use lowercase letters, digits, '-' and '_', \
             starting with a letter (at most 40 characters)"
        ));
    }
    if [
        "core", "memory", "file", "db", "redis", "tower", "testkit", "example",
    ]
    .contains(&name)
    {
        return Err(format!(
            "session-{name} is one of this workspace's own crates"
        ));
    }
    Ok(())
}

fn camel_case(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn render(template: &str, pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .fold(template.to_owned(), |text, (key, value)| {
            text.replace(&format!("{{{{{key}}}}}"), value)
        })
}

fn scaffold(name: &str, dir: &Path, root: &Path, in_workspace: bool) -> Result<(), String> {
    let camel = camel_case(name);
    let snake = name.replace('-', "_");
    let (core_dep, testkit_dep, workspace_section) = if in_workspace {
        (
            "session-core.workspace = true".to_owned(),
            "session-testkit.workspace = true".to_owned(),
            String::new(),
        )
    } else {
        (
            format!(
                "# Path dependencies on the session workspace this was generated from; use\n\
                 # `version = \"0.1\"` instead once the crates come from crates.io.\n\
                 session-core = {{ path = {:?} }}",
                root.join("session-core").display().to_string()
            ),
            format!(
                "session-testkit = {{ path = {:?} }}",
                root.join("session-testkit").display().to_string()
            ),
            "\n# A crate of its own, not a member of an enclosing workspace.\n[workspace]\n"
                .to_owned(),
        )
    };
    let pairs = [
        ("name", name),
        ("Name", camel.as_str()),
        ("name_snake", snake.as_str()),
        ("core_dep", core_dep.as_str()),
        ("testkit_dep", testkit_dep.as_str()),
        ("workspace_section", workspace_section.as_str()),
    ];
    let files = [
        ("Cargo.toml", CARGO_TOML),
        ("src/lib.rs", LIB_RS),
        ("tests/conformance.rs", CONFORMANCE_RS),
        ("README.md", README_MD),
    ];
    for (file, template) in files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| {
                format!("cannot create {}: {}", parent.display(), crate::explain(&e))
            })?;
        }
        fs::write(&path, render(template, &pairs))
            .map_err(|e| format!("cannot write {}: {}", path.display(), crate::explain(&e)))?;
    }
    Ok(())
}

/// Adds `member` to the root manifest's `members` list.
fn add_member(root: &Path, member: &str) -> Result<(), String> {
    let manifest = root.join("Cargo.toml");
    let text = fs::read_to_string(&manifest)
        .map_err(|e| format!("cannot read {}: {}", manifest.display(), crate::explain(&e)))?;
    let marker = "members = [\n";
    let at = text
        .find(marker)
        .ok_or("the root Cargo.toml has no `members = [` list to add the crate to")?
        + marker.len();
    let updated = format!("{}    \"{member}\",\n{}", &text[..at], &text[at..]);
    fs::write(&manifest, updated).map_err(|e| {
        format!(
            "cannot write {}: {}",
            manifest.display(),
            crate::explain(&e)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["foo", "my-store", "dynamo_db", "s3"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Foo",
            "1foo",
            "foo-",
            "foo bar",
            "../x",
            "foo/bar",
            "core",
            &"a".repeat(41),
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        assert_eq!(camel_case("my-cool_store"), "MyCoolStore");
    }

    #[test]
    fn templates_have_no_unfilled_placeholders() {
        let pairs = [
            ("name", "x"),
            ("Name", "X"),
            ("name_snake", "x"),
            ("core_dep", ""),
            ("testkit_dep", ""),
            ("workspace_section", ""),
        ];
        for template in [CARGO_TOML, LIB_RS, CONFORMANCE_RS, README_MD] {
            assert!(!render(template, &pairs).contains("{{"), "{template}");
        }
    }
}
