//! No `sfnap train` flag is silently dropped: each one either changes the run or
//! is refused with exit status 2 and one line naming it.
//!
//! The optimizer settings' flags come from the settings table
//! (`sfnap::optim::settings::SETTINGS`): each row's example runs against every
//! kind on a tiny setup. A kind the row lists must train and end with other
//! weights at x than the same run without the flag; every other kind must refuse
//! it. Refusals come before the GPU is opened, so they cost little; each kind
//! shares one baseline run. A new setting with a flag is tested by its row.
//! The data- and run-level flags (`--task-steps`, `--checkpoint-every`,
//! `--eval-frac`, `--label`) and the settings that would change nothing have small
//! tests of their own.

mod common;

use std::path::Path;
use std::process::Output;

use common::{sfnap, temp_dir};
use sfnap::optim::{settings, Kind};

/// The flags of a run that every kind takes, beside the settings table's.
const RUN_FLAGS: &[&[&str]] = &[
    &["--nap"],
    // The mean of two slices' mean gradients: the same sum, rounded otherwise.
    &["--accumulate", "2"],
    // adamw's other schedules (the table's example is wsd); --warmup feeds them.
    &["--schedule", "warmup", "--warmup", "3"],
    &["--schedule", "cosine"],
];

/// Every case of the matrix: its arguments (the first names the flag a refusal
/// must name) and the kinds that take it.
fn cases() -> Vec<(Vec<&'static str>, Vec<Kind>)> {
    let mut cases: Vec<(Vec<&'static str>, Vec<Kind>)> = settings::SETTINGS
        .iter()
        .filter_map(|s| s.flag.map(|f| (f.example.to_vec(), s.kinds.to_vec())))
        .collect();
    for flag in RUN_FLAGS {
        let kinds = if flag[0] == "--schedule" {
            vec![Kind::Adamw]
        } else {
            Kind::ALL.to_vec()
        };
        cases.push((flag.to_vec(), kinds));
    }
    cases
}

/// The tiny run each flag is added to: 10 steps (wsd's decay is 2 of them).
const BASE: &str = "train --data spirals --steps 10 --eval-every 10 --batch 16";

/// The words of `line`, as arguments.
fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Exit status 2 and one error line naming `flag` (`--sf-window`: `sf-window` or
/// the field `sf_window`). Returns the line.
fn refused(o: &Output, flag: &str, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{what}: exit 2 expected: {stderr}");
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{what}: one error line expected: {stderr}");
    let name = flag.trim_start_matches("--");
    assert!(
        errors[0].contains(name) || errors[0].contains(&name.replace('-', "_")),
        "{what}: the error does not name {flag}: {}",
        errors[0]
    );
    errors[0].to_string()
}

/// Trains with `args` into `dir`; returns the x tensors' bytes of the final
/// checkpoint, by name.
fn train_x(args: &[&str], dir: &Path, what: &str) -> Vec<(String, Vec<u8>)> {
    let mut all = args.to_vec();
    all.extend(["--out", s(dir)]);
    let o = sfnap(&all);
    assert!(
        o.status.success(),
        "{what}: the run failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let bytes = std::fs::read(dir.join("checkpoint.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut x: Vec<(String, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .filter(|(name, _)| name.starts_with("x."))
        .map(|(name, t)| (name, t.data().to_vec()))
        .collect();
    x.sort();
    assert!(!x.is_empty(), "{what}: no x in the checkpoint");
    x
}

/// Every flag of the table against every kind: applied where the table says,
/// changing x, and refused naming the flag everywhere else.
#[test]
fn every_optimizer_flag_changes_the_run_or_is_refused_for_every_kind() {
    let root = temp_dir("matrix");
    let cases = cases();
    for kind in Kind::ALL {
        let mut base = words(BASE);
        base.extend(["--opt", kind.name()]);
        let baseline = train_x(&base, &root.join(kind.name()), kind.name());
        for (i, (flag, kinds)) in cases.iter().enumerate() {
            let what = format!("{kind} {}", flag.join(" "));
            let mut args = base.clone();
            args.extend_from_slice(flag);
            if kinds.contains(&kind) {
                let x = train_x(&args, &root.join(format!("{kind}-{i}")), &what);
                assert_eq!(x.len(), baseline.len(), "{what}");
                assert!(x != baseline, "{what}: accepted, but x is the same as without it");
            } else {
                // A case of several flags may be refused for any of them
                // (`--schedule warmup --warmup 3`: sf_plus refuses the warmup first).
                let o = sfnap(&args);
                let named = flag.iter().filter(|w| w.starts_with("--")).find(|f| {
                    let name = f.trim_start_matches("--");
                    String::from_utf8_lossy(&o.stderr).contains(&format!("error: {name}:"))
                });
                let line = refused(&o, named.unwrap_or(&flag[0]), &what);
                // The refusal names the kind and, from the table, the kinds that take it.
                assert!(line.contains(kind.name()), "{what}: {line}");
                if kinds.len() < Kind::ALL.len() && flag[0] != "--schedule" {
                    assert!(kinds.iter().all(|k| line.contains(k.name())), "{what}: {line}");
                }
            }
        }
    }
    std::fs::remove_dir_all(&root).ok();
}

/// docs/cli.md lists the settings table's flags as the table has them: its block
/// between the `settings` markers is this test's rendering of the table.
#[test]
fn the_cli_page_lists_every_setting_with_its_kinds() {
    let mut expected = String::from("| flag | sets | kinds that take it |\n|---|---|---|\n");
    for s in settings::SETTINGS {
        let Some(flag) = s.flag else { continue };
        let sets = match s.holder {
            settings::Holder::Field { .. } => format!("`{}`", s.name),
            settings::Holder::CommandLine => s.what.to_string(),
        };
        let kinds = if s.kinds.len() == Kind::ALL.len() {
            "every kind".to_string()
        } else {
            s.kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
        };
        expected += &format!("| `--{}` | {sets} | {kinds} |\n", flag.name);
    }
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/cli.md")).unwrap();
    let block = page
        .split("<!-- settings: begin -->\n")
        .nth(1)
        .and_then(|rest| rest.split("<!-- settings: end -->").next())
        .expect("docs/cli.md has the settings markers");
    assert_eq!(block, expected, "docs/cli.md's settings table should read:\n{expected}");
}

/// `--task-steps` applies to `--data continual` only: it changes when the labels
/// are re-drawn there (metrics.csv's `task` column), and other data refuse it.
/// Other data's runs store continual's default, 500, as they always have, so
/// their checkpoints still resume.
#[test]
fn task_steps_applies_to_continual_only() {
    let refusal = refused(
        &sfnap(&["train", "--data", "spirals", "--steps", "4", "--task-steps", "100"]),
        "--task-steps",
        "spirals",
    );
    assert!(refusal.contains("continual"), "{refusal}");
    let dir = temp_dir("task-steps");
    let task_at_end = |extra: &[&str], name: &str| {
        let d = dir.join(name);
        let mut args = words("train --data continual --hidden 8 --steps 4 --eval-every 4 --batch 16");
        args.extend(["--out", s(&d)]);
        args.extend_from_slice(extra);
        let o = sfnap(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let csv = std::fs::read_to_string(d.join("metrics.csv")).unwrap();
        csv.lines().last().unwrap().rsplit(',').next().unwrap().to_string()
    };
    // The task of the last step: 3 / 500 and 3 / 2.
    assert_eq!(task_at_end(&[], "default"), "0");
    assert_eq!(task_at_end(&["--task-steps", "2"], "two"), "1");

    let d = dir.join("spirals");
    let mut args = words("train --data spirals --steps 2 --eval-every 2");
    args.extend(["--out", s(&d)]);
    let o = sfnap(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ckpt = sfnap::checkpoint::load(&d.join("checkpoint.safetensors")).unwrap();
    assert!(ckpt.meta.config.contains("\"task_steps\":500"), "{}", ckpt.meta.config);
    std::fs::remove_dir_all(&dir).ok();
}

/// `--checkpoint-every` writes nothing without a run directory: refused there,
/// taken with `--out`.
#[test]
fn checkpoint_every_needs_a_run_directory() {
    let args = words("train --data spirals --steps 2 --eval-every 1 --checkpoint-every 1");
    refused(&sfnap(&args), "--checkpoint-every", "no --out");
    let dir = temp_dir("checkpoint-every");
    let mut with_out = args.clone();
    with_out.extend(["--out", s(&dir)]);
    let o = sfnap(&with_out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::remove_dir_all(&dir).ok();
}

/// `--eval-frac` applies to text:PATH and csv:PATH, `--label` to csv:PATH only.
#[test]
fn eval_frac_and_label_are_refused_where_they_do_not_apply() {
    let dir = temp_dir("own");
    std::fs::create_dir_all(&dir).unwrap();
    let text = dir.join("t.txt");
    std::fs::write(&text, "the cat sat on the mat. ".repeat(40)).unwrap();
    let text_data = format!("text:{}", s(&text));
    for data in ["spirals", "digits", "text", "continual"] {
        let o = sfnap(&["train", "--data", data, "--eval-frac", "0.2"]);
        refused(&o, "--eval-frac", data);
    }
    for data in ["spirals", "digits", "continual", &text_data] {
        refused(&sfnap(&["train", "--data", data, "--label", "0"]), "--label", data);
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Settings that would leave the run as it is are refused: `--no-norm` with
/// `--nap` (nothing to project) or the gpt (it keeps its norms), a warmup of one
/// step (its multiplier is 1), adamw's warmup schedule without `--warmup`, a
/// wsd schedule too short to decay, and a rounding or its seed where nothing
/// rounds stochastically.
#[test]
fn settings_that_change_nothing_are_refused() {
    let spirals = ["train", "--data", "spirals"];
    let cases: &[(&[&str], &str)] = &[
        (&["--no-norm", "--nap"], "--nap"),
        (&["--opt", "adamw_sf", "--warmup", "1"], "--warmup"),
        (&["--opt", "adamw", "--schedule", "warmup", "--warmup", "1"], "--warmup"),
        (&["--opt", "adamw", "--schedule", "warmup"], "--schedule"),
        (&["--opt", "adamw", "--schedule", "wsd", "--steps", "9"], "--schedule"),
        (&["--opt", "radam_sf", "--warmup", "5"], "--warmup"),
        (&["--state-rounding", "nearest"], "--state-rounding"),
        (&["--state-seed", "3"], "--state-seed"),
        (
            &[
                "--state-dtype",
                "bf16",
                "--state-rounding",
                "nearest",
                "--state-seed",
                "3",
            ],
            "--state-seed",
        ),
    ];
    for (extra, flag) in cases {
        let mut args = spirals.to_vec();
        args.extend_from_slice(extra);
        refused(&sfnap(&args), flag, &extra.join(" "));
    }
    let o = sfnap(&["train", "--model", "gpt", "--data", "text", "--no-norm", "--steps", "1"]);
    refused(&o, "--no-norm", "gpt");
}

/// `sfnap bench --train` times training steps: the optimizer-step flags are refused
/// with it, `--batch` without it, and a bad model or batch by name (before the GPU opens).
#[test]
fn bench_train_refuses_what_it_would_ignore() {
    let cases: &[(&[&str], &str)] = &[
        (&["--train", "gpt", "--params", "5"], "--params"),
        (&["--train", "gpt", "--tensors", "2"], "--tensors"),
        (&["--train", "mlp", "--nap"], "--nap"),
        (&["--train", "mlp", "--max-binding", "4096"], "--max-binding"),
        (&["--train", "gpt", "--inner-momentum", "0.5"], "--inner-momentum"),
        (&["--kind", "adamw", "--params", "10", "--batch", "3"], "--batch"),
        (&["--train", "cnn"], "--train"),
        (&["--train", "gpt", "--batch", "0"], "--batch"),
        (&["--train", "mlp", "--steps", "0"], "--steps"),
        (&["--train", "mlp", "--state-dtype", "bf16"], "--state-dtype"),
        (&["--matmul", "64", "--state-dtype", "bf16"], "--state-dtype"),
        (&["--memory-table", "--kind", "adamw"], "--memory-table"),
        (&["--memory-table", "--state-dtype", "bf16"], "--memory-table"),
        (&["--foreign", "--train", "mlp"], "--foreign"),
        (
            &[
                "--foreign",
                "--kind",
                "adamw",
                "--params",
                "10",
                "--max-binding",
                "4096",
            ],
            "--max-binding",
        ),
        (
            &["--kind", "adamw", "--params", "10", "--state-dtype", "f16"],
            "--state-dtype",
        ),
    ];
    for (extra, flag) in cases {
        let mut args = vec!["bench"];
        args.extend_from_slice(extra);
        refused(&sfnap(&args), flag, &extra.join(" "));
    }
}

/// `--state-seed` draws other rounding bits for the same run: another seed ends
/// with other weights, and the seed `--seed` implies ends with the same ones.
#[test]
fn state_seed_changes_the_rounding_bits_only() {
    let root = temp_dir("state-seed");
    let mut base = words(BASE);
    base.extend(["--opt", "adamw_sf", "--state-dtype", "bf16", "--seed", "5"]);
    let x = |extra: &[&'static str], name: &str| {
        let mut args = base.clone();
        args.extend_from_slice(extra);
        train_x(&args, &root.join(name), name)
    };
    let implied = x(&[], "implied");
    assert_eq!(
        x(&["--state-seed", "5"], "same"),
        implied,
        "--state-seed 5 with --seed 5"
    );
    assert_ne!(
        x(&["--state-seed", "6"], "other"),
        implied,
        "--state-seed 6 with --seed 5"
    );
    std::fs::remove_dir_all(&root).ok();
}
