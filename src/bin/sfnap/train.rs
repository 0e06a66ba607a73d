//! `sfnap train`: its flags, the run they describe (or the run `--resume`
//! continues), and the run itself, on one process or as one of several ranks.

use std::path::PathBuf;

use crate::out::say;
use sfnap::gpu::{context, BackendChoice, Gpu};
use sfnap::model::{ModelConfig, ModelKind};
use sfnap::optim::{settings, Kind, Schedule};
use sfnap::train::{train_parallel, DataChoice, DataKind, Parallel, RunOptions, TrainConfig};
use sfnap::Error;

use crate::optim_args::OptimArgs;
use crate::progress;

#[derive(Clone, clap::Args)]
pub struct TrainArgs {
    /// The model (gpt for text, mlp for the rest).
    #[arg(long, value_enum, default_value_t = ModelKind::Mlp)]
    model: ModelKind,
    /// Data: spirals, digits, text, continual, text:PATH (a UTF-8 file, --model gpt)
    /// or csv:PATH (numeric features and a label column, --model mlp).
    #[arg(long, default_value = "digits")]
    data: DataChoice,
    /// text:PATH and csv:PATH: the fraction held out for evaluation (text: the tail;
    /// csv: rows drawn with the seed, stratified by class) [default: 0.1].
    #[arg(long, value_name = "F")]
    eval_frac: Option<f64>,
    /// csv:PATH: the label column, a 0-based index (a whole number) or a header name [default: the last column].
    #[arg(long, value_name = "COL")]
    label: Option<String>,
    /// gpt: transformer blocks [default: 2].
    #[arg(long)]
    layers: Option<usize>,
    /// gpt: model width, divisible by --heads [default: 64].
    #[arg(long)]
    width: Option<usize>,
    /// gpt: attention heads [default: 4].
    #[arg(long)]
    heads: Option<usize>,
    /// gpt: context length in characters [default: 64].
    #[arg(long)]
    context: Option<usize>,
    /// mlp: the hidden layers' widths, comma-separated [default: 256,256 on digits, 64,64 otherwise].
    #[arg(long, value_delimiter = ',', value_name = "W,W,...")]
    hidden: Option<Vec<usize>>,
    /// The optimizer and its settings.
    #[command(flatten)]
    pub optim: OptimArgs,
    /// Normalize-and-Project every hidden weight and norm after each step (every kind;
    /// refused with --no-norm).
    #[arg(long)]
    nap: bool,
    /// mlp only: no LayerNorm before each ReLU (a plain MLP with biases; refused with --nap).
    #[arg(long)]
    no_norm: bool,
    /// Steps in all.
    #[arg(long, default_value_t = 2000)]
    steps: u64,
    /// Examples (mlp) or sequences (gpt) per batch.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Evaluate at x every this many steps.
    #[arg(long, default_value_t = 100)]
    eval_every: u64,
    /// --data continual only: steps per task of the continual stream [default: 500].
    #[arg(long, value_name = "STEPS")]
    task_steps: Option<u64>,
    /// Seed of initialization and batches.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Directory for metrics.csv, loss.png and checkpoint.safetensors.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue from DIR/checkpoint.safetensors with its run's settings (--steps may grow;
    /// a setting given again must match the run's).
    #[arg(long)]
    resume: Option<PathBuf>,
    /// With --out: replace the run that DIR holds (its checkpoint, metrics and plot);
    /// without it a fresh run into a run's directory is refused.
    #[arg(long, requires = "out", conflicts_with = "resume")]
    overwrite: bool,
    /// With --out or --resume only: save a checkpoint at the first evaluation after every
    /// this many steps, and at the end [default: 1000].
    #[arg(long, value_name = "STEPS")]
    checkpoint_every: Option<u64>,
    /// Every kind: cut each batch into N equal slices run one after another, averaging their
    /// gradients before the step (gradient accumulation); under MPI each rank
    /// runs N slices of its share. Two slices give the result of 2 ranks bit for bit.
    #[arg(long, default_value_t = 1, value_name = "N")]
    accumulate: usize,
    /// Print the run's memory plan (parameters, the bytes of each part, the total and what the
    /// adapter and the machine offer) and exit without training: 0 when it fits, 2 when not.
    #[arg(long)]
    dry_run: bool,
}

