//! Training end to end on the GPU: accuracy on the digits, bit-identical resume,
//! honest errors for bad checkpoints.

mod common;

use common::{gpu, temp_dir};
use sfnap::optim::bf16::StateDtype;
use sfnap::optim::{Kind, OptimConfig, Schedule};
use sfnap::train::{train, train_observed, DataKind, MetricsRow, Progress, RunOptions, TrainConfig, TrainObserver};

fn config(data: DataKind, kind: Kind, nap: bool, steps: u64) -> TrainConfig {
    TrainConfig {
        model: TrainConfig::default_model(&data),
        data,
        optimizer: OptimConfig::new(kind),
        nap,
        steps,
        batch: 64,
        eval_every: steps,
        metrics_every: 10,
        seed: 0,
        task_steps: 500,
    }
}

/// ScheduleFree+ with no learning rate given reaches 95% on the held-out digits.
#[test]
fn digits_mlp_reaches_95_percent_with_sf_plus_and_no_learning_rate() {
    let gpu = gpu();
    let cfg = config(DataKind::Digits, Kind::SfPlus, false, 400);
    let summary = train(&gpu, &cfg, &RunOptions::default()).unwrap();
    let last = summary.last().unwrap();
    println!(
        "digits sf_plus 400 steps: accuracy {:.4}, loss {:.4}",
        last.eval_accuracy, last.eval_loss
    );
    assert!(last.eval_accuracy >= 0.95, "accuracy {}", last.eval_accuracy);
    let first = summary.train_losses.first().unwrap().1;
    assert!(
        summary.train_losses.last().unwrap().1 < first / 10.0,
        "train loss did not fall"
    );
}

/// Every call an observer hears, in order.
#[derive(Default)]
struct Recorder {
    calls: Vec<String>,
}

impl TrainObserver for Recorder {
    fn start(&mut self, done: u64, total: u64) {
        self.calls.push(format!("start {done}/{total}"));
    }
    fn step(&mut self, p: &Progress) {
        assert!(p.steps_per_s > 0.0, "{p:?}");
        self.calls.push(format!("step {}/{}", p.done, p.total));
    }
    fn eval(&mut self, row: &MetricsRow) {
        self.calls.push(format!("eval {}", row.step));
    }
    fn finished(&mut self) {
        self.calls.push("finished".into());
    }
}

/// Tensors of a checkpoint, by name, as raw bytes.
fn tensors(path: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut v: Vec<(String, Vec<u8>)> = st.tensors().into_iter().map(|(n, t)| (n, t.data().to_vec())).collect();
    v.sort();
    v
}

