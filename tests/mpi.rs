//! Data-parallel training over MPI (feature `mpi`): `mpirun -n 2 sfnap train`
//! on this machine's adapter (lavapipe in `make test`).
//!
//! # Why 2 ranks × 32 rows agree with 1 process × 64 rows, and how closely
//!
//! A 2-rank run and a 1-process run of the same global batch of B = 64 rows
//! compute every per-row quantity identically: each row's forward pass, loss
//! and backward pass (up to the weight and bias gradients) do not depend on
//! the other rows of the batch (the MLP normalizes per row), and the batch's
//! mean scales every row's loss gradient by 1/B (1/64 in one process, 1/32 on
//! each rank and then 1/2 after the all-reduce): powers of two, exact in f32.
//! What differs is one thing: a weight or bias gradient g = Σᵢ tᵢ sums the
//! rows' contributions tᵢ in another order (all 64 in one sum, or two sums of
//! 32 added). Two f32 summation orders of n terms differ by at most
//! 2·γ₍ₙ₋₁₎·Σᵢ|tᵢ|, with γₖ = k·u/(1 − k·u) and u = 2⁻²⁴ (Higham, *Accuracy
//! and Stability of Numerical Algorithms*, §4.2): about 7.5e-6 of Σ|tᵢ| for
//! n = 64. After that the runs are two trajectories of one nonlinear map from
//! starting points that close; no useful a-priori bound survives 200 steps of
//! it, so the test splits the claim in two:
//!
//! 1. **Exactness of the exchange.** The same run in one process with
//!    `--accumulate 2` (the two half batches one after another, their gradients
//!    summed on the host as g₀ + g₁, then divided by 2) performs exactly the
//!    arithmetic of the 2-rank all-reduce (one f32 addition per element, which
//!    commutes, then the same division); it must give the same checkpoint
//!    byte for byte and the same metrics.csv, for adamw_sf, sf_plus with NaP,
//!    adamw and adamw_sf with bf16 state, after 200 steps. Any error in the
//!    slicing, the bucketing, the averaging, the loss that sf_plus reads, the
//!    step order or bf16 state's rounding bits shows up as a changed bit.
//! 2. **The reordering does not matter for training.** The single-process run
//!    of 64 rows differs from it only by the reordering bounded above, at every
//!    step; its final evaluation accuracy must be within 0.5 points of the
//!    2-rank run's (the acceptance criterion of data-parallel training).
#![cfg(feature = "mpi")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sfnap-mpi-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// `mpirun` for `ranks` ranks (as root where needed; oversubscribed: this
/// machine may have fewer cores than ranks), the program still to be added.
fn launcher(ranks: usize) -> Command {
    let mut cmd = Command::new("mpirun");
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if root {
        cmd.arg("--allow-run-as-root");
    }
    cmd.args(["--oversubscribe", "-n", &ranks.to_string()]);
    cmd
}

/// `mpirun` for `ranks` ranks of sfnap with `args`.
fn mpirun(ranks: usize, args: &[&str]) -> Command {
    let mut cmd = launcher(ranks);
    cmd.arg(env!("CARGO_BIN_EXE_sfnap")).args(args);
    cmd
}

fn sfnap(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sfnap"));
    cmd.args(args);
    cmd
}

/// Runs `cmd`, panicking with its output unless it succeeds; returns stdout and stderr.
fn ok(mut cmd: Command) -> (String, String) {
    let out = cmd
        .output()
        .expect("start the command (is OpenMPI installed? `make setup`)");
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\nstdout:\n{so}\nstderr:\n{se}",
        out.status
    );
    (so, se)
}

