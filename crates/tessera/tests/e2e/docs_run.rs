//! The documentation runs as written: every ```` ```sh ```` block of `README.md` and of
//! `docs/**/*.md` is executed, in document order, so an example that drifts from the binary
//! fails the test suite.
//!
//! How a document is run (the README's Tests section states the same conventions):
//!
//! - Its `sh` blocks become one `bash` script with `set -euo pipefail`, so a variable set in
//!   one block is seen by the later ones and any failing command fails the document. Other
//!   blocks (`text`, `json`, `toml`) are not run: expected output lives there or in `# …`
//!   comments.
//! - The script runs in a fresh temporary directory (also its `HOME`), with an environment of
//!   `PATH`, `LANG` and `CI` only, this test binary's own `tessera` first on `PATH`, and stdin
//!   closed. Before the first block it starts `tessera serve` in the background there (a new
//!   `./tessera.db`), at the address the documents use, `127.0.0.1:8080`; so the documents run
//!   one at a time, and no other test may listen on 8080, 8081 (the admin API's examples) or
//!   8976 (the code flow's redirect catcher).
//! - An HTML comment on the lines just above a block's fence changes how it is run:
//!   `<!-- docs-run: skip: REASON -->` does not run it (a block that cannot run inside a test:
//!   `cargo` itself, package installs, a superuser's commands); `<!-- docs-run: serve -->`
//!   runs each of its `tessera serve …` commands as a restart of the background server with
//!   those arguments and the shell's environment at that point, waiting until it answers on
//!   `127.0.0.1:8080`; `<!-- docs-run: postgres: URL -->` replaces the text `URL` in the block
//!   with the URL of a new, empty database on the server named by `TESSERA_TEST_POSTGRES_URL`
//!   (the block is skipped, with a note, where that is not set, and fails under `CI`), and runs
//!   it in a subshell: the variables it sets and the server it starts end with it, and the
//!   document's server is started again as it was for the blocks after it.
//! - A failure names the document, the line of the block's fence, the exit status, and the
//!   output of that block and of the server.
//!
//! The tools the documents call (`bash`, `curl`, `openssl`, `jq`, `python3`) must be
//! installed; where one is missing the test says it was skipped, and fails under `CI`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::BIN;

/// The documents run one at a time: they all use 127.0.0.1:8080.
static PORT_8080: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a document may run before it is stopped as hung (it takes seconds).
const HANG_GUARD_SECS: u64 = 600;

/// The start of the line the script prints before each block, and at its end.
const MARK: &str = "\u{1e}docs-run";

/// One fenced block and how to run it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Block {
    /// The 1-based line of the opening fence.
    line: usize,
    /// The lines between the fences.
    text: String,
    /// Why it is not run, if it is not.
    skip: Option<String>,
    /// Its `tessera serve` commands restart the background server.
    serve: bool,
    /// A placeholder URL to replace with a new PostgreSQL database's.
    postgres: Option<String>,
}

/// The `sh` blocks of a Markdown text, with their annotations; an unknown `docs-run`
/// annotation, or one not followed by an `sh` block, is an error naming its line.
fn sh_blocks(markdown: &str) -> Result<Vec<Block>, String> {
    let mut blocks = Vec::new();
    let mut pending: Vec<(usize, String)> = Vec::new();
    let mut lines = markdown.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("<!-- docs-run:") {
            let body = rest.strip_suffix("-->").ok_or_else(|| {
                format!("line {}: a docs-run comment must end on its line", i + 1)
            })?;
            pending.push((i + 1, body.trim().to_owned()));
            continue;
        }
        if let Some(info) = trimmed.strip_prefix("```") {
            let fence_len = 3 + info.chars().take_while(|c| *c == '`').count();
            let fence = &trimmed[..fence_len];
            let lang = trimmed[fence_len..].trim();
            let mut text = String::new();
            for (_, l) in lines.by_ref() {
                if l.trim() == fence {
                    break;
                }
                text.push_str(l);
                text.push('\n');
            }
            let notes = std::mem::take(&mut pending);
            if lang != "sh" {
                if let Some((at, _)) = notes.first() {
                    return Err(format!(
                        "line {at}: a docs-run comment above a `{lang}` block"
                    ));
                }
                continue;
            }
            let mut block = Block {
                line: i + 1,
                text,
                skip: None,
                serve: false,
                postgres: None,
            };
            for (at, note) in notes {
                if let Some(reason) = note.strip_prefix("skip:") {
                    if reason.trim().is_empty() {
                        return Err(format!("line {at}: `docs-run: skip:` needs a reason"));
                    }
                    block.skip = Some(reason.trim().to_owned());
                } else if note == "serve" {
                    block.serve = true;
                } else if let Some(url) = note.strip_prefix("postgres:") {
                    block.postgres = Some(url.trim().to_owned());
                } else {
                    return Err(format!(
                        "line {at}: unknown annotation `docs-run: {note}` (skip: REASON, \
                         serve, postgres: URL)"
                    ));
                }
            }
            if block.serve && !serve_in_background(&block.text).contains("__docs_serve") {
                return Err(format!(
                    "line {}: a `docs-run: serve` block without a `tessera serve` line",
                    block.line
                ));
            }
            blocks.push(block);
            continue;
        }
        if !trimmed.is_empty() {
            if let Some((at, _)) = pending.first() {
                return Err(format!(
                    "line {at}: a docs-run comment not followed by a block"
                ));
            }
        }
    }
    if let Some((at, _)) = pending.first() {
        return Err(format!(
            "line {at}: a docs-run comment not followed by a block"
        ));
    }
    Ok(blocks)
}

