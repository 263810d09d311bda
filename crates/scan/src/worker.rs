//! Who a worker is, and taking back the claims of this host's dead workers.
//!
//! A worker is named `host:pid` by default ([`default_name`]). A claim held by a worker of
//! this host whose process no longer exists (killed, crashed) need not wait for its lease to
//! expire: [`release_dead_local_workers`] returns it to the queue at once when the run is
//! resumed. Workers elsewhere, and workers given a name without a pid, are left to their
//! leases (the store's protocol, see `mtasts_store::scan`).

use std::path::Path;

use mtasts_store::{RunId, ScanStore, StoreError};

/// This process's default worker name: `host:pid`.
pub fn default_name() -> String {
    format!("{}:{}", host_name(), std::process::id())
}

/// The name of this host (`/etc/hostname`, else `$HOSTNAME`, else `worker`).
pub fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "worker".into())
}

/// The host and pid of a default worker name; `None` for any other name.
pub fn parse_name(worker: &str) -> Option<(&str, u32)> {
    let (host, pid) = worker.rsplit_once(':')?;
    Some((host, pid.parse().ok()?))
}

/// Whether `worker` is a worker of `host` (this host) whose process is gone.
fn is_dead_local(worker: &str, host: &str) -> bool {
    match parse_name(worker) {
        Some((h, pid)) => {
            h == host && pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
        }
        None => false,
    }
}

/// Claims returned to the queue from one dead worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Released {
    /// The dead worker.
    pub worker: String,
    /// Domains it held.
    pub domains: u64,
}

/// Returns to the queue every claim on `run` held by a worker of this host whose process is
/// gone, and says whose and how many.
pub async fn release_dead_local_workers(
    store: &ScanStore,
    run: RunId,
) -> Result<Vec<Released>, StoreError> {
    let host = host_name();
    let mut released = Vec::new();
    for holder in store.holders(run).await? {
        if is_dead_local(&holder, &host) {
            let domains = store.release(run, &holder).await?;
            released.push(Released { worker: holder, domains });
        }
    }
    Ok(released)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use super::*;

    /// The pid of a process that has exited (and been reaped).
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn names() {
        let me = default_name();
        assert_eq!(parse_name(&me), Some((host_name().as_str(), std::process::id())));
        assert_eq!(parse_name("A"), None);
        assert_eq!(parse_name("h:x"), None);
        assert_eq!(parse_name("a:b:12"), Some(("a:b", 12)));
    }

    #[tokio::test]
    async fn only_dead_workers_of_this_host_are_released() {
        let store = ScanStore::open("sqlite::memory:").await.unwrap();
        let run = store.create_run("-", "{}").await.unwrap();
        let domains: Vec<String> = (0..4).map(|i| format!("d{i}.example")).collect();
        store.enqueue(run, &domains).await.unwrap();
        let host = host_name();
        let dead = format!("{host}:{}", dead_pid());
        let workers = [dead.clone(), default_name(), "elsewhere:1".to_owned(), "B".to_owned()];
        for w in &workers {
            assert_eq!(store.claim(run, w, 1, Duration::from_secs(600)).await.unwrap().len(), 1);
        }
        let released = release_dead_local_workers(&store, run).await.unwrap();
        assert_eq!(released, vec![Released { worker: dead, domains: 1 }]);
        let p = store.progress(run).await.unwrap();
        assert_eq!((p.pending, p.claimed), (1, 3));
    }
}
