//! Where runs execute: a tokio runtime of its own, apart from the one that accepts requests,
//! whose threads run at a lower CPU priority, and a bound on how many steps run at once.
//!
//! Why: accepting an event is cheap (a group-committed row), running it is not (folders, a
//! process or a container, the run's writes). On one machine they share the cores; when a burst
//! of webhooks arrives, the acknowledgements must not wait behind the runs the burst starts.
//! Accepted events are durable, so runs may lag behind the intake and catch up afterwards.
//!
//! Invariants: every run's driver, recorder and step runtime calls are spawned on
//! [`Workers::handle`]; the request runtime only accepts, answers and writes. At most
//! `max_parallel_steps` steps execute at once (they are claimed from the job queue,
//! [`crate::queue`]; a step waiting there is `running` but has not started its program);
//! approval steps and waits hold no slot.
//!
//! Scratch: each run gets a folder (its steps' `spec.json`, scripts and `outputs/`), removed
//! when the run ends. Nothing in it needs to survive a crash (outputs are stored when a step
//! ends; a cut-off run is failed at the next start), so by default it lives on a memory file
//! system (`/dev/shm`, when it allows executing files) rather than beside the database: creating
//! files there costs a fraction of a journaling file system's `mkdir`, and it does not queue
//! behind the database's own fsyncs. Spec files hold secret values; on a memory file system they
//! never reach a disk.
//!
//! Priority: the worker threads set their nice value (Linux: a per-thread attribute), so under
//! contention the request threads get most of the CPU. Programs of the process runtime, forked
//! from these threads, inherit that niceness; containers (started by the Docker engine) do not.

use std::path::{Path, PathBuf};

use tokio::runtime::{Handle, Runtime};

/// How the worker runtime is sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Threads of the worker runtime.
    pub threads: usize,
    /// The nice value of its threads (0 keeps the server's own priority).
    pub nice: i32,
    /// Steps that may execute at once.
    pub max_parallel_steps: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        WorkerConfig {
            threads: cores,
            nice: 10,
            max_parallel_steps: 32 * cores,
        }
    }
}

/// Where runs' scratch folders go: `explicit` when given, else a folder on `/dev/shm` named after
/// the data directory (so two servers on one machine do not meet), else `runs/` in the data
/// directory.
pub fn scratch_root(data_dir: &Path, explicit: Option<&Path>) -> PathBuf {
    if let Some(dir) = explicit {
        return dir.to_owned();
    }
    let shm = Path::new("/dev/shm");
    if memory_fs_usable(shm) {
        use sha2::Digest;
        let absolute = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_owned());
        let digest = sha2::Sha256::digest(absolute.as_os_str().as_encoded_bytes());
        let tag: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        let root = shm.join(format!("gantry-{tag}"));
        if private_dir(&root) {
            return root;
        }
        tracing::warn!(
            folder = %root.display(),
            "the scratch folder on /dev/shm exists but is not a private folder of this user; \
             using the data directory"
        );
    }
    data_dir.join("runs")
}

/// Makes `dir` a folder only this user can enter, or checks that it already is one. The name
/// on a shared file system is predictable, so a folder (or a link) someone else put there first
/// must not be used: spec files with secret values go inside.
#[cfg(unix)]
fn private_dir(dir: &Path) -> bool {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(_) => return false,
    }
    // Not following a link: the folder itself must be ours, and closed to others.
    match std::fs::symlink_metadata(dir) {
        Ok(meta) => {
            meta.file_type().is_dir()
                && meta.uid() == rustix::process::geteuid().as_raw()
                && meta.mode() & 0o077 == 0
        }
        Err(_) => false,
    }
}

#[cfg(not(unix))]
fn private_dir(_dir: &Path) -> bool {
    false
}

/// A writable folder on a file system that allows executing files (step scripts run from it).
#[cfg(target_os = "linux")]
fn memory_fs_usable(dir: &Path) -> bool {
    use rustix::fs::{Access, StatVfsMountFlags};
    match rustix::fs::statvfs(dir) {
        Ok(fs) => {
            !fs.f_flag.contains(StatVfsMountFlags::NOEXEC)
                && !fs.f_flag.contains(StatVfsMountFlags::RDONLY)
                && rustix::fs::access(dir, Access::WRITE_OK).is_ok()
        }
        Err(_) => false,
    }
}

#[cfg(not(target_os = "linux"))]
fn memory_fs_usable(_dir: &Path) -> bool {
    false
}

/// The worker runtime; dropping it stops its tasks (runs in flight are then resolved at the
/// next start, as after a crash).
pub struct Workers {
    runtime: Option<Runtime>,
    handle: Handle,
}

impl Workers {
    pub fn start(config: WorkerConfig) -> std::io::Result<Workers> {
        let nice = config.nice;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads.max(1))
            .thread_name("gantry-worker")
            .on_thread_start(move || lower_priority(nice))
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        Ok(Workers {
            runtime: Some(runtime),
            handle,
        })
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Dropped from async code (a server stopping); do not block its thread.
            runtime.shutdown_background();
        }
    }
}

#[cfg(target_os = "linux")]
fn lower_priority(nice: i32) {
    if nice == 0 {
        return;
    }
    // `setpriority` on a thread id changes that thread only (Linux).
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), nice) {
        tracing::debug!(nice, error = %e, "could not lower a worker thread's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(_nice: i32) {}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn an_explicit_scratch_folder_wins_and_the_default_is_per_data_directory() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let chosen = Path::new("/somewhere/else");
        assert_eq!(scratch_root(a.path(), Some(chosen)), chosen);
        let (ra, rb) = (scratch_root(a.path(), None), scratch_root(b.path(), None));
        assert_ne!(ra, rb, "two data directories share no scratch folder");
        assert_eq!(ra, scratch_root(a.path(), None), "the choice is stable");
        if !ra.starts_with("/dev/shm") {
            assert_eq!(ra, a.path().join("runs"));
        }
        // The default on /dev/shm is created (private) by the choice; leave nothing behind.
        for r in [ra, rb] {
            if r.starts_with("/dev/shm") {
                std::fs::remove_dir(&r).unwrap();
            }
        }
    }

    #[test]
    fn a_scratch_folder_open_to_others_or_a_link_is_not_used() {
        use std::os::unix::fs::PermissionsExt;
        let base = tempfile::tempdir().unwrap();
        let fresh = base.path().join("fresh");
        assert!(private_dir(&fresh), "created private");
        assert_eq!(
            std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert!(private_dir(&fresh), "and accepted again");
        let open = base.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(!private_dir(&open), "a folder others can enter");
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&fresh, &link).unwrap();
        assert!(!private_dir(&link), "a link, even to a private folder");
    }

    #[test]
    fn worker_threads_run_tasks_and_stop_when_dropped() {
        let workers = Workers::start(WorkerConfig {
            threads: 1,
            nice: 5,
            max_parallel_steps: 1,
        })
        .unwrap();
        let name = workers
            .handle()
            .block_on(async {
                tokio::spawn(async { std::thread::current().name().map(str::to_owned) }).await
            })
            .unwrap();
        // block_on runs on the caller's thread; the spawned task on a worker thread.
        assert_eq!(name.as_deref(), Some("gantry-worker"));
        #[cfg(target_os = "linux")]
        {
            let nice = workers
                .handle()
                .block_on(async {
                    tokio::spawn(async {
                        rustix::process::getpriority_process(Some(rustix::thread::gettid()))
                    })
                    .await
                })
                .unwrap()
                .unwrap();
            // Raising the niceness is always allowed, so the threads have it.
            assert_eq!(nice, 5);
        }
        drop(workers);
    }
}
