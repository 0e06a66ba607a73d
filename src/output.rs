//! Where outputs are written: a file is replaced only when it is a regular file
//! ([`check_file`]), a file is written whole or not at all ([`write_atomic`]), a
//! directory of files is replaced as a whole ([`replace_dir`]): a kill at any
//! instant leaves the old set of files or the new one, never a mix; and a run's
//! CSV log is cut back to its checkpoint on resume (`open_log`).

use std::path::{Path, PathBuf};

use crate::error::{file_kind, Error, Result};

/// Refuses `path` as an output to replace when something other than a regular
/// file is there: a directory, a device, a FIFO, a socket or a symbolic link
/// (renaming over it would replace the link, not what it points to).
pub fn check_file(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_file() => Err(Error::invalid(
            path.display().to_string(),
            format!(
                "is {}, not a regular file: sfnap replaces regular files only (choose another output)",
                file_kind(&m.file_type())
            ),
        )),
        _ => Ok(()),
    }
}

/// Renames `staged` to `path` (checked with [`check_file`] first) and syncs the
/// directory, so the new name survives a power loss too; `staged` is removed
/// when it fails.
pub fn commit(staged: &Path, path: &Path) -> Result<()> {
    let result = check_file(path).and_then(|()| {
        std::fs::rename(staged, path)
            .and_then(|()| sync_parent(path))
            .map_err(|source| Error::Write {
                path: path.display().to_string(),
                source,
            })
    });
    if result.is_err() {
        let _ = std::fs::remove_file(staged);
    }
    result
}

/// Syncs the directory holding `path` (Unix; nothing elsewhere).
pub(crate) fn sync_parent(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(parent(path))?.sync_all()?;
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The directory holding `path` (`.` for a bare name).
fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Makes `dir` hold exactly `files` (name, bytes), replacing what it held as a
/// whole (its parent directories are created). `dir` must be absent, or a directory holding nothing but files of
/// those names (one this function made); anything else is refused.
///
/// Replacements of one `DIR` take turns: each holds an OS lock on `.DIR.lock`
/// beside it (a file that stays) from start to end, so no other one is running
/// when it looks for what a killed one left. The files are written and synced
/// into `DIR.tmp-PID` beside it; the old directory is renamed to `DIR.old-PID`,
/// the new one into place, and the old one removed. A kill leaves `DIR` with
/// the old files or the new ones; killed between the two renames, `DIR` is
/// absent and `DIR.old-PID` holds the old files: the next call first puts them
/// back (and removes the temporaries a killed replacement left).
pub fn replace_dir(dir: &Path, files: &[(&str, &[u8])]) -> Result<()> {
    let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
    let write_err = |path: &Path| {
        let path = path.display().to_string();
        move |source| Error::Write { path, source }
    };
    check_dir(dir, &names)?; // before the lock file is made beside what is refused
    std::fs::create_dir_all(parent(dir)).map_err(write_err(parent(dir)))?;
    let lock_path = beside(dir, "lock", None);
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(write_err(&lock_path))?;
    lock.lock().map_err(write_err(&lock_path))?;
    recover(dir, &names)?;
    check_dir(dir, &names)?;
    let tmp = beside(dir, "tmp", Some(std::process::id()));
    let old = beside(dir, "old", Some(std::process::id()));
    let written = write_all(&tmp, files).map_err(write_err(&tmp));
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let had_old = dir.exists();
    if had_old {
        if let Err(source) = std::fs::rename(dir, &old) {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(write_err(dir)(source));
        }
    }
    if let Err(source) = std::fs::rename(&tmp, dir) {
        if had_old {
            let _ = std::fs::rename(&old, dir);
        }
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(write_err(dir)(source));
    }
    sync_parent(dir).map_err(write_err(dir))?;
    if had_old {
        std::fs::remove_dir_all(&old).map_err(write_err(&old))?;
    }
    Ok(())
}

/// `DIR.{what}-{pid}` beside `dir`, or `.DIR.{what}` without a pid.
fn beside(dir: &Path, what: &str, pid: Option<u32>) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent(dir).join(match pid {
        Some(pid) => format!("{name}.{what}-{pid}"),
        None => format!(".{name}.{what}"),
    })
}

/// Creates `tmp` with `files`, each synced, and syncs it.
fn write_all(tmp: &Path, files: &[(&str, &[u8])]) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir(tmp)?;
    for (name, bytes) in files {
        let mut f = std::fs::File::create(tmp.join(name))?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    #[cfg(unix)]
    std::fs::File::open(tmp)?.sync_all()?;
    Ok(())
}