/// The run `sfnap train`'s flags describe. `given` holds the flags given on the
/// command line (without dashes): the optimizer settings a kind would ignore
/// are refused as the settings table says ([`sfnap::optim::settings`]).
fn train_config(a: &TrainArgs, given: &[String]) -> Result<TrainConfig, Error> {
    let data = DataKind::open(&a.data, a.eval_frac, a.label.as_deref())?;
    let mut model = TrainConfig::default_model(&data);
    if model.kind() != a.model {
        return Err(Error::invalid(
            "model",
            format!("--model {} does not train on --data {}", a.model.name(), a.data),
        ));
    }
    match &mut model {
        ModelConfig::Mlp(m) => m.norm = !a.no_norm,
        ModelConfig::Gpt(_) if a.no_norm => {
            return Err(Error::invalid("no-norm", "only the mlp trains without its norms"))
        }
        ModelConfig::Gpt(_) => {}
    }
    apply_sizes(a, &mut model)?;
    let kind = a.optim.kind(Kind::SfPlus);
    let optimizer = a.optim.config(given, a.steps, a.seed, Kind::SfPlus)?;
    let task_steps = match (&data, a.task_steps) {
        (DataKind::Continual, steps) => steps.unwrap_or(TASK_STEPS),
        (_, None) => TASK_STEPS,
        (_, Some(_)) => {
            return Err(Error::invalid(
                "task-steps",
                "applies to --data continual only (the other data sets have no tasks)",
            ))
        }
    };
    let mut cfg = TrainConfig {
        model,
        data,
        optimizer,
        nap: a.nap,
        steps: a.steps,
        batch: a.batch,
        eval_every: a.eval_every,
        metrics_every: 10,
        seed: a.seed,
        task_steps,
    };
    // Everything is checked before the data's size is used.
    cfg.validate()?;
    if kind == Kind::SfPlus && !a.optim.sf_plus_reference && a.optim.polyak_growth.is_none() {
        let growth = sfnap::optim::plus::growth_per_step(sfnap::train::steps_per_epoch(&cfg)?);
        cfg.optimizer.polyak_growth = Some(growth);
    }
    Ok(cfg)
}

/// The flags of `sfnap train` that say how to run, not what: given with
/// `--resume`, they do not take the run's settings from the flags.
const RUN_FLAGS: [&str; 8] = [
    "resume",
    "steps",
    "out",
    "checkpoint-every",
    "dry-run",
    "accumulate",
    "backend",
    "overwrite",
];

/// The run `--resume DIR` continues: the settings of its checkpoint, for
/// `--steps` steps (by default, a schedule's length for adamw's wsd and
/// cosine, which fix it). A setting given again must match the run's: the
/// flags are read as they would be for a new run, the kind, model and data
/// defaulting to the run's, and a setting a given flag sets that differs is
/// refused by name; one no flag given sets is the run's.
fn resumed_config(a: &TrainArgs, given: &[String], dir: &std::path::Path) -> Result<TrainConfig, Error> {
    let mut cfg = sfnap::train::resume_settings(dir)?;
    let has = |flag: &str| given.iter().any(|g| g == flag);
    let length = match cfg.optimizer.schedule {
        Schedule::Wsd { total_steps, .. } | Schedule::Cosine { total_steps, .. } => Some(total_steps),
        _ => None,
    };
    let steps = match length {
        Some(total) if !has("steps") => total,
        _ => a.steps,
    };
    if let Some(total) = length.filter(|&t| t != steps) {
        return Err(Error::invalid(
            "steps",
            format!(
                "this checkpoint's adamw schedule spans the whole run ({total} steps), so --steps cannot change \
                 on resume: resume with --steps {total}"
            ),
        ));
    }
    if given.iter().any(|g| !RUN_FLAGS.contains(&g.as_str())) {
        let mut args = a.clone();
        args.steps = steps;
        if !has("opt") {
            args.optim.opt = Some(cfg.optimizer.kind);
        }
        if !has("model") {
            args.model = cfg.model.kind();
        }
        if !has("data") {
            args.data = cfg.data.choice();
        }
        let ours = train_config(&args, given)?;
        let counts = |field: &str| setting_flags(field).iter().any(|f| has(f));
        if let Some(why) = sfnap::train::resume_refusal(&cfg, &ours, &counts)? {
            let path = sfnap::train::checkpoint_path(dir);
            return Err(Error::invalid(
                path.display().to_string(),
                format!("{why}; leave a setting out and --resume takes the run's"),
            ));
        }
    }
    cfg.steps = steps;
    Ok(cfg)
}