fn train_args<'a>(opt: &'a [&'a str], steps: &'a str, out: &'a Path) -> Vec<&'a str> {
    let mut a = vec![
        "train",
        "--data",
        "digits",
        "--batch",
        "64",
        "--steps",
        steps,
        "--eval-every",
        "100",
        "--seed",
        "3",
        "--out",
        out.to_str().unwrap(),
    ];
    a.extend_from_slice(opt);
    a
}

/// The last row of metrics.csv with an evaluation: (eval loss, eval accuracy).
fn last_eval(dir: &Path) -> (f64, f64) {
    let rows = sfnap::train::read_metrics(&dir.join("metrics.csv")).unwrap();
    let last = rows.iter().rev().find(|r| r.2.is_finite()).unwrap();
    (last.2, last.3)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn two_ranks_equal_two_accumulated_slices_bit_for_bit_and_one_batch_closely() {
    let kinds: [(&str, &[&str]); 4] = [
        ("adamw_sf", &["--opt", "adamw_sf", "--lr", "0.003"]),
        ("sf_plus_nap", &["--opt", "sf_plus", "--nap"]),
        ("adamw", &["--opt", "adamw", "--lr", "0.001"]),
        // bf16 state: every rank draws the same rounding bits, so the ranks stay identical.
        (
            "adamw_sf_bf16",
            &["--opt", "adamw_sf", "--lr", "0.003", "--state-dtype", "bf16"],
        ),
    ];
    for (name, opt) in kinds {
        let started = Instant::now();
        let ranks = temp_dir(&format!("{name}-ranks"));
        let accumulated = temp_dir(&format!("{name}-acc"));
        let whole = temp_dir(&format!("{name}-whole"));
        ok(mpirun(2, &train_args(opt, "200", &ranks)));
        let mut acc = train_args(opt, "200", &accumulated);
        acc.extend(["--accumulate", "2"]);
        ok(sfnap(&acc));
        ok(sfnap(&train_args(opt, "200", &whole)));
        assert!(
            read(&ranks.join("checkpoint.safetensors")) == read(&accumulated.join("checkpoint.safetensors")),
            "{name}: the 2-rank checkpoint differs from the 2-slice accumulation's"
        );
        assert_eq!(
            read(&ranks.join("metrics.csv")),
            read(&accumulated.join("metrics.csv")),
            "{name}: metrics.csv"
        );
        let (_, acc_ranks) = last_eval(&ranks);
        let (_, acc_whole) = last_eval(&whole);
        assert!(
            (acc_ranks - acc_whole).abs() <= 0.005,
            "{name}: 2 ranks × 32 reach {:.2}%, 1 × 64 {:.2}%: more than 0.5 points apart",
            100.0 * acc_ranks,
            100.0 * acc_whole
        );
        // Rank 0 alone wrote: one metrics.csv, one checkpoint, one plot.
        for f in ["metrics.csv", "checkpoint.safetensors", "loss.png"] {
            assert!(ranks.join(f).exists(), "{name}: {f} missing");
        }
        eprintln!(
            "{name}: bit-identical to --accumulate 2; accuracy {:.2}% vs {:.2}% (1 × 64); {:.0} s",
            100.0 * acc_ranks,
            100.0 * acc_whole,
            started.elapsed().as_secs_f64()
        );
        for d in [ranks, accumulated, whole] {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

#[test]
fn a_checkpoint_written_under_mpi_resumes_under_mpi_and_refuses_other_rank_counts() {
    let opt: &[&str] = &["--opt", "sf_plus", "--nap"];
    let straight = temp_dir("resume-straight");
    ok(mpirun(2, &train_args(opt, "200", &straight)));
    let split = temp_dir("resume-split");
    let mut first = train_args(opt, "100", &split);
    first.extend(["--checkpoint-every", "100"]);
    ok(mpirun(2, &first));
    let mut second = train_args(opt, "200", &split);
    second.extend(["--resume", split.to_str().unwrap()]);
    ok(mpirun(2, &second));
    assert!(
        read(&straight.join("checkpoint.safetensors")) == read(&split.join("checkpoint.safetensors")),
        "a 2-rank run resumed at 100 steps differs from the straight 2-rank run"
    );
    assert_eq!(read(&straight.join("metrics.csv")), read(&split.join("metrics.csv")));

    // One process without slices would sum in another order: refused, naming the setting.
    let mut more = train_args(opt, "300", &split);
    more.extend(["--resume", split.to_str().unwrap()]);
    let out = sfnap(&more).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("batch_slices differs"), "{err}");
    // One process accumulating 2 slices is the same arithmetic: it continues the run.
    more.extend(["--accumulate", "2"]);
    ok(sfnap(&more));
    for d in [straight, split] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn a_killed_rank_ends_the_job_within_seconds() {
    let dir = temp_dir("kill");
    let marker = temp_dir("kill-pids");
    std::fs::create_dir_all(&marker).unwrap();
    // Each rank writes its pid where the test can find it, then trains for long.
    let script = format!(
        "echo $$ > {}/rank$OMPI_COMM_WORLD_RANK; exec {} \"$@\"",
        marker.display(),
        env!("CARGO_BIN_EXE_sfnap")
    );
    let mut cmd = launcher(2);
    cmd.args(["sh", "-c", &script, "sfnap"])
        .args(train_args(&["--opt", "adamw_sf"], "1000000", &dir))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut job = cmd.spawn().unwrap();
    let pid_file = marker.join("rank1");
    let waited = Instant::now();
    while !pid_file.exists() || std::fs::read_to_string(&pid_file).unwrap().trim().is_empty() {
        assert!(waited.elapsed() < Duration::from_secs(120), "rank 1 never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Let training get going (rank 0 writes metrics.csv at its first readback).
    while !dir.join("metrics.csv").exists() {
        assert!(waited.elapsed() < Duration::from_secs(180), "training never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let pid = std::fs::read_to_string(&pid_file).unwrap().trim().to_string();
    let killed = Instant::now();
    assert!(Command::new("kill").args(["-9", &pid]).status().unwrap().success());
    let status = loop {
        if let Some(s) = job.try_wait().unwrap() {
            break s;
        }
        if killed.elapsed() > Duration::from_secs(30) {
            let _ = job.kill();
            panic!("the job still runs 30 s after rank 1 was killed");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let took = killed.elapsed();
    let mut err = String::new();
    std::io::Read::read_to_string(job.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "the job succeeded after a rank was killed");
    assert!(
        err.contains("signal 9") || err.contains("Killed") || err.contains("killed"),
        "no word of the killed rank in mpirun's output:\n{err}"
    );
    assert!(took < Duration::from_secs(10), "the job took {took:?} to end");
    eprintln!("killed rank 1: the job ended in {took:?} with {status}");
    for d in [dir, marker] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn a_failing_rank_ends_the_job_with_its_error_and_exit_status() {
    // 63 rows do not split over 2 ranks: every rank refuses (bad input, exit 2).
    let dir = temp_dir("odd");
    let mut args = train_args(&["--opt", "adamw_sf"], "10", &dir);
    let at = args.iter().position(|a| *a == "64").unwrap();
    args[at] = "63";
    let out = mpirun(2, &args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("error: rank ") && err.contains("multiple of 2"), "{err}");

    // Ranks started with different settings: refused before training, naming the ranks.
    let script = format!(
        "exec {} train --data digits --steps 10 --batch 64 --seed $OMPI_COMM_WORLD_RANK",
        env!("CARGO_BIN_EXE_sfnap")
    );
    let out = launcher(2).args(["sh", "-c", &script]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("differ across ranks: rank 0 holds"), "{err}");
}