/// Refuses `dir` unless it is absent or a directory holding only files named in `names`.
fn check_dir(dir: &Path, names: &[&str]) -> Result<()> {
    let m = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(_) => return Ok(()),
    };
    let shown = dir.display().to_string();
    if !m.is_dir() {
        return Err(Error::invalid(
            shown,
            format!(
                "is {}, not a directory (choose another output)",
                file_kind(&m.file_type())
            ),
        ));
    }
    if let Some(other) = foreign(dir, names) {
        return Err(Error::invalid(
            shown,
            format!(
                "holds `{other}`, which is not one of {}: it is replaced as a whole, so it must hold nothing \
                 else (choose a new directory)",
                names.join(", ")
            ),
        ));
    }
    Ok(())
}

/// The first entry of `dir` that is not a regular file named in `names`
/// (an unreadable directory counts as one).
fn foreign(dir: &Path, names: &[&str]) -> Option<String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => return Some(e.to_string()),
    };
    for entry in entries {
        let Ok(entry) = entry else {
            return Some("an unreadable entry".into());
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        let file = entry.file_type().is_ok_and(|t| t.is_file());
        if !file || !names.contains(&name.as_str()) {
            return Some(name);
        }
    }
    None
}

/// Puts back the old directory of a replacement killed between its renames,
/// and removes the temporaries of killed replacements (only directories
/// holding nothing but files named in `names`). Called under the lock, when no
/// other replacement of `dir` is running.
fn recover(dir: &Path, names: &[&str]) -> Result<()> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Ok(entries) = std::fs::read_dir(parent(dir)) else {
        return Ok(());
    };
    let mut stray: Vec<(String, PathBuf)> = Vec::new();
    for entry in entries.flatten() {
        let entry_name = entry.file_name().to_string_lossy().into_owned();
        for what in ["old", "tmp"] {
            let pid = entry_name
                .strip_prefix(&format!("{name}.{what}-"))
                .and_then(|p| p.parse::<u32>().ok());
            if pid.is_some() && foreign(&entry.path(), names).is_none() {
                stray.push((what.to_string(), entry.path()));
            }
        }
    }
    // The old files first: put back when the directory is gone.
    stray.sort();
    for (what, path) in stray {
        let io = |source| Error::Write {
            path: path.display().to_string(),
            source,
        };
        if what == "old" && !dir.exists() {
            std::fs::rename(&path, dir).map_err(io)?;
        } else {
            std::fs::remove_dir_all(&path).map_err(io)?;
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` through a synced temporary file and a rename; on
/// Unix the directory is synced after the rename, so the new name survives a
/// power loss too. Anything at `path` but a regular file is refused
/// ([`check_file`]), before anything is written.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    check_file(path)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_parent(path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|source| Error::Write {
        path: path.display().to_string(),
        source,
    })
}

/// Opens the CSV log at `path` (first line `header`) for appending rows.
///
/// A new run (`resumed` false) starts a new file with its header. A resumed run
/// keeps the complete rows, of the header's width, that `keep` accepts given
/// their first field (the step) and all their fields: the rows an
/// uninterrupted run had written when it saved the checkpoint it resumes from.
/// The file is rewritten atomically with them, so rows a killed run wrote after
/// its last checkpoint, and a torn last line (a full disk), are dropped instead
/// of staying out of order. Also returns how many lines were dropped so.
pub(crate) fn open_log(
    path: &Path,
    header: &str,
    resumed: bool,
    keep: impl Fn(u64, &[&str]) -> bool,
) -> Result<(std::fs::File, usize)> {
    let (kept, dropped) = if resumed && path.exists() {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        let kept = complete_rows(&text, header, keep);
        (kept.clone(), text.lines().skip(1).count() - kept.lines().count())
    } else {
        (String::new(), 0)
    };
    write_atomic(path, format!("{header}\n{kept}").as_bytes())?;
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|source| Error::Write {
            path: path.display().to_string(),
            source,
        })?;
    Ok((file, dropped))
}

/// The rows of the CSV `text` (after its header line) that end with a newline,
/// have `header`'s number of fields, start with a step number and that `keep`
/// accepts; each with its newline.
pub(crate) fn complete_rows(text: &str, header: &str, keep: impl Fn(u64, &[&str]) -> bool) -> String {
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    let fields = header.split(',').count();
    complete
        .lines()
        .skip(1)
        .filter(|line| {
            let v: Vec<&str> = line.split(',').collect();
            let Some(step) = v.first().and_then(|s| s.parse::<u64>().ok()) else {
                return false;
            };
            v.len() == fields && keep(step, &v)
        })
        .map(|line| format!("{line}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sfnap-output-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn read(dir: &Path, name: &str) -> String {
        std::fs::read_to_string(dir.join(name)).unwrap()
    }

    /// The pid of a killed replacement.
    const GONE: Option<u32> = Some(4_194_999);

    /// The entries of `dir` by name.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_directory_is_replaced_as_a_whole() {
        let root = scratch("replace");
        let out = root.join("export");
        replace_dir(&out, &[("a", b"old a"), ("b", b"old b")]).unwrap();
        replace_dir(&out, &[("a", b"new a"), ("b", b"new b")]).unwrap();
        assert_eq!((read(&out, "a"), read(&out, "b")), ("new a".into(), "new b".into()));
        assert_eq!(
            names(&root),
            [".export.lock", "export"],
            "only the directory and its lock remain"
        );
        std::fs::remove_dir_all(&root).ok();
    }

    /// Killed between its renames: the old pair is aside, the new one complete;
    /// the next replacement puts the old one back before it starts.
    #[test]
    fn a_kill_between_the_renames_leaves_the_old_pair() {
        let root = scratch("killed");
        let out = root.join("export");
        let (old, tmp) = (beside(&out, "old", GONE), beside(&out, "tmp", GONE));
        write_all(&old, &[("a", b"old a"), ("b", b"old b")]).unwrap();
        write_all(&tmp, &[("a", b"new a"), ("b", b"new b")]).unwrap();
        recover(&out, &["a", "b"]).unwrap();
        assert_eq!((read(&out, "a"), read(&out, "b")), ("old a".into(), "old b".into()));
        assert!(!old.exists() && !tmp.exists());
        std::fs::remove_dir_all(&root).ok();
    }

    /// Killed while writing, or after the new pair is in place: the directory
    /// holds one pair, and the temporaries go.
    #[test]
    fn a_kill_before_or_after_the_renames_leaves_one_pair() {
        let root = scratch("before-after");
        let out = root.join("export");
        write_all(&out, &[("a", b"new a"), ("b", b"new b")]).unwrap();
        write_all(&beside(&out, "old", GONE), &[("a", b"old a"), ("b", b"old b")]).unwrap();
        write_all(&beside(&out, "tmp", Some(4_195_000)), &[("a", b"half")]).unwrap();
        replace_dir(&out, &[("a", b"next a"), ("b", b"next b")]).unwrap();
        assert_eq!((read(&out, "a"), read(&out, "b")), ("next a".into(), "next b".into()));
        assert_eq!(names(&root), [".export.lock", "export"]);
        std::fs::remove_dir_all(&root).ok();
    }

    /// Replacements of one directory take turns (here threads of one process,
    /// which would otherwise share their temporaries' names): each ends with a
    /// whole pair of its own, and nothing else is left.
    #[test]
    fn replacements_take_turns() {
        let root = scratch("turns");
        let out = root.join("export");
        std::thread::scope(|s| {
            for t in 0..4 {
                let out = &out;
                s.spawn(move || {
                    for i in 0..10 {
                        let v = format!("{t}-{i}");
                        replace_dir(out, &[("a", v.as_bytes()), ("b", v.as_bytes())]).unwrap();
                    }
                });
            }
        });
        assert_eq!(read(&out, "a"), read(&out, "b"));
        assert_eq!(names(&root), [".export.lock", "export"]);
        std::fs::remove_dir_all(&root).ok();
    }

    #[test]
    fn what_was_not_made_here_is_refused() {
        let root = scratch("refused");
        let file = root.join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(replace_dir(&file, &[("a", b"")])
            .unwrap_err()
            .to_string()
            .contains("not a directory"));
        let run = root.join("run");
        std::fs::create_dir(&run).unwrap();
        std::fs::write(run.join("metrics.csv"), b"x").unwrap();
        let e = replace_dir(&run, &[("a", b"")]).unwrap_err().to_string();
        assert!(e.contains("holds `metrics.csv`"), "{e}");
        assert!(run.join("metrics.csv").exists());
        assert!(check_file(&root).unwrap_err().to_string().contains("a directory"));
        assert!(check_file(&file).is_ok());
        std::fs::remove_dir_all(&root).ok();
    }
}
