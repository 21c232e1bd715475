//! `tessera completions SHELL`: each script is valid in its shell and completes the
//! subcommands the binary has (read from `tessera help`, so a new subcommand is covered).
//! Where bash, zsh or fish is not installed the test for it is skipped with a note (it fails
//! with `CI` set: `.ci/run` installs them).

use std::process::{Command, Stdio};

use crate::packaging::tool_runs;
use crate::support::BIN;

/// The subcommands `tessera help` lists (without `help` itself).
fn subcommands() -> Vec<String> {
    let out = Command::new(BIN).arg("help").output().unwrap();
    assert!(out.status.success(), "tessera help failed");
    let help = String::from_utf8(out.stdout).unwrap();
    let names: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect();
    assert!(
        names.len() >= 10 && names.iter().any(|n| n == "serve"),
        "could not read the subcommands from `tessera help`:\n{help}"
    );
    names
}

/// `tessera completions SHELL`, written to a file in `dir`; asserts it succeeded.
fn script(shell: &str, dir: &std::path::Path) -> (std::path::PathBuf, String) {
    // A config file that does not exist: completions must not read settings at all.
    let out = Command::new(BIN)
        .args(["completions", shell])
        .env("TESSERA_CONFIG", dir.join("no-such-config.toml"))
        .env("TESSERA_DATABASE_URL", "not a database url")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "completions {shell} failed: {stderr}");
    assert!(
        stderr.is_empty(),
        "completions {shell} wrote to stderr: {stderr}"
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let path = dir.join(format!("tessera.{shell}"));
    std::fs::write(&path, &text).unwrap();
    (path, text)
}

#[test]
fn the_bash_script_parses_and_completes_every_subcommand() {
    let test = "the_bash_script_parses_and_completes_every_subcommand";
    if !tool_runs(test, "bash", &["-c", "true"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = script("bash", dir.path());
    let syntax = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(
        syntax.status.success(),
        "bash -n rejects the script: {}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    // Completing `tessera ` (an empty word) as bash's completion would: every subcommand.
    let completed = Command::new("bash")
        .arg("-c")
        .arg(
            r#"source "$1"
               COMP_WORDS=(tessera ""); COMP_CWORD=1; COMP_LINE="tessera "; COMP_POINT=8
               _tessera tessera "" tessera
               printf '%s\n' "${COMPREPLY[@]}""#,
        )
        .arg("bash")
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let words = String::from_utf8_lossy(&completed.stdout);
    let words: Vec<&str> = words.lines().collect();
    for name in subcommands() {
        assert!(
            words.contains(&name.as_str()),
            "bash does not complete `tessera {name}`; it offers {words:?}"
        );
    }
}

#[test]
fn the_zsh_script_parses_and_names_every_subcommand() {
    let test = "the_zsh_script_parses_and_names_every_subcommand";
    if !tool_runs(test, "zsh", &["-c", "true"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (path, text) = script("zsh", dir.path());
    assert!(text.starts_with("#compdef tessera"), "{}", &text[..80]);
    let syntax = Command::new("zsh").arg("-n").arg(&path).output().unwrap();
    assert!(
        syntax.status.success(),
        "zsh -n rejects the script: {}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    for name in subcommands() {
        assert!(
            text.contains(&format!("'{name}:")),
            "the zsh script does not offer `tessera {name}`"
        );
    }
}

#[test]
fn the_fish_script_completes_every_subcommand() {
    let test = "the_fish_script_completes_every_subcommand";
    if !tool_runs(test, "fish", &["-c", "true"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = script("fish", dir.path());
    // fish's own completion engine, asked what follows `tessera `.
    let completed = Command::new("fish")
        .arg("--no-config")
        .arg("-c")
        .arg("source $argv[1]; and complete -C 'tessera '")
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        completed.status.success(),
        "fish rejects the script: {}",
        String::from_utf8_lossy(&completed.stderr)
    );
    let offered = String::from_utf8_lossy(&completed.stdout);
    let words: Vec<&str> = offered
        .lines()
        .filter_map(|l| l.split('\t').next())
        .collect();
    for name in subcommands() {
        assert!(
            words.contains(&name.as_str()),
            "fish does not complete `tessera {name}`; it offers {words:?}"
        );
    }
}

#[test]
fn an_unknown_shell_is_refused_with_the_shells_there_are() {
    let out = Command::new(BIN)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid value 'tcsh'") && stderr.contains("bash, elvish, fish"),
        "{stderr}"
    );
}
