//! The `sfnap` command line: train, list adapters, replay optimizer cases, bench.
//! Built with the `cli` feature (on by default).

mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sfnap::gpu::{context, support, BackendChoice, Gpu};
use sfnap::optim::{Kind, OptimConfig, Schedule};
use sfnap::replay::{self, ReplayCase};
use sfnap::train::{train_parallel, DataKind, ModelConfig, Parallel, RunOptions, TrainConfig};
use sfnap::Error;

#[derive(Parser)]
#[command(
    name = "sfnap",
    version,
    about = "Schedule-Free optimizers, ScheduleFree+ and NaP on any GPU"
)]
struct Cli {
    /// GPU backend: vulkan, metal, dx12, gl or auto (best available).
    #[arg(long, global = true, env = "SFNAP_BACKEND", default_value = "auto")]
    backend: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model on a data set with one optimizer; metrics, plot and checkpoints go to --out.
    Train(TrainArgs),
    /// List every GPU adapter with the limits that matter to sfnap.
    Devices,
    /// Run a recorded gradient sequence through an optimizer on the GPU (see spec/replay.md).
    Replay {
        /// The case file (JSON).
        case: PathBuf,
        /// Write the result here instead of stdout (atomically: no partial file on error).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Average several checkpoints of one run's settings into one (see README, "Merging").
    Merge {
        /// Checkpoint files, or run directories holding checkpoint.safetensors.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// The merged checkpoint (as DIR/checkpoint.safetensors, `train --resume DIR` continues it).
        #[arg(long)]
        out: PathBuf,
        /// uniform (each checkpoint alike) or sf (each weighs the steps since the one before it).
        #[arg(long, default_value = "uniform")]
        weights: String,
    },
    /// Evaluate a checkpoint's x on its run's evaluation set.
    Eval {
        /// A checkpoint file, or a run directory holding checkpoint.safetensors.
        input: PathBuf,
    },
    /// Time optimizer steps against the adapter's copy bandwidth (see BENCHMARKS.md).
    Bench {
        /// Optimizer kind: sgd_sf, adamw_sf, adamw_sf_paper, radam_sf, sf_plus or adamw.
        #[arg(long)]
        kind: String,
        /// Parameters in all.
        #[arg(long)]
        params: usize,
        /// Tensors the parameters are split over (ragged sizes).
        #[arg(long, default_value_t = 1)]
        tensors: usize,
        /// Run NaP's norms and projection after every step (every tensor its own group).
        #[arg(long)]
        nap: bool,
        /// adamw_sf's inner momentum (0: none).
        #[arg(long, default_value_t = 0.0)]
        inner_momentum: f64,
        /// Timed steps per trial (default: enough to move about 1 GB, 8 to 1000); the fastest of 5 trials is reported.
        #[arg(long)]
        steps: Option<usize>,
        /// Storage binding limit in bytes, below the device's, to force more arena segments.
        #[arg(long)]
        max_binding: Option<u64>,
        /// Print one JSON object instead of a readable line.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct TrainArgs {
    /// Model: mlp or gpt.
    #[arg(long, default_value = "mlp")]
    model: String,
    /// Data: spirals, digits, text or continual.
    #[arg(long, default_value = "digits")]
    data: String,
    /// Optimizer kind: sgd_sf, adamw_sf, adamw_sf_paper, radam_sf, sf_plus or adamw.
    #[arg(long, default_value = "sf_plus")]
    opt: String,
    /// Learning rate (sf_plus: a multiplier of its Polyak step, default 1).
    #[arg(long)]
    lr: Option<f64>,
    /// Warmup steps (Schedule-Free kinds but sf_plus, which refuses it; adamw: its schedule's warmup).
    #[arg(long, default_value_t = 0)]
    warmup: u64,
    /// adamw's schedule: constant, warmup, wsd (last 20% decays) or cosine.
    #[arg(long, default_value = "constant")]
    schedule: String,
    /// Weight decay (as each kind defines it).
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Normalize-and-Project every hidden weight and norm after each step.
    #[arg(long)]
    nap: bool,
    /// Schedule-Free kinds but sf_plus: x averages about the last STEPS steps
    /// (c = max(w / W_sum, 1 / STEPS)) instead of the whole run; 0: the paper's average.
    #[arg(long, default_value_t = 0, value_name = "STEPS")]
    sf_window: u64,
    /// Schedule-Free kinds but sf_plus: the interpolation weight beta of y = (1 - beta) z + beta x
    /// (betas[0] of the Adam kinds, sgd_sf's momentum; default 0.9).
    #[arg(long, value_name = "BETA")]
    sf_beta: Option<f64>,
    /// mlp: no LayerNorm before each ReLU (a plain MLP with biases; no NaP).
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
    /// Steps per task of the continual stream.
    #[arg(long, default_value_t = 500)]
    task_steps: u64,
    /// Seed of initialization and batches.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Directory for metrics.csv, loss.png and checkpoint.safetensors.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue from DIR/checkpoint.safetensors (same settings; --steps may grow).
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Save a checkpoint at the first evaluation after every this many steps (and at the end).
    #[arg(long, default_value_t = 1000)]
    checkpoint_every: u64,
    /// Cut each batch into N equal slices run one after another, averaging their
    /// gradients before the step (gradient accumulation); under MPI each rank
    /// runs N slices of its share. Two slices give the result of 2 ranks bit for bit.
    #[arg(long, default_value_t = 1, value_name = "N")]
    accumulate: usize,
}

fn train_config(a: &TrainArgs) -> Result<TrainConfig, Error> {
    let data = DataKind::parse(&a.data)?;
    let mut model = match (a.model.as_str(), TrainConfig::default_model(data)) {
        ("mlp", m @ ModelConfig::Mlp(_)) | ("gpt", m @ ModelConfig::Gpt(_)) => m,
        ("mlp" | "gpt", _) => {
            return Err(Error::invalid(
                "model",
                format!("--model {} does not train on --data {}", a.model, a.data),
            ))
        }
        (other, _) => {
            return Err(Error::invalid(
                "model",
                format!("unknown model `{other}` (expected mlp or gpt)"),
            ))
        }
    };
    match &mut model {
        ModelConfig::Mlp(m) => m.norm = !a.no_norm,
        ModelConfig::Gpt(_) if a.no_norm => {
            return Err(Error::invalid("no-norm", "only the mlp trains without its norms"))
        }
        ModelConfig::Gpt(_) => {}
    }
    let mut optimizer = OptimConfig::new(Kind::parse(&a.opt).map_err(|e| Error::invalid("opt", e.to_string()))?);
    optimizer.lr = a.lr;
    optimizer.weight_decay = a.weight_decay;
    optimizer.sf_window = a.sf_window;
    if let Some(beta) = a.sf_beta {
        match optimizer.kind {
            Kind::SgdSf => optimizer.momentum = beta,
            Kind::AdamwSf | Kind::AdamwSfPaper | Kind::RadamSf => {
                optimizer.betas = Some([beta, optimizer.betas().1]);
            }
            Kind::Adamw | Kind::SfPlus => {
                let why = "has no (y, z) interpolation weight (sgd_sf, adamw_sf, adamw_sf_paper, radam_sf have)";
                return Err(Error::invalid("sf-beta", format!("{} {why}", optimizer.kind)));
            }
        }
    }
    if optimizer.kind != Kind::Adamw {
        optimizer.warmup_steps = a.warmup;
    }
    optimizer.schedule = match a.schedule.as_str() {
        "constant" => Schedule::Constant,
        "warmup" => Schedule::Warmup { warmup_steps: a.warmup },
        "wsd" => Schedule::Wsd {
            warmup_steps: a.warmup,
            decay_steps: (a.steps / 5).max(1),
            total_steps: a.steps,
        },
        "cosine" => Schedule::Cosine {
            warmup_steps: a.warmup,
            total_steps: a.steps,
            final_frac: 0.0,
        },
        other => {
            return Err(Error::invalid(
                "schedule",
                format!("unknown schedule `{other}` (expected constant, warmup, wsd or cosine)"),
            ))
        }
    };
    if optimizer.kind == Kind::Adamw && a.schedule == "constant" && a.warmup > 0 {
        return Err(Error::invalid(
            "warmup",
            "adamw's constant schedule has no warmup: use --schedule warmup, wsd or cosine",
        ));
    }
    if optimizer.kind != Kind::Adamw && a.schedule != "constant" {
        return Err(Error::invalid(
            "schedule",
            "only adamw takes a schedule; the Schedule-Free kinds need none",
        ));
    }
    Ok(TrainConfig {
        model,
        data,
        optimizer,
        nap: a.nap,
        steps: a.steps,
        batch: a.batch,
        eval_every: a.eval_every,
        metrics_every: 10,
        seed: a.seed,
        task_steps: a.task_steps,
    })
}

/// `sfnap train`: data-parallel over MPI when built with the `mpi` feature and
/// started by a launcher (`mpirun`, `srun`); a failed rank ends the whole job.
#[cfg(feature = "mpi")]
fn train_main(backend: BackendChoice, a: &TrainArgs) -> Result<(), Error> {
    use sfnap::distributed::mpi::{launched, MpiWorld};
    use sfnap::distributed::Collective;
    if !launched() {
        return train_cmd(backend, a, None);
    }
    let world = MpiWorld::init()?;
    match train_cmd(backend, a, Some((&world, world.local_rank()))) {
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
fn train_main(backend: BackendChoice, a: &TrainArgs) -> Result<(), Error> {
    let ranks = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"]
        .iter()
        .find_map(|k| std::env::var(k).ok()?.parse::<usize>().ok().filter(|&n| n > 1));
    if let Some(n) = ranks {
        return Err(Error::invalid(
            "mpi",
            format!(
                "started as one of {n} ranks, but this sfnap was built without MPI: build it with                  `cargo build --release --features mpi` for data-parallel training"
            ),
        ));
    }
    train_cmd(backend, a, None)
}

fn train_cmd(
    backend: BackendChoice,
    a: &TrainArgs,
    ranks: Option<(&dyn sfnap::distributed::Collective, usize)>,
) -> Result<(), Error> {
    let cfg = train_config(a)?;
    cfg.validate()?;
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
    // Rank 0 alone writes metrics.csv, loss.png and checkpoints; every rank reads --resume.
    let opts = RunOptions {
        out: a.out.clone().or_else(|| a.resume.clone()).filter(|_| rank == 0),
        resume: a.resume.clone(),
        stop_after: None,
        checkpoint_every: Some(a.checkpoint_every),
    };
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
        println!(
            "step {}: eval loss {:.4}, eval accuracy {:.2}% (at x), train loss {:.4} (at y)",
            last.step,
            last.eval_loss,
            100.0 * last.eval_accuracy,
            last.train_loss
        );
    }
    if let Some(dir) = &opts.out {
        println!(
            "wrote {0}/metrics.csv, {0}/loss.png, {0}/checkpoint.safetensors",
            dir.display()
        );
    }
    Ok(())
}

fn eval_line(row: &sfnap::train::MetricsRow) -> String {
    format!(
        "step {}: eval loss {:.4}, eval accuracy {:.2}% (at x)",
        row.step,
        row.eval_loss,
        100.0 * row.eval_accuracy
    )
}

fn merge_cmd(backend: BackendChoice, inputs: &[PathBuf], out: &std::path::Path, weights: &str) -> Result<(), Error> {
    let weights = sfnap::train::MergeWeights::parse(weights)?;
    let gpu = Gpu::new(backend)?;
    let w = sfnap::train::merge(&gpu, inputs, out, weights)?;
    for (input, wi) in inputs.iter().zip(&w) {
        println!("{:.4}  {}", wi, input.display());
    }
    let row = sfnap::train::evaluate_checkpoint(&gpu, out)?;
    println!("wrote {}: {}", out.display(), eval_line(&row));
    Ok(())
}

fn eval_cmd(backend: BackendChoice, input: &std::path::Path) -> Result<(), Error> {
    let gpu = Gpu::new(backend)?;
    let row = sfnap::train::evaluate_checkpoint(&gpu, input)?;
    println!("{}", eval_line(&row));
    Ok(())
}

fn devices() -> Result<(), Error> {
    let list = context::adapters();
    if list.is_empty() {
        return Err(Error::NoAdapter(
            "no GPU adapter found. Install Mesa's CPU Vulkan driver (Debian: apt-get install mesa-vulkan-drivers, \
             or `make setup`)"
                .into(),
        ));
    }
    for (i, a) in list.iter().enumerate() {
        let info = a.get_info();
        let l = a.limits();
        println!("[{i}] {}", info.name);
        println!("    backend: {:?}   type: {:?}", info.backend, info.device_type);
        println!("    driver: {} {}", info.driver, info.driver_info);
        println!(
            "    max_storage_buffer_binding_size: {} MiB   max_buffer_size: {} MiB   storage buffers per stage: {}",
            l.max_storage_buffer_binding_size >> 20,
            l.max_buffer_size >> 20,
            l.max_storage_buffers_per_shader_stage
        );
        let support = support::check(&l, &a.get_downlevel_capabilities(), a.features());
        for line in support::describe(&support) {
            println!("    {line}");
        }
    }
    Ok(())
}

fn replay_cmd(backend: BackendChoice, case: &std::path::Path, out: Option<&std::path::Path>) -> Result<(), Error> {
    let case = ReplayCase::load(case)?;
    let gpu = Gpu::new(backend)?;
    let result = replay::run_gpu(&gpu, &case)?;
    let order: Vec<String> = case.tensors.iter().map(|t| t.name.clone()).collect();
    let json = result.to_json(&order);
    match out {
        Some(path) => sfnap::checkpoint::write_atomic(path, json.as_bytes()),
        None => {
            println!("{json}");
            Ok(())
        }
    }
}

fn bench_cmd(backend: BackendChoice, opts: &sfnap::bench::BenchOptions, json: bool) -> Result<(), Error> {
    opts.validate()?;
    let gpu = Gpu::new(backend)?;
    let result = sfnap::bench::run(&gpu, opts)?;
    if json {
        let text = serde_json::to_string(&result).map_err(|e| Error::Gpu(format!("bench result as JSON: {e}")))?;
        println!("{text}");
    } else {
        println!("{}", result.line());
    }
    Ok(())
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn,wgpu_hal::gles::egl=off")).init();
    let cli = Cli::parse();
    let result = BackendChoice::parse(&cli.backend).and_then(|backend| match &cli.command {
        Command::Devices => devices(),
        Command::Train(args) => train_main(backend, args),
        Command::Replay { case, out } => replay_cmd(backend, case, out.as_deref()),
        Command::Merge { inputs, out, weights } => merge_cmd(backend, inputs, out, weights),
        Command::Eval { input } => eval_cmd(backend, input),
        Command::Bench {
            kind,
            params,
            tensors,
            nap,
            inner_momentum,
            steps,
            max_binding,
            json,
        } => sfnap::optim::Kind::parse(kind)
            .map_err(|e| match e {
                Error::Invalid { msg, .. } => Error::invalid("--kind", msg),
                other => other,
            })
            .and_then(|kind| {
                let opts = sfnap::bench::BenchOptions {
                    kind,
                    inner_momentum: *inner_momentum,
                    params: *params,
                    tensors: *tensors,
                    nap: *nap,
                    steps: *steps,
                    max_binding_bytes: *max_binding,
                };
                bench_cmd(backend, &opts, *json)
            }),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
