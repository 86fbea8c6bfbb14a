//! Persistence of the registry: one JSON file, replaced atomically after every change and reloaded on
//! start, plus the group commit that lets concurrent registrations share one write without holding the
//! registry lock across IO.
//!
//! ```text
//! register ─► lock registry: apply, generation += 1, unlock
//!          ─► lock writer ─► persisted >= my generation? ── yes ──► answer
//!                                  │ no
//!                                  ▼
//!             lock registry: encode the latest snapshot, note its generation, unlock
//!             on a blocking thread: write temp file, fsync, rename over the state file, fsync directory
//!             persisted = that generation ─► answer
//! ```
//!
//! A registration is answered only once a snapshot containing it is on disk. The writer lock orders the
//! renames, so an older snapshot can never overwrite a newer one; whoever holds it writes the newest state,
//! which covers every registration that queued behind it.
//!
//! A failed write fails the registration (the node retries) but leaves the change in memory; it stays
//! unpersisted (`persisted < generation`) until the next registration, or that retry, writes it.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::address::{NodeAddress, NodeId};
use crate::registry::{Change, Entry, Registry, Repair, Snapshot, SnapshotError};

/// Bumped when the file layout changes incompatibly.
const FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("could not create the directory {path} for the bootstrap state")]
    CreateDirectory { path: PathBuf, source: io::Error },
    #[error("could not read the bootstrap state file {path}")]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "the bootstrap state file {path} is corrupt (repair it, or move it away to start with an empty registry)"
    )]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "the bootstrap state file {path} is inconsistent (repair it, or move it away to start with an empty registry)"
    )]
    Inconsistent {
        path: PathBuf,
        source: SnapshotError,
    },
    #[error(
        "the bootstrap state file {path} has format version {found}; this build reads version {FORMAT_VERSION}"
    )]
    UnsupportedVersion { path: PathBuf, found: u32 },
    #[error("could not write the bootstrap state file {path}")]
    Write { path: PathBuf, source: io::Error },
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    #[serde(flatten)]
    registry: Snapshot,
}

/// The JSON file holding the registry.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// A missing file is an empty registry (first start); anything unreadable is an error, never silently
    /// replaced, because that would hand every node new neighbours.
    /// `k` is the degree new nodes get (a configuration value, not part of the state).
    pub fn load(&self, k: usize) -> Result<Registry, StoreError> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Registry::new(k)),
            Err(source) => return Err(self.error(|path| StoreError::Read { path, source })),
        };
        let on_disk: OnDisk = serde_json::from_slice(&bytes)
            .map_err(|source| self.error(|path| StoreError::Corrupt { path, source }))?;
        if on_disk.version != FORMAT_VERSION {
            let found = on_disk.version;
            return Err(self.error(|path| StoreError::UnsupportedVersion { path, found }));
        }
        Registry::from_snapshot(on_disk.registry, k)
            .map_err(|source| self.error(|path| StoreError::Inconsistent { path, source }))
    }

    pub fn encode(registry: &Registry) -> Vec<u8> {
        let on_disk = OnDisk {
            version: FORMAT_VERSION,
            registry: registry.snapshot(),
        };
        serde_json::to_vec_pretty(&on_disk)
            .expect("a snapshot has only string keys and plain values")
    }

    /// Replaces the file atomically: a crash leaves either the old or the new contents, never a mix.
    pub fn save(&self, contents: &[u8]) -> Result<(), StoreError> {
        self.write_atomically(contents)
            .map_err(|source| self.error(|path| StoreError::Write { path, source }))
    }

    fn write_atomically(&self, contents: &[u8]) -> io::Result<()> {
        let directory = self.directory();
        // The temporary file must live in the same directory: rename is only atomic within a filesystem.
        let mut temporary = tempfile::Builder::new()
            .prefix(".bootstrap-state.")
            .suffix(".tmp")
            .tempfile_in(directory)?;
        temporary.write_all(contents)?;
        temporary.as_file().sync_all()?;
        temporary.persist(&self.path).map_err(|error| error.error)?;
        // Make the rename itself durable; directories cannot be opened for syncing on every platform.
        if cfg!(unix) {
            File::open(directory)?.sync_all()?;
        }
        Ok(())
    }

    fn create_directory(&self) -> Result<(), StoreError> {
        let directory = self.directory();
        fs::create_dir_all(directory).map_err(|source| StoreError::CreateDirectory {
            path: directory.to_path_buf(),
            source,
        })
    }

    fn directory(&self) -> &Path {
        match self.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        }
    }

    fn error(&self, make: impl FnOnce(PathBuf) -> StoreError) -> StoreError {
        make(self.path.clone())
    }
}

