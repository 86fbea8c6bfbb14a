//! A node's incarnation: a number chosen once per process start that every sealed frame carries.
//!
//! Receivers accept a sender's frames only under the newest incarnation they have seen from it, and the
//! incarnation is part of the nonce, so it must grow with every start and never repeat. It is
//! `max(wall clock in ms, previous incarnation + 1)`, the previous one kept in `<data_dir>/incarnation`
//! and written (synced) before any frame is sent:
//! - the file alone would make it strictly increasing, but a node that lost its data directory would
//!   start again from 1 and every peer would refuse it as an old incarnation until they restarted;
//! - the clock alone would survive that, but a clock stepped back (NTP, a VM restored) could repeat an
//!   incarnation, and with it nonces.
//!
//! Together: strictly increasing while the directory lives, and still ahead of what peers remember
//! after a lost directory as long as the clock is not behind the previous start.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The file in the data directory that keeps the last incarnation.
pub const INCARNATION_FILE: &str = "incarnation";

/// One start of one node. Ordered: a larger one is a later start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Incarnation(pub u64);

#[derive(Debug, thiserror::Error)]
#[error("cannot record the node's incarnation in {path}: {source}")]
pub struct IncarnationError {
    path: PathBuf,
    source: std::io::Error,
}

impl Incarnation {
    /// Chooses this start's incarnation and records it in `data_dir` (which must exist).
    pub fn next(data_dir: &Path, now: SystemTime) -> Result<Self, IncarnationError> {
        let path = data_dir.join(INCARNATION_FILE);
        let previous = match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse::<u64>().unwrap_or_else(|_| {
                // Rewriting it is safe: the clock still orders this start after the earlier ones.
                tracing::warn!(path = %path.display(), "unreadable incarnation file; starting from the clock");
                0
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => return Err(IncarnationError { path, source }),
        };
        let clock = now
            .duration_since(UNIX_EPOCH)
            .map(|since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let Some(after_previous) = previous.checked_add(1) else {
            let source = std::io::Error::other("it holds the largest possible incarnation");
            return Err(IncarnationError { path, source });
        };
        let incarnation = Incarnation(clock.max(after_previous));
        write_synced(&path, incarnation.0).map_err(|source| IncarnationError { path, source })?;
        Ok(incarnation)
    }
}

/// Writes through a temporary file and a rename, so a crash leaves the old value or the new one.
fn write_synced(path: &Path, value: u64) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temporary)?;
    writeln!(file, "{value}")?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(millis)
    }

    #[test]
    fn a_first_start_takes_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            Incarnation::next(dir.path(), at(5_000)).unwrap(),
            Incarnation(5_000)
        );
    }

    #[test]
    fn every_start_is_later_than_the_previous_one_even_when_the_clock_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = Incarnation::next(dir.path(), at(5_000)).unwrap();
        let same_millisecond = Incarnation::next(dir.path(), at(5_000)).unwrap();
        let clock_back = Incarnation::next(dir.path(), at(1_000)).unwrap();
        let later = Incarnation::next(dir.path(), at(9_000)).unwrap();
        assert_eq!(
            [first, same_millisecond, clock_back, later],
            [
                Incarnation(5_000),
                Incarnation(5_001),
                Incarnation(5_002),
                Incarnation(9_000)
            ]
        );
    }

    #[test]
    fn an_unreadable_file_falls_back_to_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(INCARNATION_FILE), "garbage").unwrap();
        assert_eq!(
            Incarnation::next(dir.path(), at(7_000)).unwrap(),
            Incarnation(7_000)
        );
        let kept = std::fs::read_to_string(dir.path().join(INCARNATION_FILE)).unwrap();
        assert_eq!(kept.trim(), "7000");
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_the_file() {
        let error = Incarnation::next(Path::new("/nonexistent/dir"), at(1)).unwrap_err();
        assert!(
            error.to_string().contains("/nonexistent/dir/incarnation"),
            "{error}"
        );
    }
}
