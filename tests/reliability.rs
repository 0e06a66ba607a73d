//! No crash from any size, no run overwritten, no file pair torn, no data
//! silently swapped: every case exits 0 with a correct result or 2 with one
//! line naming what is wrong, and nothing is lost or silently changed.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{empty_dir, error_line, sfnap, temp_dir};
use sfnap::optim::Kind;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The names in directory `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Trains two steps on the CSV file `file` into `run`.
fn train_csv(file: &Path, run: &Path) {
    ok(sfnap(&[
        "train",
        "--data",
        &format!("csv:{}", s(file)),
        "--steps",
        "2",
        "--out",
        s(run),
    ]));
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// Exit status 2 and one line of error containing every one of `words`.
fn refused(o: Output, words: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    let line = error_line(&stderr).to_string();
    for w in words {
        assert!(line.contains(w), "`{w}` not in: {stderr}");
    }
    line
}

/// `sfnap args` run in the directory `dir`.
fn sfnap_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sfnap"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

/// A tiny run on the spirals into `dir`.
fn spirals_run(dir: &Path) {
    ok(sfnap(&["train", "--data", "spirals", "--steps", "2", "--out", s(dir)]));
}

/// Two classes in three features, with a header.
fn csv_rows(n: usize, seed: u64) -> String {
    let mut rng = sfnap::data::Rng::new(seed);
    let mut out = String::from("a,b,c,kind\n");
    for i in 0..n {
        let k = (i % 2) as f64;
        let f = [k + 0.5 * rng.normal(), -2.0 * k + 0.5 * rng.normal(), rng.normal()];
        let f: Vec<String> = f.iter().map(|v| format!("{v:.3}")).collect();
        out.push_str(&format!("{},{}\n", f.join(","), if k > 0.0 { "yes" } else { "no" }));
    }
    out
}

/// The CSV `text` with its columns `i` and `j` swapped (header included).
fn swap_columns(text: &str, i: usize, j: usize) -> String {
    text.lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split(',').collect();
            f.swap(i, j);
            f.join(",") + "\n"
        })
        .collect()
}

/// `eval RUN --data csv:FILE --json`: (accuracy, rows).
fn eval_csv(run: &Path, file: &Path) -> (f64, u64) {
    let json = ok(sfnap(&[
        "eval",
        s(run),
        "--data",
        &format!("csv:{}", s(file)),
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    (v["accuracy"].as_f64().unwrap(), v["rows"].as_u64().unwrap())
}

// ---- sizes ----

/// Every size flag, with the model and data it sizes.
const SIZES: [(&str, &str, &str); 7] = [
    ("gpt", "text", "layers"),
    ("gpt", "text", "width"),
    ("gpt", "text", "heads"),
    ("gpt", "text", "context"),
    ("gpt", "text", "batch"),
    ("mlp", "spirals", "hidden"),
    ("mlp", "spirals", "batch"),
];

/// Every size flag at 0, for every optimizer kind, is refused naming the flag
/// (before any data is sized or any device opened).
#[test]
fn every_size_at_zero_is_refused_by_name() {
    for kind in Kind::ALL {
        for (model, data, flag) in SIZES {
            let o = sfnap(&[
                "train",
                "--opt",
                &kind.to_string(),
                "--model",
                model,
                "--data",
                data,
                &format!("--{flag}"),
                "0",
            ]);
            refused(o, &[&format!("{flag}:")]);
        }
    }
}

/// Every size flag at 1 and at its maximum, for every optimizer kind: a run
/// of one step ends with status 0, or with status 2 and one line naming a size
/// (never a panic, an abort or the out-of-memory killer).
#[test]
fn every_size_at_one_and_at_its_maximum_runs_or_is_refused_by_name() {
    let sizes = ["layers", "width", "heads", "context", "batch", "hidden"];
    let max = sfnap::model::MAX_SIZE.to_string();
    for kind in Kind::ALL {
        for (model, data, flag) in SIZES {
            for value in ["1", max.as_str()] {
                let kind = kind.to_string();
                let args = ["train", "--opt", &kind, "--model", model, "--data", data];
                let o = sfnap(&[&args[..], &[&format!("--{flag}"), value, "--steps", "1"]].concat());
                let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
                let what = format!("--{flag} {value} with {kind}");
                match o.status.code() {
                    Some(0) => {}
                    Some(2) => {
                        let line = error_line(&stderr);
                        let named = line
                            .strip_prefix("error: ")
                            .and_then(|l| l.split(':').next())
                            .is_some_and(|field| field.split(", ").all(|f| sizes.contains(&f)));
                        assert!(named, "{what}: the error names no size: {line}");
                    }
                    other => panic!("{what}: status {other:?}: {stderr}"),
                }
            }
        }
    }
}

/// The memory available to this process per /proc/meminfo (None elsewhere).
fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

/// A GPT of 1,000 layers needs about 55 GiB: where the adapter runs on the CPU
/// and the machine has less, it is refused naming --layers, with the memory.
#[test]
fn a_thousand_layers_are_refused_before_any_allocation() {
    let args = ["train", "--model", "gpt", "--data", "text", "--layers", "1000"];
    let plan = sfnap(&[&args[..], &["--dry-run"]].concat());
    let stdout = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert!(stdout.contains("parameters: 49999104"), "{stdout}");
    let cpu = stdout.contains("the adapter runs on the CPU");
    if !(cpu && mem_available().is_some_and(|m| m < 50 << 30)) {
        eprintln!("skipped: not a CPU adapter on a machine with under 50 GiB available");
        return;
    }
    refused(plan, &["layers:", "GiB", "lower --layers"]);
    refused(sfnap(&args), &["layers:", "GiB", "are available", "lower --layers"]);
}

/// A size that no machine holds is refused everywhere, and nothing is written.
#[test]
fn a_size_beyond_any_machine_is_refused_and_writes_nothing() {
    let out = temp_dir("huge");
    let o = sfnap(&[
        "train",
        "--model",
        "gpt",
        "--data",
        "text",
        "--layers",
        "1000000",
        "--out",
        s(&out),
    ]);
    refused(o, &["layers:", "lower --layers"]);
    assert!(!out.exists(), "a refused run created its directory");
}

/// --dry-run prints the plan and exits 0 without training or writing.
#[test]
fn a_dry_run_prints_the_plan() {
    let out = temp_dir("dry");
    let plan = ok(sfnap(&[
        "train",
        "--model",
        "gpt",
        "--data",
        "text",
        "--dry-run",
        "--out",
        s(&out),
    ]));
    for part in [
        "parameters:",
        "gradients",
        "optimizer state (z, v, m, x)",
        "training graph (64 rows)",
        "evaluation graph",
        "checkpoint",
        "total:",
        "available:",
        "fits",
    ] {
        assert!(plan.contains(part), "`{part}` not in: {plan}");
    }
    assert!(!out.exists(), "a dry run created its directory");
}

// ---- runs, exports and merges ----

/// A fresh run into a run's directory is refused (the run is kept); --resume
/// continues it and --overwrite replaces it.
#[test]
fn a_finished_run_is_not_overwritten() {
    let dir = temp_dir("finished");
    spirals_run(&dir);
    let before = std::fs::read(dir.join("checkpoint.safetensors")).unwrap();
    let again = ["train", "--data", "spirals", "--steps", "2", "--out", s(&dir)];
    refused(sfnap(&again), &["out:", "holds a run", "--resume", "--overwrite"]);
    assert_eq!(std::fs::read(dir.join("checkpoint.safetensors")).unwrap(), before);
    ok(sfnap(&[
        "train",
        "--data",
        "spirals",
        "--steps",
        "4",
        "--resume",
        s(&dir),
    ]));
    ok(sfnap(&[&again[..], &["--overwrite"]].concat()));
    let metrics = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    assert!(!metrics.contains("\n4,"), "the old run's rows remain: {metrics}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A resume repairs what a killed run left (a save's temporary file, metrics
/// rows after the checkpoint) and says so, one note each.
#[test]
fn a_resume_says_what_it_repaired() {
    let dir = temp_dir("repaired");
    spirals_run(&dir);
    let metrics = dir.join("metrics.csv");
    let rows = std::fs::read_to_string(&metrics).unwrap();
    std::fs::write(&metrics, format!("{rows}3,0.5,,\n4,0.4,,\n")).unwrap();
    std::fs::write(dir.join("checkpoint.tmp4242"), b"half a save").unwrap();
    let o = sfnap(&["train", "--data", "spirals", "--steps", "4", "--resume", s(&dir)]);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    ok(o);
    assert!(
        stderr.contains("note: removed the temporary files of an interrupted save: checkpoint.tmp4242"),
        "{stderr}"
    );
    assert!(
        stderr.contains("note: metrics.csv: dropped 2 line(s) written after the checkpoint of step 2"),
        "{stderr}"
    );
    assert!(!dir.join("checkpoint.tmp4242").exists());
    std::fs::remove_dir_all(&dir).ok();
}

/// A run killed before its first save left metrics and no checkpoint: the
/// refusal says there is nothing to resume, and --overwrite replaces it.
#[test]
fn a_run_without_a_checkpoint_is_replaced_only_when_told() {
    let dir = temp_dir("unsaved");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("metrics.csv"), "step\n").unwrap();
    let again = ["train", "--data", "spirals", "--steps", "2", "--out", s(&dir)];
    refused(
        sfnap(&again),
        &["out:", "saved no checkpoint", "nothing to resume", "--overwrite"],
    );
    assert_eq!(std::fs::read_to_string(dir.join("metrics.csv")).unwrap(), "step\n");
    ok(sfnap(&[&again[..], &["--overwrite"]].concat()));
    assert!(dir.join("checkpoint.safetensors").exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(made.success(), "mkfifo {}", path.display());
}

#[cfg(unix)]
fn is_fifo(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

/// Data files are read more than once (scanned, fingerprinted, loaded): a
/// FIFO or a device as `--data text:` or `csv:` is refused before any read,
/// instead of hanging on its second read.
#[cfg(unix)]
#[test]
fn a_data_file_that_is_not_a_regular_file_is_refused() {
    let dir = empty_dir("data-fifo");
    let fifo = dir.join("data");
    mkfifo(&fifo);
    for data in [format!("text:{}", s(&fifo)), format!("csv:{}", s(&fifo))] {
        let model = if data.starts_with("text") { "gpt" } else { "mlp" };
        let line = refused(
            sfnap(&["train", "--model", model, "--data", &data, "--steps", "1"]),
            &["is a FIFO, not a regular file"],
        );
        assert!(line.contains(s(&fifo)), "{line}");
    }
    refused(
        sfnap(&["train", "--model", "gpt", "--data", "text:/dev/null", "--steps", "1"]),
        &["/dev/null", "is a device"],
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// merge and export replace regular files (and an export's own directory)
/// only: a FIFO, a directory or a run directory is refused and left as it was.
#[cfg(unix)]
#[test]
fn merge_and_export_replace_only_what_they_may() {
    let dir = empty_dir("targets");
    let run = dir.join("run");
    spirals_run(&run);
    let fifo = dir.join("fifo");
    mkfifo(&fifo);
    refused(
        sfnap(&["merge", s(&run), s(&run), "--out", s(&fifo)]),
        &["fifo", "is a FIFO, not a regular file"],
    );
    refused(sfnap(&["merge", s(&run), "--out", s(&dir)]), &["is a directory"]);
    refused(sfnap(&["export", s(&run), s(&fifo)]), &["is a FIFO, not a directory"]);
    assert!(is_fifo(&fifo), "the FIFO was replaced");
    refused(
        sfnap(&["export", s(&run), s(&run)]),
        &["holds", "choose a new directory"],
    );
    assert!(run.join("checkpoint.safetensors").exists());

    let export = dir.join("export");
    ok(sfnap(&["export", s(&run), s(&export)]));
    ok(sfnap(&["export", s(&run), s(&export)]));
    // The exports' lock stays; the refused ones made none.
    assert_eq!(
        entries(&dir),
        [".export.lock", "export", "fifo", "run"],
        "temporaries left behind"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// An export killed between its two renames leaves the old pair aside; the
/// next export puts it back first, then replaces it whole.
#[test]
fn an_export_killed_between_its_renames_is_recovered() {
    let dir = empty_dir("killed-export");
    let run = dir.join("run");
    spirals_run(&run);
    let export = dir.join("export");
    ok(sfnap(&["export", s(&run), s(&export)]));
    // What `kill -9` between the renames leaves: the old pair aside, no export.
    let aside = dir.join("export.old-4194999");
    std::fs::rename(&export, &aside).unwrap();
    ok(sfnap(&["export", s(&run), s(&export)]));
    assert!(!aside.exists());
    for f in ["model.safetensors", "model.json"] {
        assert!(export.join(f).exists(), "{f}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A merge that fails (here: its evaluation, the run's data file being gone)
/// writes nothing.
#[test]
fn a_failed_merge_writes_nothing() {
    let dir = empty_dir("failed-merge");
    let file = dir.join("d.csv");
    std::fs::write(&file, csv_rows(60, 1)).unwrap();
    let run = dir.join("run");
    train_csv(&file, &run);
    std::fs::remove_file(&file).unwrap();
    let out = dir.join("merged.safetensors");
    let o = sfnap(&["merge", s(&run), s(&run), "--out", s(&out)]);
    refused(o, &["d.csv"]);
    assert_eq!(entries(&dir), ["run"], "the merge left files behind");
    std::fs::remove_dir_all(&dir).ok();
}

// ---- data ----

/// A CSV's columns are matched by header name: swapped columns give the same
/// result, a renamed one is refused by name.
#[test]
fn csv_columns_are_matched_by_name() {
    let dir = empty_dir("columns");
    let text = csv_rows(200, 2);
    let file = dir.join("d.csv");
    std::fs::write(&file, &text).unwrap();
    let run = dir.join("run");
    ok(sfnap(&[
        "train",
        "--data",
        &format!("csv:{}", s(&file)),
        "--steps",
        "20",
        "--out",
        s(&run),
    ]));
    let swapped = dir.join("swapped.csv");
    std::fs::write(&swapped, swap_columns(&text, 0, 1)).unwrap();
    assert_eq!(eval_csv(&run, &swapped), eval_csv(&run, &file));
    let renamed = dir.join("renamed.csv");
    std::fs::write(&renamed, text.replacen("a,b", "a,B", 1)).unwrap();
    refused(
        sfnap(&["eval", s(&run), "--data", &format!("csv:{}", s(&renamed))]),
        &["renamed.csv", "no column named `b`"],
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A byte-order mark does not become part of a name, nor makes a header of a
/// data row: every row is used.
#[test]
fn a_byte_order_mark_is_dropped() {
    let dir = empty_dir("bom");
    let text = csv_rows(60, 3);
    let data = text.split_once('\n').unwrap().1;
    let file = dir.join("bom.csv");
    std::fs::write(&file, format!("\u{feff}{data}")).unwrap();
    let run = dir.join("run");
    train_csv(&file, &run);
    assert_eq!(eval_csv(&run, &file).1, 60, "every row is data");
    let named = dir.join("named.csv");
    std::fs::write(&named, format!("\u{feff}{text}")).unwrap();
    let export = dir.join("export");
    let run2 = dir.join("run2");
    train_csv(&named, &run2);
    ok(sfnap(&["export", s(&run2), s(&export)]));
    let model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(export.join("model.json")).unwrap()).unwrap();
    assert_eq!(model["data"]["features"], serde_json::json!(["a", "b", "c"]));
    std::fs::remove_dir_all(&dir).ok();
}

/// A resume on a data file that has changed since (same vocabulary, same
/// columns) is refused naming the file; the unchanged file resumes.
#[test]
fn a_resume_on_changed_data_is_refused() {
    let dir = empty_dir("changed");
    let text = dir.join("t.txt");
    let words = "the cat sat on the mat and the dog ran to the sun. ".repeat(40);
    std::fs::write(&text, &words).unwrap();
    let csv = dir.join("d.csv");
    std::fs::write(&csv, csv_rows(60, 4)).unwrap();
    let cases = [
        (
            format!("text:{}", s(&text)),
            "gpt",
            text.clone(),
            words.replacen("cat", "tac", 1),
        ),
        (format!("csv:{}", s(&csv)), "mlp", csv.clone(), csv_rows(60, 5)),
    ];
    for (i, (data, model, file, changed)) in cases.into_iter().enumerate() {
        let run = dir.join(format!("run{i}"));
        let args = [
            "train",
            "--model",
            model,
            "--data",
            &data,
            "--batch",
            "4",
            "--context",
            "8",
        ];
        let args = if model == "gpt" { &args[..] } else { &args[..5] };
        ok(sfnap(&[args, &["--steps", "2", "--out", s(&run)]].concat()));
        ok(sfnap(&[args, &["--steps", "3", "--resume", s(&run)]].concat()));
        std::fs::write(&file, changed).unwrap();
        refused(
            sfnap(&[args, &["--steps", "4", "--resume", s(&run)]].concat()),
            &[s(&file), "has changed since"],
        );
        refused(sfnap(&["eval", s(&run)]), &[s(&file), "has changed since"]);
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A run started from one directory on a relative path is evaluated, merged
/// and resumed from another.
#[test]
fn a_relative_data_path_is_found_from_anywhere() {
    let dir = empty_dir("relative");
    std::fs::write(dir.join("d.csv"), csv_rows(60, 6)).unwrap();
    let o = sfnap_in(&dir, &["train", "--data", "csv:d.csv", "--steps", "2", "--out", "run"]);
    ok(o);
    let run = dir.join("run");
    let elsewhere = std::env::temp_dir();
    ok(sfnap_in(&elsewhere, &["eval", s(&run)]));
    let merged = dir.join("merged.safetensors");
    ok(sfnap_in(&elsewhere, &["merge", s(&run), s(&run), "--out", s(&merged)]));
    let data = format!("csv:{}", s(&dir.join("d.csv")));
    ok(sfnap_in(
        &elsewhere,
        &["train", "--data", &data, "--steps", "3", "--resume", s(&run)],
    ));
    std::fs::remove_dir_all(&dir).ok();
}

// ---- resume ----

/// `--resume DIR --steps N` takes every setting from the run's checkpoint and
/// continues it bit-identically; a setting given again must match the run's,
/// and one that differs is refused by name.
#[test]
fn a_resume_takes_the_runs_settings_from_its_checkpoint() {
    let (straight, split) = (temp_dir("straight"), temp_dir("split"));
    let run = [
        "train", "--data", "spirals", "--opt", "adamw_sf", "--lr", "0.01", "--seed", "3",
    ];
    ok(sfnap(&[&run[..], &["--steps", "4", "--out", s(&straight)]].concat()));
    ok(sfnap(&[&run[..], &["--steps", "2", "--out", s(&split)]].concat()));
    ok(sfnap(&["train", "--resume", s(&split), "--steps", "4"]));
    let ckpt = |d: &Path| std::fs::read(d.join("checkpoint.safetensors")).unwrap();
    assert!(
        ckpt(&straight) == ckpt(&split),
        "a resume from the checkpoint's settings differs"
    );
    ok(sfnap(&[
        "train",
        "--resume",
        s(&split),
        "--steps",
        "5",
        "--opt",
        "adamw_sf",
        "--seed",
        "3",
    ]));
    refused(
        sfnap(&["train", "--resume", s(&split), "--steps", "6", "--lr", "0.02"]),
        &["optimizer.lr differs", "--resume takes the run's"],
    );
    refused(
        sfnap(&["train", "--resume", s(&split), "--steps", "6", "--hidden", "32"]),
        &["model.mlp.hidden differs"],
    );
    for d in [straight, split] {
        std::fs::remove_dir_all(d).ok();
    }
}

/// The shapes an export's two files give its tensors: (model.json's, model.safetensors').
fn export_shapes(dir: &Path) -> (serde_json::Value, serde_json::Value) {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("model.json")).unwrap()).unwrap();
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let shapes: serde_json::Map<String, serde_json::Value> = st
        .tensors()
        .into_iter()
        .map(|(name, t)| (name, serde_json::json!(t.shape())))
        .collect();
    (json["tensors"].clone(), serde_json::Value::Object(shapes))
}

/// `kill -9` at random points of exports of two runs of other sizes into one
/// directory: after every kill the directory holds one run's pair (or is
/// absent with the old pair aside, which the next export puts back), never a
/// file of each.
#[test]
fn exports_killed_at_random_points_leave_one_pair() {
    let dir = empty_dir("export-kills");
    let runs = [dir.join("narrow"), dir.join("wide")];
    for (run, hidden) in runs.iter().zip(["8", "24"]) {
        ok(sfnap(&[
            "train",
            "--data",
            "spirals",
            "--hidden",
            hidden,
            "--steps",
            "2",
            "--out",
            s(run),
        ]));
    }
    let out = dir.join("export");
    let mut rng = common::Rng::new(11);
    let mut killed = 0;
    for i in 0..60 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sfnap"))
            .args(["export", s(&runs[i % 2]), s(&out)])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_micros((rng.uniform() * 4_000.0) as u64));
        let _ = child.kill();
        killed += usize::from(child.wait().unwrap().code().is_none());
        let aside: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| s(p).contains("export.old-"))
            .collect();
        let pair = if out.exists() {
            Some(out.clone())
        } else {
            aside.first().cloned()
        };
        if let Some(pair) = pair {
            let (json, tensors) = export_shapes(&pair);
            assert_eq!(
                json,
                tensors,
                "after kill {i}: {} holds a file of each export",
                pair.display()
            );
        }
    }
    println!("{killed} of 60 exports killed before they ended");
    ok(sfnap(&["export", s(&runs[0]), s(&out)]));
    let (json, tensors) = export_shapes(&out);
    assert_eq!(json, tensors);
    assert_eq!(json["l0.weight"], serde_json::json!([3, 8]));
    assert_eq!(
        entries(&dir),
        [".export.lock", "export", "narrow", "wide"],
        "temporaries left behind"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A reader that goes away (`sfnap train --dry-run | head -0`) ends the
/// command quietly with status 0, instead of a panic on the closed pipe. The
/// read end is closed before the command prints (it opens the adapter first).
#[test]
fn a_closed_standard_output_ends_the_command_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sfnap"))
        .args(["train", "--data", "spirals", "--dry-run"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(o.status.code(), Some(0), "{stderr}");
}