struct Versioned {
    registry: Registry,
    /// Counts changes; the writer compares it with what it last put on disk.
    generation: u64,
}

/// The registry, shared by all requests, persisted before any registration is answered.
pub struct Store {
    state: Mutex<Versioned>,
    /// When each node last registered, renewed or asked for repair. In memory only: after a restart
    /// every node renews within one interval, and until then repair finds fewer live nodes.
    leases: Mutex<HashMap<NodeId, Instant>>,
    lease: Duration,
    /// The generation last written to disk; holding this lock is the right to write the file.
    persisted: tokio::sync::Mutex<u64>,
    file: Arc<StateFile>,
}

impl Store {
    /// Loads the state file (or starts empty when it does not exist), creating its directory.
    pub async fn open(path: PathBuf, k: usize, lease: Duration) -> Result<Self, StoreError> {
        let file = Arc::new(StateFile::new(path));
        let loading = Arc::clone(&file);
        let registry = tokio::task::spawn_blocking(move || {
            loading.create_directory()?;
            loading.load(k)
        })
        .await
        .map_err(|join| StoreError::Read {
            path: file.path.clone(),
            source: io::Error::other(join),
        })??;
        Ok(Self {
            state: Mutex::new(Versioned {
                registry,
                generation: 0,
            }),
            persisted: tokio::sync::Mutex::new(0),
            file,
            leases: Mutex::new(HashMap::new()),
            lease,
        })
    }

    /// How many neighbours a new node gets and a live node keeps.
    pub fn degree(&self) -> usize {
        self.lock().registry.degree()
    }

    /// How long a lease runs.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Renews `id`'s lease and joins a split it represents (see `Registry::merge_split`); `None`
    /// when `id` is not registered, else the neighbour linked, if any, once that is on disk.
    pub async fn renew(&self, id: NodeId) -> Result<Option<Option<NodeAddress>>, StoreError> {
        if !self.lock().registry.is_registered(id) {
            return Ok(None);
        }
        let (now, live) = self.renew_lease(id);
        let is_live = |node: NodeId| {
            live.get(&node)
                .is_some_and(|renewed| now.duration_since(*renewed) <= self.lease)
        };
        let (merged, generation) = {
            let mut state = self.lock();
            let merged = state.registry.merge_split(id, is_live);
            if merged.is_some() {
                state.generation += 1;
            }
            (merged, state.generation)
        };
        self.persist_up_to(generation).await?;
        Ok(Some(merged))
    }

    /// Renews `id`'s lease; answers now and a copy of every lease.
    fn renew_lease(&self, id: NodeId) -> (Instant, HashMap<NodeId, Instant>) {
        let now = Instant::now();
        let mut leases = self.leases_lock();
        leases.insert(id, now);
        (now, leases.clone())
    }

    /// Links `id` to live nodes until it hears k (see `topology::repair`), once that is on disk.
    /// `None` for an unknown id.
    pub async fn repair(
        &self,
        id: NodeId,
        reported_live: &BTreeSet<NodeId>,
    ) -> Result<Option<Repair>, StoreError> {
        let (now, live) = self.renew_lease(id);
        let is_live = |node: NodeId| {
            live.get(&node)
                .is_some_and(|renewed| now.duration_since(*renewed) <= self.lease)
        };
        let (repair, generation) = {
            let mut state = self.lock();
            let repair = state.registry.repair(id, reported_live, is_live);
            if repair
                .as_ref()
                .is_some_and(|repair| !repair.added.is_empty())
            {
                state.generation += 1;
            }
            (repair, state.generation)
        };
        self.persist_up_to(generation).await?;
        Ok(repair)
    }

    /// Registers a node and returns its neighbours once the change is on disk.
    pub async fn register(
        &self,
        address: NodeAddress,
    ) -> Result<(Change, Vec<NodeAddress>), StoreError> {
        self.leases_lock().insert(address.id, Instant::now());
        let (registration, generation) = {
            let mut state = self.lock();
            let registration = state.registry.register(address);
            if registration.change != Change::Unchanged {
                state.generation += 1;
            }
            (registration, state.generation)
        };
        self.persist_up_to(generation).await?;
        Ok((registration.change, registration.neighbors))
    }

