//! The budget of password checks.
//!
//! Owns [`PasswordChecks`]: Argon2 checks (19 MiB and a core each) run on blocking threads a
//! few at a time, a few more wait, and the rest are refused at once, so that a burst of
//! sign-ins costs bounded memory and leaves the cores to the other endpoints.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;

/// The budget of password checks: at most `concurrent` Argon2 checks run at once (each
/// works in 19 MiB and a core), at most `queued` more wait for one to finish, and the rest
/// are refused at once, so a burst of sign-ins costs bounded memory and leaves the cores to
/// the other endpoints.
#[derive(Debug)]
pub struct PasswordChecks {
    running: Arc<Semaphore>,
    admitted: Arc<AtomicUsize>,
    max_admitted: usize,
}

/// Decrements the admitted count when the request is done (or dropped).
struct Admitted(Arc<AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl PasswordChecks {
    /// `concurrent` checks at once (at least 1), `queued` more waiting.
    pub fn new(concurrent: usize, queued: usize) -> Self {
        let concurrent = concurrent.max(1);
        tessera_core::password::keep_buffers(concurrent);
        Self {
            running: Arc::new(Semaphore::new(concurrent)),
            admitted: Arc::new(AtomicUsize::new(0)),
            max_admitted: concurrent.saturating_add(queued),
        }
    }

    /// Runs `check` on a blocking thread when a slot is free; `None` at once when every slot
    /// and every place in the queue is taken. A check that started runs to its end even if
    /// the request is dropped, and holds its slot until then.
    pub async fn run(&self, check: impl FnOnce() -> bool + Send + 'static) -> Option<bool> {
        let before = self.admitted.fetch_add(1, Ordering::AcqRel);
        let admitted = Admitted(self.admitted.clone());
        if before >= self.max_admitted {
            return None;
        }
        let permit = self.running.clone().acquire_owned().await.ok()?;
        let result = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            check()
        })
        .await
        .ok();
        drop(admitted);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_the_running_and_queued_checks_the_rest_are_refused_and_the_queued_one_runs() {
        let checks = Arc::new(PasswordChecks::new(1, 1));
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        // The first check holds the only slot until released.
        let first = {
            let checks = checks.clone();
            tokio::spawn(async move {
                checks
                    .run(move || {
                        started_tx.send(()).unwrap();
                        release_rx.recv().unwrap();
                        false
                    })
                    .await
            })
        };
        tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
            .await
            .unwrap();
        // The second waits in the queue.
        let second = {
            let checks = checks.clone();
            tokio::spawn(async move { checks.run(|| true).await })
        };
        while checks.admitted.load(Ordering::Acquire) < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The third finds slot and queue full: refused at once, without running.
        assert_eq!(checks.run(|| unreachable!()).await, None);
        assert!(!second.is_finished());
        release_tx.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Some(false));
        assert_eq!(second.await.unwrap(), Some(true), "the queued check ran");
        // All done: there is room again.
        assert_eq!(checks.run(|| true).await, Some(true));
    }
}