/// Training 40 steps straight and 20 + (checkpoint, resume) + 20 give the same bits;
/// the observer of the resumed run hears of its 20 steps and 2 evaluations. With
/// bf16 state too: its stochastic rounding's bits follow the step count, and the
/// checkpoint holds the state as `BF16` tensors.
#[test]
fn resume_continues_bit_identically() {
    let gpu = gpu();
    for (kind, nap, bf16) in [
        (Kind::SfPlus, true, false),
        (Kind::AdamwSf, false, false),
        (Kind::Adamw, true, false),
        (Kind::AdamwSf, true, true),
        (Kind::SfPlus, true, true),
    ] {
        let mut cfg = config(DataKind::Spirals, kind, nap, 40);
        cfg.optimizer.lr = (kind != Kind::SfPlus).then_some(0.01);
        if bf16 {
            cfg.optimizer.state_dtype = StateDtype::Bf16;
            cfg.optimizer.state_seed = 5;
        }
        cfg.eval_every = 10;
        let kind = format!("{kind}{}", if bf16 { "-bf16" } else { "" });
        let straight = temp_dir(&format!("straight-{kind}"));
        train(
            &gpu,
            &cfg,
            &RunOptions {
                out: Some(straight.clone()),
                ..Default::default()
            },
        )
        .unwrap();
        let split = temp_dir(&format!("split-{kind}"));
        let first = RunOptions {
            out: Some(split.clone()),
            stop_after: Some(20),
            ..Default::default()
        };
        train(&gpu, &cfg, &first).unwrap();
        // What a run killed after its checkpoint at 20 leaves: rows past the
        // checkpoint, a torn last line, the temporary file of an interrupted save.
        let csv = split.join("metrics.csv");
        let mut text = std::fs::read_to_string(&csv).unwrap();
        text.push_str("20,9.9,,,,,,,\n30,9.9,9.9,0.1,1,1,0.1,0.1,0\n31,9.");
        std::fs::write(&csv, text).unwrap();
        let stale = split.join("checkpoint.tmp4242");
        std::fs::write(&stale, b"half a checkpoint").unwrap();
        let second = RunOptions {
            out: Some(split.clone()),
            resume: Some(split.clone()),
            ..Default::default()
        };
        let mut recorder = Recorder::default();
        train_observed(&gpu, &cfg, &second, &mut recorder).unwrap();
        let mut expected = vec!["start 20/40".to_string()];
        for done in 21..=40 {
            expected.push(format!("step {done}/40"));
            if done % 10 == 0 {
                expected.push(format!("eval {done}"));
            }
        }
        expected.push("finished".into());
        assert_eq!(recorder.calls, expected, "{kind}: observer calls");
        let ckpt = |d: &std::path::Path| std::fs::read(d.join("checkpoint.safetensors")).unwrap();
        assert!(
            ckpt(&straight) == ckpt(&split),
            "{kind}: checkpoint bytes differ after resume"
        );
        let (a, b) = (
            tensors(&straight.join("checkpoint.safetensors")),
            tensors(&split.join("checkpoint.safetensors")),
        );
        assert_eq!(a.len(), b.len());
        let bytes = std::fs::read(split.join("checkpoint.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let v = st.tensors().into_iter().find(|(n, _)| n.starts_with("v.")).unwrap().1;
        let want = if bf16 {
            safetensors::Dtype::BF16
        } else {
            safetensors::Dtype::F32
        };
        assert_eq!(v.dtype(), want, "{kind}: v's dtype in the checkpoint");
        for ((na, da), (nb, db)) in a.iter().zip(&b) {
            assert_eq!(na, nb);
            assert!(da == db, "{kind}: tensor {na} differs after resume");
        }
        let rows = |d: &std::path::Path| std::fs::read_to_string(d.join("metrics.csv")).unwrap();
        assert_eq!(rows(&straight), rows(&split), "{kind}: metrics differ after resume");
        assert!(!stale.exists(), "{kind}: the stale temporary file was left");
        std::fs::remove_dir_all(&straight).ok();
        std::fs::remove_dir_all(&split).ok();
    }
}

#[test]
fn resume_refuses_other_settings_and_damaged_files() {
    let gpu = gpu();
    let mut cfg = config(DataKind::Spirals, Kind::AdamwSf, false, 10);
    cfg.optimizer.lr = Some(0.01);
    let dir = temp_dir("refuse");
    let opts = RunOptions {
        out: Some(dir.clone()),
        ..Default::default()
    };
    train(&gpu, &cfg, &opts).unwrap();
    let resume = RunOptions {
        out: Some(dir.clone()),
        resume: Some(dir.clone()),
        ..Default::default()
    };
    let mut other = cfg.clone();
    other.optimizer.lr = Some(0.02);
    let e = train(&gpu, &other, &resume).unwrap_err().to_string();
    assert!(e.contains("other settings: optimizer.lr differs"), "{e}");
    let path = dir.join("checkpoint.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&path, &bytes).unwrap();
    let e = train(&gpu, &cfg, &resume).unwrap_err().to_string();
    assert!(e.contains("checkpoint.safetensors") && e.contains("checkpoint"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

/// adamw's wsd schedule is as long as the run: a resume that changes --steps is
/// refused, saying so and naming the length to resume with.
#[test]
fn a_resume_cannot_change_the_length_of_a_schedule() {
    let gpu = gpu();
    let mut cfg = config(DataKind::Spirals, Kind::Adamw, false, 10);
    cfg.optimizer.lr = Some(0.01);
    cfg.optimizer.schedule = Schedule::Wsd {
        warmup_steps: 0,
        decay_steps: 2,
        total_steps: 10,
    };
    let dir = temp_dir("schedule");
    let out = RunOptions {
        out: Some(dir.clone()),
        ..Default::default()
    };
    train(&gpu, &cfg, &out).unwrap();
    let mut longer = cfg.clone();
    longer.steps = 20;
    longer.optimizer.schedule = Schedule::Wsd {
        warmup_steps: 0,
        decay_steps: 4,
        total_steps: 20,
    };
    let resume = RunOptions {
        out: Some(dir.clone()),
        resume: Some(dir.clone()),
        ..Default::default()
    };
    let e = train(&gpu, &longer, &resume).unwrap_err().to_string();
    assert!(
        e.contains("schedule spans the whole run (10 steps)") && e.contains("--steps 10"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A run directory is held by one run at a time: a second run into it is refused
/// by name while the first holds its lock, and runs once the lock is free.
#[test]
fn a_run_directory_is_locked_while_a_run_writes_to_it() {
    let gpu = gpu();
    let mut cfg = config(DataKind::Spirals, Kind::AdamwSf, false, 10);
    cfg.optimizer.lr = Some(0.01);
    let dir = temp_dir("locked");
    std::fs::create_dir_all(&dir).unwrap();
    let holder = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".lock"))
        .unwrap();
    holder.lock().unwrap(); // another run, as the OS sees it
    let opts = RunOptions {
        out: Some(dir.clone()),
        ..Default::default()
    };
    let e = train(&gpu, &cfg, &opts).unwrap_err().to_string();
    assert!(e.contains("another run is writing to this directory"), "{e}");
    assert!(!dir.join("metrics.csv").exists(), "a refused run wrote metrics");
    drop(holder);
    train(&gpu, &cfg, &opts).unwrap();
    std::fs::remove_dir_all(&dir).ok();
}

/// The character-level GPT learns: after 300 steps its held-out loss (at x) is
/// half a nat or more below the unigram entropy of the corpus, the loss of the
/// best model that ignores context.
#[test]
fn char_lm_loss_falls_well_below_the_unigram_entropy() {
    let gpu = gpu();
    let mut cfg = config(DataKind::Text, Kind::AdamwSf, false, 300);
    cfg.optimizer.lr = Some(3e-3);
    cfg.optimizer.warmup_steps = 50;
    cfg.batch = 8;
    let summary = train(&gpu, &cfg, &RunOptions::default()).unwrap();
    let entropy = sfnap::data::text::Text::shipped().unigram_entropy();
    let loss = summary.last().unwrap().eval_loss;
    println!("char-LM after 300 steps: eval loss {loss:.3} nats, unigram entropy {entropy:.3}");
    assert!(
        loss < entropy - 0.5,
        "eval loss {loss} is not well below the unigram entropy {entropy}"
    );
}
