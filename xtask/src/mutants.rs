//! `cargo xtask mutants`: how strong the conformance suite is, measured by mutation
//! testing. `cargo-mutants` changes the store implementations (and the session logic the
//! session-level cases cover) one small edit at a time and runs the conformance suite
//! against each change; a change the suite does not notice is a survivor.
//!
//! Every survivor either gets a case (or a sharper assertion) that kills it, or a one-line
//! reason in `xtask/mutants-explained.txt` (an equivalent mutant, say). The task prints
//! caught / missed / timed out / unviable per target and fails when a survivor has no
//! reason. On demand only: a full run takes hours on two cores.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::ci::workspace_root;

/// What `cargo-mutants` mutates, and the tests that must notice.
struct Target {
    /// The name `--target` takes.
    name: &'static str,
    /// The package mutated.
    package: &'static str,
    /// The files mutated, as `cargo mutants --file` globs (all of the package if empty).
    files: &'static [&'static str],
    /// The package whose conformance test runs against each mutant.
    test_package: &'static str,
}

const TARGETS: &[Target] = &[
    Target {
        name: "memory",
        package: "session-memory",
        files: &[],
        test_package: "session-memory",
    },
    Target {
        name: "file",
        package: "session-file",
        files: &[],
        test_package: "session-file",
    },
    Target {
        name: "core",
        package: "session-core",
        files: &[
            "session-core/src/session.rs",
            "session-core/src/session/*.rs",
            "session-core/src/expiry.rs",
        ],
        test_package: "session-memory",
    },
];

/// The survivors with a reason: one per line, the mutant as `cargo mutants` names it, then
/// ` # ` and why no case kills it.
const EXPLAINED: &str = "xtask/mutants-explained.txt";

/// What `cargo xtask mutants` was asked to run.
pub(crate) struct Options {
    targets: Vec<&'static Target>,
    /// Only list the mutants, run nothing.
    list: bool,
    /// Parallel builds, passed to `cargo mutants --jobs`.
    jobs: Option<u32>,
    /// Only these files of the target (`cargo mutants --file` globs): a re-run after a
    /// change to one file.
    files: Vec<String>,
}

pub(crate) fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        targets: Vec::new(),
        list: false,
        jobs: None,
        files: Vec::new(),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--target" => {
                let name = args.next().ok_or("--target needs a name")?;
                let target = TARGETS
                    .iter()
                    .find(|target| target.name == name)
                    .ok_or_else(|| {
                        let names: Vec<&str> = TARGETS.iter().map(|target| target.name).collect();
                        format!("unknown target {name} (one of {})", names.join(", "))
                    })?;
                options.targets.push(target);
            }
            "--list" => options.list = true,
            "--file" => options
                .files
                .push(args.next().ok_or("--file needs a path or glob")?.clone()),
            "--jobs" => {
                let jobs = args.next().ok_or("--jobs needs a number")?;
                options.jobs = Some(
                    jobs.parse()
                        .map_err(|_| format!("--jobs {jobs}: not a number"))?,
                );
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if options.targets.is_empty() {
        options.targets = TARGETS.iter().collect();
    }
    Ok(options)
}

/// The `cargo mutants` arguments for `target`, writing into `output`.
fn arguments(target: &Target, output: &Path, options: &Options) -> Vec<String> {
    let mut args = vec![
        "mutants".to_owned(),
        "--package".to_owned(),
        target.package.to_owned(),
        "--test-package".to_owned(),
        target.test_package.to_owned(),
        "--output".to_owned(),
        output.display().to_string(),
    ];
    let files: Vec<&str> = if options.files.is_empty() {
        target.files.to_vec()
    } else {
        options.files.iter().map(String::as_str).collect()
    };
    for file in files {
        args.extend(["--file".to_owned(), file.to_owned()]);
    }
    if options.list {
        args.push("--list".to_owned());
    }
    if let Some(jobs) = options.jobs {
        args.extend(["--jobs".to_owned(), jobs.to_string()]);
    }
    if target.package != target.test_package {
        // cargo-mutants runs its baseline with the mutated package's tests, which have no
        // `conformance` target here: [`baseline`] runs the suite on the unmutated tree
        // instead, and the timeout that the baseline would have set is given.
        args.extend([
            "--baseline".to_owned(),
            "skip".to_owned(),
            "--timeout".to_owned(),
            SKIPPED_BASELINE_TIMEOUT_SECS.to_string(),
        ]);
    }
    // The conformance suite is the test: the package's other tests are not what is
    // measured.
    args.extend([
        "--".to_owned(),
        "--test".to_owned(),
        "conformance".to_owned(),
    ]);
    args
}

/// The test timeout of a run whose baseline cargo-mutants skips, in seconds: six times
/// the memory store's whole suite, which the per-call limit keeps bounded even when every
/// call hangs.
const SKIPPED_BASELINE_TIMEOUT_SECS: u32 = 60;

