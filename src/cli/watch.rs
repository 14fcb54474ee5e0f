//! `warden test --watch`: run again when a test file, or a policy file one
//! names, changes. Changes come from a [`ChangeSource`]; the command polls
//! modification times ([`Poll`]), and tests script one.

use crate::testing::testfile;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// Where `--watch` learns that files changed.
pub(super) trait ChangeSource {
    /// Waits until one of `watched` changes, or a test file appears or
    /// goes under the roots; returns what changed, or `None` to stop
    /// watching.
    fn wait(&mut self, watched: &[PathBuf]) -> Option<Vec<PathBuf>>;
}

/// What a file looked like: its modification time and length, or absent.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &std::path::Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Polls the files' modification times and lengths every `interval`, and
/// the test files under `roots` (a new or removed `*.test.yaml` is a
/// change). Each wait compares with what the files looked like when the
/// previous wait returned, that is before the run in between, so a file
/// saved during a run is seen.
pub(super) struct Poll {
    roots: Vec<PathBuf>,
    interval: Duration,
    seen: Option<BTreeMap<PathBuf, Stamp>>,
}

impl Poll {
    /// Polls `roots` (the paths given to `warden test`) and the watched
    /// files.
    pub(super) fn new(roots: Vec<PathBuf>, interval: Duration) -> Poll {
        Poll { roots, interval, seen: None }
    }

    fn look(&self, watched: &[PathBuf]) -> BTreeMap<PathBuf, Stamp> {
        let found = self.roots.iter().flat_map(|r| testfile::discover(r));
        watched.iter().cloned().chain(found).map(|p| (p.clone(), stamp(&p))).collect()
    }
}

impl ChangeSource for Poll {
    fn wait(&mut self, watched: &[PathBuf]) -> Option<Vec<PathBuf>> {
        let mut seen = match self.seen.take() {
            Some(seen) => seen,
            None => self.look(watched),
        };
        // A policy file a test file names since the last run is watched
        // from now on; it did not change, it was not watched before.
        for path in watched {
            if !seen.contains_key(path) {
                seen.insert(path.clone(), stamp(path));
            }
        }
        loop {
            std::thread::sleep(self.interval);
            let now = self.look(watched);
            let mut changed: Vec<PathBuf> =
                now.iter().filter(|(path, s)| seen.get(*path) != Some(*s)).map(|(path, _)| path.clone()).collect();
            // A test file that is gone.
            changed.extend(seen.keys().filter(|p| !now.contains_key(*p) && stamp(p).is_none()).cloned());
            if !changed.is_empty() {
                changed.sort();
                changed.dedup();
                self.seen = Some(now);
                return Some(changed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_file_and_a_new_test_file_are_changes() {
        let dir = tempfile::tempdir().unwrap();
        let policy = dir.path().join("policy.yaml");
        let tests = dir.path().join("a.test.yaml");
        std::fs::write(&policy, "name: p\n").unwrap();
        std::fs::write(&tests, "policy: policy.yaml\ntests: []\n").unwrap();
        let mut poll = Poll::new(vec![dir.path().to_owned()], Duration::from_millis(10));
        let watched = vec![tests.clone(), policy.clone()];

        // Modified: a new modification time (set, so the test needs no
        // sleep longer than the file system's time resolution).
        let earlier = SystemTime::now() - Duration::from_secs(60);
        std::fs::File::options().write(true).open(&policy).unwrap().set_modified(earlier).unwrap();
        let changer = {
            let policy = policy.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                std::fs::File::options().write(true).open(&policy).unwrap().set_modified(SystemTime::now()).unwrap();
            })
        };
        // The first wait takes its baseline after the set-back time above.
        assert_eq!(poll.wait(&watched), Some(vec![policy.clone()]));
        changer.join().unwrap();

        // A new test file under the root.
        let new = dir.path().join("b.test.yaml");
        let writer = {
            let new = new.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                std::fs::write(&new, "policy: policy.yaml\ntests: []\n").unwrap();
            })
        };
        assert_eq!(poll.wait(&watched), Some(vec![new.clone()]));
        writer.join().unwrap();

        // A test file removed.
        let remover = {
            let new = new.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                std::fs::remove_file(&new).unwrap();
            })
        };
        assert_eq!(poll.wait(&watched), Some(vec![new]));
        remover.join().unwrap();
    }
}
