//! `user create --password-stdin` on a terminal: the password is asked twice at a prompt
//! without echo, two that differ are refused, and Ctrl-C leaves the terminal's echo on; an
//! upstream client secret (`idp add --client-secret-stdin`) is asked once, without echo. Piped
//! input is read as before (`cli.rs` and most tests pipe it). The terminal is a pseudo-terminal
//! made by util-linux `script`; where it is missing the tests say they were skipped.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::support::{BIN, SEALING_SECRET};

/// `script` running `shell` (a shell command line) in `dir` on a new pseudo-terminal, its
/// input and output piped to the test; `None` (with a note the developer sees) without
/// `script`.
fn on_a_terminal(dir: &Path, shell: &str, test: &str) -> Option<Child> {
    let mut cmd = Command::new("script");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("TESSERA_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    let spawned = cmd
        .args(["-qec", shell, "/dev/null"])
        .current_dir(dir)
        .env("TESSERA_SECRET", SEALING_SECRET)
        .env("TESSERA_DATABASE_URL", "sqlite://./t.db")
        // `script` runs `$SHELL -c`: the same shell wherever the tests run.
        .env("SHELL", "/bin/sh")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    match spawned {
        Ok(child) => Some(child),
        Err(e) => {
            // Straight to stderr, as the PostgreSQL tests do: `eprintln!` is shown only for
            // failing tests.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED (terminal): {test} needs util-linux `script` ({e})"
            );
            None
        }
    }
}

/// Reads the terminal's output into `out` until it holds `needle`.
fn read_until(child: &mut Child, out: &mut String, needle: &str) {
    let stdout = child.stdout.as_mut().unwrap();
    let mut buf = [0u8; 4096];
    while !out.contains(needle) {
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "the terminal closed before {needle:?}: {out:?}");
        out.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

fn type_line(child: &mut Child, text: &str) {
    let stdin = child.stdin.as_mut().unwrap();
    stdin.write_all(text.as_bytes()).unwrap();
    stdin.flush().unwrap();
}

/// Reads the rest of the output and the exit status.
fn finish(mut child: Child, mut out: String) -> (bool, String) {
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    drop(child.stdin.take());
    let status = child.wait().unwrap();
    (status.success(), out)
}

fn migrated_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["migrate", "--database-url", "sqlite://./t.db"])
        .current_dir(dir.path())
        .env("TESSERA_SECRET", SEALING_SECRET)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    dir
}

fn create(username: &str) -> String {
    format!("{BIN} user create --username {username} --password-stdin")
}

#[test]
fn a_terminal_is_asked_twice_without_echo() {
    let dir = migrated_dir();
    let Some(mut child) = on_a_terminal(dir.path(), &create("alice"), "prompt_twice") else {
        return;
    };
    let mut out = String::new();
    read_until(&mut child, &mut out, "Password: ");
    type_line(&mut child, "correct-horse-battery\n");
    read_until(&mut child, &mut out, "Repeat the password: ");
    type_line(&mut child, "correct-horse-battery\n");
    let (ok, out) = finish(child, out);
    assert!(ok, "{out}");
    assert!(out.contains("created user alice"), "{out}");
    assert!(
        !out.contains("correct-horse"),
        "the password was echoed: {out}"
    );
    // The password typed is the one stored: it signs in.
    let check = Command::new(BIN)
        .args(["user", "list", "--database-url", "sqlite://./t.db"])
        .current_dir(dir.path())
        .env("TESSERA_SECRET", SEALING_SECRET)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&check.stdout).contains("alice"));
}

#[test]
fn two_different_passwords_are_refused() {
    let dir = migrated_dir();
    let Some(mut child) = on_a_terminal(dir.path(), &create("bob"), "prompt_mismatch") else {
        return;
    };
    let mut out = String::new();
    read_until(&mut child, &mut out, "Password: ");
    type_line(&mut child, "correct-horse-battery\n");
    read_until(&mut child, &mut out, "Repeat the password: ");
    type_line(&mut child, "correct-horse-batterz\n");
    let (ok, out) = finish(child, out);
    assert!(!ok, "{out}");
    assert_eq!(
        out.matches("the two passwords differ; nothing was changed")
            .count(),
        1,
        "{out}"
    );
    assert!(!out.contains("created user"), "{out}");
}

#[test]
fn ctrl_c_at_the_prompt_leaves_the_echo_on() {
    let dir = migrated_dir();
    // Ctrl-C interrupts the terminal's whole foreground group, the shell too: the shell
    // traps it (a trap, unlike an ignored signal, is not passed on to the command) so that
    // it lives on to run `stty -a`.
    let shell = format!("trap : INT; {}; stty -a", create("carol"));
    let Some(mut child) = on_a_terminal(dir.path(), &shell, "prompt_interrupted") else {
        return;
    };
    let mut out = String::new();
    read_until(&mut child, &mut out, "Password: ");
    type_line(&mut child, "half-typed\u{3}");
    let (_, out) = finish(child, out);
    assert!(out.contains("interrupted; nothing was changed"), "{out}");
    assert!(!out.contains("half-typed"), "{out}");
    // `stty -a` after the command: echo on (` echo `), as before the prompt.
    let modes = out.split_whitespace().collect::<Vec<_>>();
    assert!(modes.contains(&"echo"), "{out}");
    assert!(!modes.contains(&"-echo"), "{out}");
}

#[test]
fn an_upstream_client_secret_on_a_terminal_is_asked_without_echo() {
    let dir = migrated_dir();
    let shell = format!(
        "{BIN} idp add --name up --issuer https://login.example.com --client-id c1 \
         --client-secret-stdin"
    );
    let Some(mut child) = on_a_terminal(dir.path(), &shell, "prompt_client_secret") else {
        return;
    };
    let mut out = String::new();
    read_until(&mut child, &mut out, "Client secret: ");
    type_line(&mut child, "upstream-secret-value\n");
    let (ok, out) = finish(child, out);
    assert!(ok, "{out}");
    assert!(out.contains("added identity provider up"), "{out}");
    assert!(!out.contains("upstream-secret-value"), "echoed: {out}");
}