/// The suite of `target`'s test package on the unmutated tree: it must pass, or every
/// mutant would read as caught.
fn baseline(root: &Path, target: &Target) -> Result<(), String> {
    let status = Command::new(env!("CARGO"))
        .args([
            "test",
            "--package",
            target.test_package,
            "--test",
            "conformance",
        ])
        .env("SESSION_REQUIRE_SERVICES", "1")
        .current_dir(root)
        .status()
        .map_err(|err| crate::cannot_run("cargo test", &err))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "the conformance suite of {} fails on the unmutated tree ({status}): fix that first",
            target.test_package
        ))
    }
}

/// The mutants of one outcome file of `cargo mutants` (`missed.txt`, ...), one per line.
fn outcome(output: &Path, file: &str) -> Result<Vec<String>, String> {
    let path = output.join("mutants.out").join(file);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(str::to_owned)
            .collect()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(err) => Err(format!("{}: {}", path.display(), crate::explain(&err))),
    }
}

/// The mutants of [`EXPLAINED`] (the part of each line before ` # `).
fn explained(root: &Path) -> Result<BTreeSet<String>, String> {
    let path = root.join(EXPLAINED);
    let text = std::fs::read_to_string(&path)
        .map_err(|err| format!("{}: {}", path.display(), crate::explain(&err)))?;
    Ok(parse_explained(&text))
}

fn parse_explained(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            line.split_once(" # ")
                .map(|(mutant, _)| mutant.trim().to_owned())
        })
        .collect()
}

/// Runs `cargo mutants` with `args`, the services required (see below).
fn cargo_mutants(root: &Path, args: &[String]) -> Result<std::process::ExitStatus, String> {
    Command::new(env!("CARGO"))
        .args(args)
        // A fixture that cannot be set up makes the suite skip every case, which passes:
        // a mutant that breaks opening the store would read as missed. With the services
        // required, a skip for want of a backend fails the run instead.
        .env("SESSION_REQUIRE_SERVICES", "1")
        .current_dir(root)
        .status()
        .map_err(|err| {
            format!(
                "{}\nhint: cargo mutants is installed with `cargo install cargo-mutants`",
                crate::cannot_run("cargo mutants", &err)
            )
        })
}

/// `name` as a regular expression that matches exactly it.
fn exactly(name: &str) -> String {
    let mut re = String::with_capacity(name.len() + 8);
    re.push('^');
    for c in name.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            re.push('\\');
        }
        re.push(c);
    }
    re.push('$');
    re
}

/// The `cargo mutants` arguments that re-run the suite's survivors `missed` against every
/// test of the package they live in (its unit, integration and doc tests, the conformance
/// run included), writing into `output`.
fn own_test_arguments(
    target: &Target,
    missed: &[String],
    output: &Path,
    options: &Options,
) -> Vec<String> {
    let mut args = vec![
        "mutants".to_owned(),
        "--package".to_owned(),
        target.package.to_owned(),
        "--output".to_owned(),
        output.display().to_string(),
    ];
    for mutant in missed {
        args.extend(["--re".to_owned(), exactly(mutant)]);
    }
    if let Some(jobs) = options.jobs {
        args.extend(["--jobs".to_owned(), jobs.to_string()]);
    }
    args
}

/// What one target's runs found.
struct Verdict {
    mutants: usize,
    caught: usize,
    /// Survivors of the suite.
    missed: Vec<String>,
    /// Survivors of the suite that the package's own tests kill.
    killed_by_own_tests: usize,
    /// Survivors of both, with a reason.
    explained: usize,
    /// Survivors of both, without a reason.
    unexplained: Vec<String>,
    timeout: usize,
    unviable: usize,
}

/// Runs the suite against every mutant of `target`, then its survivors against the
/// package's own tests.
fn run_target(
    root: &Path,
    target: &Target,
    options: &Options,
    reasons: &BTreeSet<String>,
) -> Result<Option<Verdict>, String> {
    let output: PathBuf = root.join("target/mutants").join(target.name);
    std::fs::create_dir_all(&output)
        .map_err(|err| format!("{}: {}", output.display(), crate::explain(&err)))?;
    if target.package != target.test_package && !options.list {
        baseline(root, target)?;
    }
    let status = cargo_mutants(root, &arguments(target, &output, options))?;
    if options.list {
        return Ok(None);
    }
    // `cargo mutants` exits non-zero when mutants were missed: the outcome files say what
    // happened, and only a run that wrote none failed.
    let caught = outcome(&output, "caught.txt")?;
    let missed = outcome(&output, "missed.txt")?;
    let timeout = outcome(&output, "timeout.txt")?;
    let unviable = outcome(&output, "unviable.txt")?;
    if caught.is_empty() && missed.is_empty() && timeout.is_empty() && unviable.is_empty() {
        return Err(format!(
            "cargo mutants for {} wrote no outcomes ({status})",
            target.name
        ));
    }
    // A survivor of the suite that the package's own tests kill is covered where it
    // belongs (an option or a file layout of that store alone); only the survivors of
    // both need a reason.
    let own: BTreeSet<String> = if missed.is_empty() {
        BTreeSet::new()
    } else {
        let own_output = root
            .join("target/mutants")
            .join(format!("{}-own", target.name));
        std::fs::create_dir_all(&own_output)
            .map_err(|err| format!("{}: {}", own_output.display(), crate::explain(&err)))?;
        cargo_mutants(
            root,
            &own_test_arguments(target, &missed, &own_output, options),
        )?;
        let mut killed = outcome(&own_output, "caught.txt")?;
        killed.extend(outcome(&own_output, "timeout.txt")?);
        killed.into_iter().collect()
    };
    let survivors: Vec<&String> = missed.iter().filter(|m| !own.contains(*m)).collect();
    Ok(Some(Verdict {
        mutants: caught.len() + missed.len() + timeout.len() + unviable.len(),
        caught: caught.len(),
        killed_by_own_tests: missed.len() - survivors.len(),
        explained: survivors.iter().filter(|m| reasons.contains(**m)).count(),
        unexplained: survivors
            .iter()
            .filter(|m| !reasons.contains(**m))
            .map(|m| (*m).clone())
            .collect(),
        missed,
        timeout: timeout.len(),
        unviable: unviable.len(),
    }))
}

