//! The run directory (`--out`): held by one run at a time through an OS file
//! lock on `DIR/.lock`, and cleared, once held, of the temporary files a killed
//! save leaves behind (`checkpoint.tmp<pid>`, `metrics.tmp<pid>`). A fresh run
//! never replaces a run's files unless told to ([`RunDir::claim`]).

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The files a run writes into its directory.
const RUN_FILES: [&str; 3] = ["checkpoint.safetensors", "metrics.csv", "loss.png"];

/// A run directory this run holds; the lock is released when it is dropped
/// (or when the process dies, however it dies).
pub(crate) struct RunDir {
    dir: PathBuf,
    _lock: File,
    /// The temporary files of a killed save that [`RunDir::lock`] removed.
    removed: Vec<String>,
}

impl RunDir {
    /// Creates `dir` if needed, takes its lock (refusing a directory another run
    /// holds) and removes stale temporary files.
    pub(crate) fn lock(dir: &Path) -> Result<RunDir> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| Error::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let lock_path = dir.join(".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Error::invalid(
                    dir.display().to_string(),
                    format!(
                        "another run is writing to this directory (it holds {}); wait for it or choose another --out",
                        lock_path.display()
                    ),
                ))
            }
            Err(TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
        }
        let mut removed = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let path = entry.map_err(io(dir))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with("checkpoint.tmp") || name.starts_with("metrics.tmp") {
                removed.push(name.to_string());
                std::fs::remove_file(&path).map_err(io(&path))?;
            }
        }
        removed.sort();
        Ok(RunDir {
            dir: dir.to_path_buf(),
            _lock: lock,
            removed,
        })
    }

    /// What [`RunDir::lock`] found of a killed save and removed, as a note for
    /// the user (None when nothing was left).
    pub(crate) fn removed_note(&self) -> Option<String> {
        (!self.removed.is_empty()).then(|| {
            format!(
                "removed the temporary files of an interrupted save: {}",
                self.removed.join(", ")
            )
        })
    }

    /// Makes the directory ready for a run: a run resumed from it (`resume`)
    /// takes it as it is; a fresh one is refused when the directory holds a run's files,
    /// unless `overwrite`, which removes them first.
    pub(super) fn claim(&self, resume: bool, overwrite: bool) -> Result<()> {
        self.claim_files(resume, overwrite, &RUN_FILES)
    }

    /// [`RunDir::claim`] for a run that writes `files`, its checkpoint first.
    pub(crate) fn claim_files(&self, resume: bool, overwrite: bool, run_files: &[&str]) -> Result<()> {
        if resume {
            return Ok(());
        }
        let present: Vec<&str> = run_files
            .iter()
            .copied()
            .filter(|f| self.dir.join(f).exists())
            .collect();
        if present.is_empty() {
            return Ok(());
        }
        if !overwrite {
            let dir = self.dir.display();
            let files = present.join(", ");
            // A run killed before its first save leaves metrics but nothing to resume.
            let msg = if present.contains(&run_files[0]) {
                format!("{dir} holds a run ({files}): continue it with --resume {dir}, or replace it with --overwrite")
            } else {
                format!("{dir} holds a run that saved no checkpoint ({files}): nothing to resume; replace it with --overwrite")
            };
            return Err(Error::invalid("out", msg));
        }
        for name in present {
            let path = self.dir.join(name);
            std::fs::remove_file(&path).map_err(|source| Error::Write {
                path: path.display().to_string(),
                source,
            })?;
        }
        Ok(())
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }
}
