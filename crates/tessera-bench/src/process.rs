//! Owns child-process plumbing for the servers under test: picking a free
//! port, a guard that stops a child with SIGTERM (falling back to SIGKILL),
//! and reading a process's resident memory from `/proc`.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// How long a child gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A free local port: binds 127.0.0.1:0 and releases it.
pub fn free_local_addr() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    let addr = listener.local_addr().context("local_addr")?;
    drop(listener);
    Ok(addr)
}

/// A running child process that is stopped (SIGTERM, then SIGKILL) when
/// [`ChildGuard::stop`] is called or the guard is dropped.
pub struct ChildGuard {
    name: String,
    child: Option<Child>,
}

impl ChildGuard {
    pub fn new(name: impl Into<String>, child: Child) -> Self {
        Self {
            name: name.into(),
            child: Some(child),
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `Some(description)` if the child already exited.
    pub fn exited(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(err) => Some(format!("unknown state ({err})")),
        }
    }

    /// Resident set size of the child, in KiB.
    pub fn rss_kib(&self) -> Result<u64> {
        let pid = self.pid().context("process already stopped")?;
        proc_status_kib(pid, "VmRSS")
    }

    /// Peak resident set size of the child, in KiB.
    pub fn peak_rss_kib(&self) -> Result<u64> {
        let pid = self.pid().context("process already stopped")?;
        proc_status_kib(pid, "VmHWM")
    }

    /// Sends SIGTERM and waits for the child to exit (SIGKILL after a grace
    /// period). Returns the exit status description.
    pub fn stop(&mut self) -> Result<String> {
        let Some(mut child) = self.child.take() else {
            return Ok("already stopped".to_owned());
        };
        if let Some(status) = child.try_wait().context("try_wait")? {
            return Ok(format!("had already exited: {status}"));
        }
        let term = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !matches!(term, Ok(s) if s.success()) {
            child.kill().context("killing child")?;
        }
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            if let Some(status) = child.try_wait().context("try_wait")? {
                return Ok(status.to_string());
            }
            if Instant::now() >= deadline {
                child.kill().context("killing child")?;
                let status = child.wait().context("waiting for child")?;
                bail!(
                    "{} did not exit within {:?} of SIGTERM; killed ({status})",
                    self.name,
                    STOP_GRACE
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.child.is_some() {
            if let Err(err) = self.stop() {
                eprintln!("warning: stopping {}: {err:#}", self.name);
            }
        }
    }
}

/// Reads a `kB` field (e.g. `VmRSS`) from `/proc/PID/status`.
pub fn proc_status_kib(pid: u32, field: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    for line in status.lines() {
        let Some(rest) = line.strip_prefix(field) else {
            continue;
        };
        let Some(rest) = rest.strip_prefix(':') else {
            continue;
        };
        let number = rest.trim().trim_end_matches("kB").trim();
        return number
            .parse()
            .with_context(|| format!("parsing {field} value {number:?}"));
    }
    bail!("{field} not found in {path}")
}