pub(crate) fn run(options: Options) -> Result<(), String> {
    let root = workspace_root();
    let reasons = explained(&root)?;
    let mut unexplained = Vec::new();
    let mut table = vec![
        "| target | mutants | caught | missed | killed by the crate's own tests | explained \
         | unexplained | timed out | unviable |"
            .to_owned(),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|".to_owned(),
    ];
    for target in &options.targets {
        let Some(verdict) = run_target(&root, target, &options, &reasons)? else {
            continue;
        };
        table.push(format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            target.name,
            verdict.mutants,
            verdict.caught,
            verdict.missed.len(),
            verdict.killed_by_own_tests,
            verdict.explained,
            verdict.unexplained.len(),
            verdict.timeout,
            verdict.unviable,
        ));
        unexplained.extend(verdict.unexplained);
    }
    if options.list {
        return Ok(());
    }
    println!("\n{}\n", table.join("\n"));
    if unexplained.is_empty() {
        println!(
            "every mutant the suite missed is killed by its crate's own tests or has a reason \
             in {EXPLAINED}"
        );
        Ok(())
    } else {
        for mutant in &unexplained {
            println!("survived without a reason: {mutant}");
        }
        Err(format!(
            "{} surviving mutants have neither a test that kills them nor a reason in \
             {EXPLAINED}",
            unexplained.len()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explained_mutants_are_the_text_before_the_reason() {
        let text = "# comment\n\nsession-memory/src/lib.rs:1:1: replace a with b # equivalent\n\
                    no reason here\n";
        let set = parse_explained(text);
        assert_eq!(
            set.into_iter().collect::<Vec<_>>(),
            ["session-memory/src/lib.rs:1:1: replace a with b"]
        );
    }

    #[test]
    fn arguments_run_the_conformance_suite_of_the_test_package() {
        let options = parse(&["--target".to_owned(), "core".to_owned()]).expect("options");
        let args = arguments(options.targets[0], Path::new("/tmp/out"), &options);
        let joined = args.join(" ");
        assert!(joined.contains("--package session-core"), "{joined}");
        assert!(joined.contains("--test-package session-memory"), "{joined}");
        assert!(
            joined.contains("--file session-core/src/expiry.rs"),
            "{joined}"
        );
        assert!(joined.ends_with("-- --test conformance"), "{joined}");
        assert!(joined.contains("--baseline skip --timeout 60"), "{joined}");
        let options = parse(&["--target".to_owned(), "file".to_owned()]).expect("options");
        let joined = arguments(options.targets[0], Path::new("/tmp/out"), &options).join(" ");
        assert!(!joined.contains("--baseline"), "{joined}");
        let options = parse(&[
            "--target".to_owned(),
            "file".to_owned(),
            "--file".to_owned(),
            "session-file/src/leases.rs".to_owned(),
        ])
        .expect("options");
        let joined = arguments(options.targets[0], Path::new("/tmp/out"), &options).join(" ");
        assert!(
            joined.contains("--file session-file/src/leases.rs"),
            "{joined}"
        );
        assert!(parse(&["--target".to_owned(), "nope".to_owned()]).is_err());
    }

    #[test]
    fn survivors_are_rerun_by_exact_name_against_every_test_of_their_package() {
        let options = parse(&["--target".to_owned(), "core".to_owned()]).expect("options");
        let missed = [
            "session-core/src/session.rs:12:5: replace a && b with a || b in \
                       <impl X for Y>::f -> Result<(), E>"
                .to_owned(),
        ];
        let args = own_test_arguments(options.targets[0], &missed, Path::new("/o"), &options);
        let joined = args.join(" ");
        assert!(joined.contains("--package session-core"), "{joined}");
        assert!(!joined.contains("--test-package"), "{joined}");
        assert!(!joined.contains("conformance"), "{joined}");
        assert_eq!(
            args.iter().filter(|arg| *arg == "--re").count(),
            1,
            "{joined}"
        );
        assert!(
            joined.contains(
                "^session-core/src/session\\.rs:12:5: replace a && b with a \\|\\| b in \
                 <impl X for Y>::f -> Result<\\(\\), E>$"
            ),
            "{joined}"
        );
    }
}