/// The flags that set the stored setting `field` (a dotted path such as
/// `model.gpt.width`).
fn setting_flags(field: &str) -> &'static [&'static str] {
    let last = field.rsplit('.').next().unwrap_or(field);
    match field.split('.').next().unwrap_or(field) {
        "model" => match last {
            "layers" => &["layers"],
            "width" => &["width"],
            "heads" => &["heads"],
            "context" => &["context"],
            "hidden" => &["hidden"],
            "norm" => &["no-norm"],
            "vocab" | "input" | "classes" => &["data", "label"],
            _ => &["model"],
        },
        "data" => match last {
            "eval_frac" => &["eval-frac"],
            "label" => &["label"],
            _ => &["data", "label"],
        },
        "optimizer" => match last {
            "kind" => &["opt"],
            // adamw's warmup is its schedule's; the paper's sf_plus has no cap.
            "warmup_steps" => &["warmup", "schedule"],
            "polyak_growth" => &["polyak-growth", "sf-plus-reference"],
            _ if field.starts_with("optimizer.schedule") => &["schedule", "warmup"],
            // A setting with a flag of its own (the settings table's); the rest
            // (betas, momentum, ...) are set by --sf-beta or the sf_plus variant.
            name => match settings::setting(name).and_then(|s| s.flag.as_ref()) {
                Some(flag) => std::slice::from_ref(&flag.name),
                None => &["sf-beta", "sf-plus-reference"],
            },
        },
        "nap" => &["nap"],
        "batch" => &["batch"],
        "eval_every" => &["eval-every"],
        "seed" => &["seed"],
        "task_steps" => &["task-steps"],
        _ => &[],
    }
}

/// `--task-steps`' default. The runs of other data store it too, as they always
/// have, so their checkpoints' settings stay the same.
const TASK_STEPS: u64 = 500;

/// The size flags onto the default model; a flag of the other model is refused.
fn apply_sizes(a: &TrainArgs, model: &mut ModelConfig) -> Result<(), Error> {
    let gpt_flags = [
        ("layers", a.layers),
        ("width", a.width),
        ("heads", a.heads),
        ("context", a.context),
    ];
    match model {
        ModelConfig::Mlp(m) => {
            if let Some((name, _)) = gpt_flags.iter().find(|(_, v)| v.is_some()) {
                return Err(Error::invalid(
                    *name,
                    "sizes the gpt (--model gpt); the mlp's size is --hidden",
                ));
            }
            if let Some(hidden) = &a.hidden {
                m.hidden = hidden.clone();
            }
        }
        ModelConfig::Gpt(g) => {
            if a.hidden.is_some() {
                return Err(Error::invalid(
                    "hidden",
                    "sizes the mlp; the gpt's sizes are --layers, --width, --heads and --context",
                ));
            }
            g.layers = a.layers.unwrap_or(g.layers);
            g.width = a.width.unwrap_or(g.width);
            g.heads = a.heads.unwrap_or(g.heads);
            g.context = a.context.unwrap_or(g.context);
        }
    }
    Ok(())
}

/// `sfnap train`: data-parallel over MPI when built with the `mpi` feature and
/// started by a launcher (`mpirun`, `srun`); a failed rank ends the whole job.
#[cfg(feature = "mpi")]
pub fn train_main(backend: BackendChoice, a: &TrainArgs, given: &[String]) -> Result<(), Error> {
    use sfnap::distributed::mpi::{launched, MpiWorld};
    use sfnap::distributed::Collective;
    if !launched() {
        return train_cmd(backend, a, given, None);
    }
    let world = MpiWorld::init()?;
    match train_cmd(backend, a, given, Some((&world, world.local_rank()))) {
        Err(e) if world.size() > 1 => {
            // MPI_Abort ends every rank (the others may be waiting in an all-reduce).
            eprintln!("error: rank {} of {}: {e}", world.rank(), world.size());
            world.abort(e.exit_code().into())
        }
        other => other,
    }
}