    /// Forgets `id` and its edges once that is on disk; answers its former neighbours, or `None`
    /// when it was not registered (a repeated removal changes nothing).
    pub async fn deregister(&self, id: NodeId) -> Result<Option<BTreeSet<NodeId>>, StoreError> {
        self.leases_lock().remove(&id);
        let (removed, generation) = {
            let mut state = self.lock();
            let removed = state.registry.deregister(id);
            if removed.is_some() {
                state.generation += 1;
            }
            (removed, state.generation)
        };
        self.persist_up_to(generation).await?;
        Ok(removed)
    }

    /// Every node in registration order.
    pub fn entries(&self) -> Vec<Entry> {
        self.lock().registry.entries()
    }

    async fn persist_up_to(&self, generation: u64) -> Result<(), StoreError> {
        let mut persisted = self.persisted.lock().await;
        if *persisted >= generation {
            return Ok(());
        }
        let (contents, latest) = {
            let state = self.lock();
            (StateFile::encode(&state.registry), state.generation)
        };
        let file = Arc::clone(&self.file);
        tokio::task::spawn_blocking(move || file.save(&contents))
            .await
            .map_err(|join| StoreError::Write {
                path: self.file.path.clone(),
                source: io::Error::other(join),
            })??;
        *persisted = latest;
        tracing::debug!(generation = latest, "bootstrap state saved");
        Ok(())
    }

    fn leases_lock(&self) -> MutexGuard<'_, HashMap<NodeId, Instant>> {
        self.leases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock(&self) -> MutexGuard<'_, Versioned> {
        self.state
            .lock()
            .expect("registry lock poisoned: a registration panicked half-way")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::registry::tests::{address, replay, scenario};

    fn temporary_directory() -> tempfile::TempDir {
        tempfile::tempdir().expect("temporary directory")
    }

    #[test]
    fn a_missing_file_is_an_empty_registry() {
        let directory = temporary_directory();
        let file = StateFile::new(directory.path().join("absent.json"));
        assert_eq!(
            file.load(3).expect("missing file is fine"),
            Registry::new(3)
        );
    }

    #[test]
    fn a_corrupt_file_is_a_clear_error_naming_the_file() {
        let directory = temporary_directory();
        let path = directory.path().join("state.json");
        fs::write(&path, "{ not json").expect("write");

        let error = StateFile::new(&path).load(3).expect_err("corrupt file");

        assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
        assert!(
            error.to_string().contains(&*path.to_string_lossy()),
            "{error}"
        );
    }

    #[test]
    fn a_file_from_another_format_version_is_refused() {
        let directory = temporary_directory();
        let path = directory.path().join("state.json");
        fs::write(&path, r#"{"version": 99, "cursor": 0, "nodes": []}"#).expect("write");

        let error = StateFile::new(&path).load(3).expect_err("future format");

        assert!(
            matches!(error, StoreError::UnsupportedVersion { found: 99, .. }),
            "{error:?}"
        );
    }

    #[test]
    fn saving_leaves_no_temporary_files_behind() {
        let directory = temporary_directory();
        let file = StateFile::new(directory.path().join("state.json"));

        file.save(&StateFile::encode(&Registry::new(3)))
            .expect("save");
        file.save(&StateFile::encode(&Registry::new(3)))
            .expect("save again");

        let names: Vec<_> = fs::read_dir(directory.path())
            .expect("list")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec!["state.json"]);
    }

    #[tokio::test]
    async fn opening_creates_missing_parent_directories() {
        let directory = temporary_directory();
        let path = directory.path().join("a/b/state.json");

        let store = Store::open(path.clone(), 3, Duration::from_secs(2))
            .await
            .expect("open");
        store.register(address(1, 46_000)).await.expect("register");

        assert!(path.exists());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_registrations_are_all_on_disk_when_answered() {
        let directory = temporary_directory();
        let path = directory.path().join("state.json");
        let store = Arc::new(
            Store::open(path.clone(), 3, Duration::from_secs(2))
                .await
                .expect("open"),
        );

        let registrations: Vec<_> = (1..=40)
            .map(|id| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.register(address(id, 46_000)).await })
            })
            .collect();
        for registration in registrations {
            registration.await.expect("task").expect("register");
        }

        let reloaded = StateFile::new(&path).load(3).expect("reload");
        assert_eq!(reloaded.entries(), store.entries().as_slice());
        assert_eq!(reloaded.entries().len(), 40);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn state_survives_a_save_and_a_reload(steps in scenario()) {
            let directory = temporary_directory();
            let file = StateFile::new(directory.path().join("state.json"));
            let registry = replay(&steps);

            file.save(&StateFile::encode(&registry)).expect("save");

            prop_assert_eq!(file.load(3).expect("reload"), registry);
        }
    }
}