/// Rewrites a `serve` block: each command starting with `tessera serve` restarts the
/// background server with the same arguments.
fn serve_in_background(text: &str) -> String {
    text.lines()
        .map(|l| {
            let indent = l.len() - l.trim_start().len();
            match l.trim_start().strip_prefix("tessera serve") {
                Some(rest) if rest.is_empty() || rest.starts_with([' ', '\t']) => {
                    format!("{}__docs_serve{rest}\n", &l[..indent])
                }
                _ => format!("{l}\n"),
            }
        })
        .collect()
}

/// Functions and the first server start, before the first block.
const PRELUDE: &str = r#"set -euo pipefail
exec 2>&1
__docs_server_pid=
__docs_serve_args=()
__docs_stop() {
    if [ -n "$__docs_server_pid" ]; then
        kill "$__docs_server_pid" 2>/dev/null || true
        # `wait` only waits for a child: a subshell stopping its parent's server polls.
        wait "$__docs_server_pid" 2>/dev/null || true
        while kill -0 "$__docs_server_pid" 2>/dev/null; do sleep 0.05; done
        __docs_server_pid=
    fi
}
# `tessera serve ARGS` in the background, once the previous server has stopped; returns when
# it answers on 127.0.0.1:8080.
__docs_serve() {
    __docs_stop
    __docs_serve_args=("$@")
    tessera serve "$@" >>"$__DOCS_SERVER_LOG" 2>&1 &
    __docs_server_pid=$!
    for _ in $(seq 1 300); do
        if curl -fsS -o /dev/null http://127.0.0.1:8080/health/alive 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$__docs_server_pid" 2>/dev/null; then
            echo "docs-run: tessera serve $* exited; its log:"
            tail -n 20 "$__DOCS_SERVER_LOG"
            return 1
        fi
        sleep 0.1
    done
    echo "docs-run: tessera serve $* does not answer on 127.0.0.1:8080"
    return 1
}
# At the end, the server and whatever else a block left in the background.
__docs_exit() {
    __docs_stop
    local job
    for job in $(jobs -p); do kill "$job" 2>/dev/null || true; done
}
trap __docs_exit EXIT
trap 'exit 143' TERM INT
if curl -s -o /dev/null http://127.0.0.1:8080/ 2>/dev/null; then
    echo "docs-run: something already listens on 127.0.0.1:8080; stop it first"
    exit 1
fi
__docs_serve
"#;

/// What running one document found.
struct Outcome {
    success: bool,
    status: String,
    /// The output printed after each block's mark, by the block's line.
    outputs: Vec<(usize, String)>,
    finished: bool,
    server_log: String,
}

