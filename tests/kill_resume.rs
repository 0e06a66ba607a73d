//! `kill -9` at random points of a run, saves included, then `--resume`: the run
//! directory ends exactly as an uninterrupted run leaves it, `metrics.csv` row
//! for row and the final checkpoint byte for byte.

mod common;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{temp_dir, Rng};

/// A run short enough to be killed often, saving at every evaluation so that
/// many kills land in or near a save.
const ARGS: [&str; 14] = [
    "train",
    "--data",
    "digits",
    "--opt",
    "adamw_sf",
    "--lr",
    "0.003",
    "--steps",
    "300",
    "--eval-every",
    "10",
    "--checkpoint-every",
    "10",
    "--seed",
];

/// Starts the run into `dir`, resuming when the directory holds a checkpoint,
/// as its refusal tells a user to: a run killed before its first save left
/// metrics but nothing to resume, so the next one replaces it (`--overwrite`).
fn start(dir: &Path) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sfnap"));
    cmd.args(ARGS).arg("3").arg("--out").arg(dir);
    if dir.join("checkpoint.safetensors").exists() {
        cmd.arg("--resume").arg(dir);
    } else if dir.join("metrics.csv").exists() {
        cmd.arg("--overwrite");
    }
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn finish(dir: &Path) {
    let status = start(dir).wait().unwrap();
    assert!(status.success(), "the run into {dir:?} failed: {status}");
}

#[test]
fn kills_at_random_points_then_resume_give_the_uninterrupted_run() {
    let whole = temp_dir("whole");
    let started = Instant::now();
    finish(&whole);
    let run_time = started.elapsed();

    let killed = temp_dir("killed");
    let mut rng = Rng::new(7);
    let (mut kills, mut torn_saves) = (0, 0);
    for _ in 0..10 {
        let mut child = start(&killed);
        // Anywhere in the first third of a whole run's time (start-up included):
        // each invocation gets a little further, and is killed before it ends.
        let wait = run_time.mul_f64(rng.uniform() / 3.0);
        std::thread::sleep(wait.max(Duration::from_millis(20)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
        let names: Vec<String> = std::fs::read_dir(&killed)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        torn_saves += names.iter().filter(|n| n.starts_with("checkpoint.tmp")).count();
    }
    finish(&killed);
    println!("{kills} kills, {torn_saves} of them during a save; a whole run takes {run_time:?}");
    assert!(kills >= 4, "only {kills} of the runs were still going when killed");

    let csv = |dir: &Path| std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let (a, b) = (csv(&whole), csv(&killed));
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        assert_eq!(x, y, "metrics.csv row {i} differs");
    }
    assert_eq!(a.lines().count(), b.lines().count(), "metrics.csv row counts differ");
    let ckpt = |dir: &Path| std::fs::read(dir.join("checkpoint.safetensors")).unwrap();
    assert!(ckpt(&whole) == ckpt(&killed), "the final checkpoints differ");
    let leftovers: Vec<_> = std::fs::read_dir(&killed)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    std::fs::remove_dir_all(&whole).ok();
    std::fs::remove_dir_all(&killed).ok();
}