/// `sfnap train` in one process; refuses to run as one of several ranks, which
/// would each train alone.
#[cfg(not(feature = "mpi"))]
pub fn train_main(backend: BackendChoice, a: &TrainArgs, given: &[String]) -> Result<(), Error> {
    let ranks = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"]
        .iter()
        .find_map(|k| std::env::var(k).ok()?.parse::<usize>().ok().filter(|&n| n > 1));
    if let Some(n) = ranks {
        return Err(Error::invalid(
            "mpi",
            format!(
                "started as one of {n} ranks, but this sfnap was built without MPI: build it with \
                 `cargo build --release --features mpi` for data-parallel training"
            ),
        ));
    }
    train_cmd(backend, a, given, None)
}

fn train_cmd(
    backend: BackendChoice,
    a: &TrainArgs,
    given: &[String],
    ranks: Option<(&dyn sfnap::distributed::Collective, usize)>,
) -> Result<(), Error> {
    let cfg = match &a.resume {
        Some(dir) => resumed_config(a, given, dir)?,
        None => train_config(a, given)?,
    };
    if a.checkpoint_every.is_some() && a.out.is_none() && a.resume.is_none() {
        return Err(Error::invalid(
            "checkpoint-every",
            "applies with --out DIR or --resume DIR only (without them no checkpoint is written)",
        ));
    }
    let parallel = Parallel {
        comm: ranks.map(|(c, _)| c),
        accumulate: a.accumulate,
    };
    if a.accumulate == 0 {
        return Err(Error::invalid("accumulate", "must be at least 1"));
    }
    sfnap::distributed::shard(cfg.batch, parallel.slices(), 0)?;
    let (rank, lead) = match ranks {
        Some((c, _)) if c.size() > 1 => (c.rank(), format!("rank {} of {}: ", c.rank(), c.size())),
        _ => (0, String::new()),
    };
    let gpu = match ranks {
        Some((_, local)) => pollster::block_on(Gpu::from_adapter(context::pick_adapter_for_rank(backend, local)?))?,
        None => Gpu::new(backend)?,
    };
    eprintln!("{lead}adapter: {}", gpu.describe());
    if cfg.optimizer.kind == Kind::SfPlus && rank == 0 {
        match cfg.optimizer.polyak_growth {
            Some(g) => eprintln!(
                "sf_plus: sfnap's step (Polyak step's cap grows at most {g:.6}x a step, betas (0, 0.999)); \
                 --sf-plus-reference runs the paper's"
            ),
            None => eprintln!("sf_plus: the paper's step (uncapped, betas (0.9, 0.95))"),
        }
    }
    // Rank 0 alone writes metrics.csv, loss.png and checkpoints; every rank reads --resume.
    let opts = RunOptions {
        out: a.out.clone().or_else(|| a.resume.clone()).filter(|_| rank == 0),
        resume: a.resume.clone(),
        stop_after: None,
        checkpoint_every: a.checkpoint_every,
        overwrite: a.overwrite,
    };
    if a.dry_run {
        return dry_run(&gpu, &cfg, &opts, &parallel);
    }
    let summary = if rank == 0 {
        train_parallel(&gpu, &cfg, &opts, &mut progress::Bar::default(), parallel)?
    } else {
        train_parallel(&gpu, &cfg, &opts, &mut (), parallel)?
    };
    if rank != 0 {
        return Ok(());
    }
    if let Some(dir) = &opts.out {
        sfnap::plot::plot_run(dir, &cfg.optimizer.kind.to_string())?;
    }
    if let Some(last) = summary.last() {
        say!(
            "step {}: eval loss {:.4}, eval accuracy {:.2}% (at x), train loss {:.4} (at y)",
            last.step,
            last.eval_loss,
            100.0 * last.eval_accuracy,
            last.train_loss
        );
    }
    if let Some(dir) = &opts.out {
        say!(
            "wrote {0}/metrics.csv, {0}/loss.png, {0}/checkpoint.safetensors",
            dir.display()
        );
    }
    Ok(())
}

/// `sfnap train --dry-run`: the memory plan, and whether it fits.
fn dry_run(gpu: &Gpu, cfg: &TrainConfig, opts: &RunOptions, parallel: &Parallel<'_>) -> Result<(), Error> {
    let (plan, capacity, fit) = sfnap::train::memory_plan(gpu, cfg, opts, parallel)?;
    for line in plan.describe(&capacity) {
        say!("{line}");
    }
    fit?;
    say!("fits: `sfnap train` without --dry-run trains it");
    Ok(())
}