/// Runs the blocks of one document in a fresh directory; `postgres` is the URL of a new
/// database for a `postgres:` block (none: such blocks are skipped).
fn run_document(blocks: &[Block], postgres: Option<&str>) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(BIN, bin.join("tessera")).unwrap();
    let server_log = dir.path().join("server.log");

    let mut script = String::from(PRELUDE);
    for b in blocks {
        if b.skip.is_some() {
            continue;
        }
        let mut text = if b.serve {
            serve_in_background(&b.text)
        } else {
            b.text.clone()
        };
        if let Some(placeholder) = &b.postgres {
            match postgres {
                // In a subshell: its variables and its server end with it, and the
                // document's server comes back, as it was, for the blocks after it.
                Some(url) => {
                    text = format!(
                        "(\ntrap __docs_exit EXIT\n{}\n)\n__docs_serve \
                         ${{__docs_serve_args[@]+\"${{__docs_serve_args[@]}}\"}}\n",
                        text.replace(placeholder.as_str(), url)
                    )
                }
                None => continue,
            }
        }
        writeln!(script, "printf '\\n{MARK} %s\\n' {}", b.line).unwrap();
        script.push_str(&text);
    }
    writeln!(script, "printf '\\n{MARK} end\\n'").unwrap();
    let script_path = dir.path().join("docs.sh");
    std::fs::write(&script_path, &script).unwrap();

    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into())
    );
    // A guard against a block that never ends (a `wait` for a request that never came):
    // `timeout` ends the whole process group, background processes included.
    let mut cmd = Command::new("timeout");
    cmd.args(["--kill-after=10", &HANG_GUARD_SECS.to_string(), "bash"])
        .arg(&script_path)
        .current_dir(&work)
        .env_clear()
        .env("PATH", path)
        .env("HOME", &work)
        .env("LANG", "C.UTF-8")
        .env("__DOCS_SERVER_LOG", &server_log)
        .stdin(std::process::Stdio::null());
    if let Some(ci) = std::env::var_os("CI") {
        cmd.env("CI", ci);
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut outputs = Vec::new();
    let mut finished = false;
    for part in text.split(&format!("\n{MARK} ")).skip(1) {
        let (head, body) = part.split_once('\n').unwrap_or((part, ""));
        if head == "end" {
            finished = true;
        } else if let Ok(line) = head.parse() {
            outputs.push((line, body.to_owned()));
        }
    }
    if outputs.is_empty() && !finished {
        // Failed before the first block: the prelude's output.
        outputs.push((0, text));
    }
    Outcome {
        success: out.status.success() && finished,
        status: out.status.to_string(),
        outputs,
        finished,
        server_log: std::fs::read_to_string(&server_log).unwrap_or_default(),
    }
}

/// A failure report: the block that failed, its output, the server's last lines.
fn report(doc: &str, o: &Outcome) -> String {
    let (line, output) = o.outputs.last().cloned().unwrap_or_default();
    let at = if line == 0 {
        "before its first block (starting the server)".to_owned()
    } else {
        format!("in the ```sh block at line {line}")
    };
    let why = if o.status.ends_with("124") {
        format!("was stopped after {HANG_GUARD_SECS} s (a command waiting for ever?)")
    } else if o.finished {
        format!("exited with {}", o.status)
    } else {
        format!("failed ({})", o.status)
    };
    let log: Vec<&str> = o.server_log.lines().collect();
    let tail = log[log.len().saturating_sub(15)..].join("\n");
    format!(
        "{doc}: {why} {at}.\n--- output of that block ---\n{output}\n--- last lines of the \
         server's log ---\n{tail}\n"
    )
}

/// The documents: README.md and every Markdown file under docs/.
fn documents(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut docs = Vec::new();
    walk(&root.join("docs"), &mut docs);
    docs.sort();
    docs.insert(0, root.join("README.md"));
    docs
}

/// Whether the tools the documents call are installed; says which is not, and fails under
/// `CI`.
fn tools_present() -> bool {
    let missing: Vec<&str> = ["bash", "curl", "openssl", "jq", "python3"]
        .into_iter()
        .filter(|tool| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "the documentation's examples need {missing:?}, and CI must install them"
    );
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED (docs): {missing:?} not installed, so the README's shell examples were not run"
    );
    false
}

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_shell_block_of_the_docs_runs_as_written() {
    if !tools_present() {
        return;
    }
    let _port = PORT_8080.lock().await;
    let root = repository_root();
    let mut failures = Vec::new();
    let mut ran = 0;
    for doc in documents(&root) {
        let name = doc.strip_prefix(&root).unwrap().display().to_string();
        let blocks = match sh_blocks(&std::fs::read_to_string(&doc).unwrap()) {
            Ok(b) => b,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        if blocks.iter().all(|b| b.skip.is_some()) {
            continue;
        }
        let database = if blocks
            .iter()
            .any(|b| b.postgres.is_some() && b.skip.is_none())
        {
            tessera_store_postgres::testing::TestDatabase::create("docs_run").await
        } else {
            None
        };
        let url = database.as_ref().map(|d| d.url.clone());
        let blocks = blocks.clone();
        let outcome = tokio::task::spawn_blocking(move || run_document(&blocks, url.as_deref()))
            .await
            .unwrap();
        drop(database);
        ran += 1;
        if !outcome.success {
            failures.push(report(&name, &outcome));
        }
    }
    assert!(
        ran >= 2,
        "the README and docs/admin-api.md have runnable blocks"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_failing_block_is_reported_with_its_line_and_output() {
    if !tools_present() {
        return;
    }
    let _port = PORT_8080.blocking_lock();
    let doc = "# Doc\n\n```sh\nGREETING=hello\n```\n\n<!-- docs-run: skip: not runnable -->\n\
               ```sh\nexit 3\n```\n\n```sh\necho \"$GREETING from block three\"\n\
               curl -fsS http://127.0.0.1:8080/no-such-page\necho never\n```\n";
    let blocks = sh_blocks(doc).unwrap();
    assert_eq!(blocks.len(), 3);
    assert_eq!(blocks[1].skip.as_deref(), Some("not runnable"));
    let outcome = run_document(&blocks, None);
    assert!(!outcome.success);
    let text = report("doc.md", &outcome);
    assert!(text.contains("block at line 12"), "{text}");
    assert!(text.contains("hello from block three"), "{text}");
    assert!(!text.contains("never"), "{text}");
    let last_log_line = outcome.server_log.lines().last().unwrap_or_default();
    assert!(!last_log_line.is_empty(), "the server logged nothing");
    assert!(text.ends_with(&format!("{last_log_line}\n")), "{text}");
}

#[test]
fn annotations_are_checked_and_serve_lines_rewritten() {
    assert!(sh_blocks("<!-- docs-run: skp: x -->\n```sh\ntrue\n```\n")
        .unwrap_err()
        .contains("line 1: unknown annotation"));
    assert!(
        sh_blocks("<!-- docs-run: serve -->\n```sh\ntessera migrate\n```\n")
            .unwrap_err()
            .contains("line 2: a `docs-run: serve` block without")
    );
    assert!(
        sh_blocks("<!-- docs-run: skip: x -->\n\nSome text.\n```sh\ntrue\n```\n")
            .unwrap_err()
            .contains("line 1: a docs-run comment not followed by a block")
    );
    assert_eq!(
        serve_in_background("export A=1\n  tessera serve --admin-listen 127.0.0.1:8081 # x\n"),
        "export A=1\n  __docs_serve --admin-listen 127.0.0.1:8081 # x\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_block_runs_in_a_subshell_on_a_database_of_its_own() {
    if !tools_present() {
        return;
    }
    let Some(database) =
        tessera_store_postgres::testing::TestDatabase::create("docs_run_postgres").await
    else {
        return;
    };
    let _port = PORT_8080.lock().await;
    let doc = "```sh\nexport OUTER=1\ntessera client create --name on-sqlite --output env\n```\n\n\
               <!-- docs-run: serve -->\n<!-- docs-run: postgres: postgres://PLACEHOLDER -->\n\
               ```sh\nexport INNER=1\nexport TESSERA_DATABASE_URL=postgres://PLACEHOLDER\n\
               export TESSERA_SECRET=$(openssl rand -hex 32)\n\
               tessera serve\ntessera client create --name in-postgres --output env\n\
               tessera client list > list.txt\ngrep -q in-postgres list.txt\n```\n\n\
               ```sh\n[ -z \"${INNER:-}\" ] && [ \"$OUTER\" = 1 ]\n\
               tessera client list > list.txt\ngrep -q on-sqlite list.txt\n\
               if grep -q in-postgres list.txt; then exit 1; fi\n\
               curl -fsS http://127.0.0.1:8080/health/ready\necho checked\n```\n";
    let blocks = sh_blocks(doc).unwrap();
    let url = database.url.clone();
    let outcome = tokio::task::spawn_blocking(move || run_document(&blocks, Some(&url)))
        .await
        .unwrap();
    assert!(outcome.success, "{}", report("doc.md", &outcome));
    let last = &outcome.outputs.last().unwrap().1;
    assert!(last.contains("checked"), "{last}");
}
