//! `sfnap bench`: optimizer steps against the copy bandwidth, whole training
//! steps (`--train`) or the linear layer's product (`--matmul`).

use crate::out::say;
use sfnap::gpu::{BackendChoice, Gpu};
use sfnap::model::ModelKind;
use sfnap::optim::bf16::StateDtype;
use sfnap::optim::Kind;
use sfnap::Error;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Optimizer kind [--train: default adamw].
    #[arg(long, value_enum, required_unless_present_any = ["train", "matmul", "memory_table"])]
    kind: Option<Kind>,
    /// Parameters in all.
    #[arg(long, required_unless_present_any = ["train", "matmul", "memory_table"])]
    params: Option<usize>,
    /// Tensors the parameters are split over (ragged sizes).
    #[arg(long, default_value_t = 1)]
    tensors: usize,
    /// Run NaP's norms and projection after every step (every tensor its own group).
    #[arg(long)]
    nap: bool,
    /// adamw_sf's inner momentum (0: none).
    #[arg(long, default_value_t = 0.0)]
    inner_momentum: f64,
    /// Timed steps per trial (default: enough to move about 1 GB, 8 to 1000; --train: about
    /// half a second's worth, 5 to 1000); the fastest of 5 trials is reported (--train: the median).
    #[arg(long)]
    steps: Option<usize>,
    /// Storage binding limit in bytes, below the device's, to force more arena segments.
    #[arg(long)]
    max_binding: Option<u64>,
    /// Time whole training steps (batch, forward, backward, optimizer) of `sfnap train`'s
    /// model instead: gpt (--data text) or mlp (--data digits).
    #[arg(long, value_enum, value_name = "MODEL", conflicts_with_all = ["params", "tensors", "nap", "inner_momentum", "max_binding", "state_dtype"])]
    train: Option<ModelKind>,
    /// How the optimizer state (z, v, m, x) is stored: f32, or bf16 (stochastic rounding);
    /// parameters and gradients stay f32.
    #[arg(long, value_enum, default_value_t = StateDtype::F32, value_name = "DTYPE")]
    state_dtype: StateDtype,
    /// Print, on paper, the largest model whose parameters, gradients and optimizer state
    /// fit in 24, 80 and 141 GiB for every kind and state precision (a Markdown table), beside
    /// PyTorch's f32 AdamW and bitsandbytes' 8-bit AdamW; nothing is run.
    #[arg(long, conflicts_with_all = ["kind", "params", "tensors", "nap", "inner_momentum", "steps", "max_binding", "train", "matmul", "batch", "profile", "json", "state_dtype", "foreign"])]
    memory_table: bool,
    /// Time the linear layer's product of two N x N matrices instead, in GFLOP/s.
    #[arg(long, value_name = "N", conflicts_with_all = ["kind", "params", "tensors", "nap", "inner_momentum", "max_binding", "train", "batch", "steps", "profile", "state_dtype"])]
    matmul: Option<usize>,
    /// --train only: sequences (gpt) or examples (mlp) per batch [default: gpt 8, mlp 64].
    #[arg(long)]
    batch: Option<usize>,
    /// --train only: also time every dispatch of a step in a pass of its own and print
    /// where the step's GPU time goes (needs timestamp queries).
    #[arg(long, requires = "train")]
    profile: bool,
    /// Time the step on parameters and gradients in buffers of the caller's, packed at
    /// 4-byte offsets (sfnap::foreign), against the same step on sfnap's arena, interleaved.
    #[arg(long, conflicts_with_all = ["train", "matmul", "memory_table", "max_binding"])]
    foreign: bool,
    /// Print one JSON object instead of a readable line.
    #[arg(long)]
    json: bool,
}

fn bench_train_cmd(backend: BackendChoice, opts: &sfnap::bench::TrainBenchOptions, json: bool) -> Result<(), Error> {
    opts.config()?;
    let result = sfnap::bench::run_train(&Gpu::new(backend)?, opts)?;
    print_bench(&result, result.line(), json)
}

fn bench_cmd(backend: BackendChoice, opts: &sfnap::bench::BenchOptions, json: bool) -> Result<(), Error> {
    opts.validate()?;
    let result = sfnap::bench::run(&Gpu::new(backend)?, opts)?;
    print_bench(&result, result.line(), json)
}

/// A bench result as one line of JSON (`--json`) or of text.
fn print_bench(result: &impl serde::Serialize, line: String, json: bool) -> Result<(), Error> {
    if json {
        let text = serde_json::to_string(result).map_err(|e| Error::json("the bench result", e))?;
        say!("{text}");
    } else {
        say!("{line}");
    }
    Ok(())
}

/// `sfnap bench`: optimizer steps, whole training steps (`--train`) or the
/// linear layer's product (`--matmul`).
pub fn bench_main(backend: BackendChoice, a: &BenchArgs) -> Result<(), Error> {
    if a.memory_table {
        say!("{}", sfnap::bench::memory_table().trim_end());
        return Ok(());
    }
    if let Some(n) = a.matmul {
        let result = sfnap::bench::run_matmul(&Gpu::new(backend)?, n)?;
        return print_bench(&result, result.line(), a.json);
    }
    let kind = a.kind.unwrap_or(Kind::Adamw);
    if let Some(model) = a.train {
        let opts = sfnap::bench::TrainBenchOptions {
            model,
            kind,
            batch: a.batch,
            steps: a.steps,
            profile: a.profile,
        };
        return bench_train_cmd(backend, &opts, a.json);
    }
    if a.batch.is_some() {
        return Err(Error::invalid("--batch", "applies to --train only"));
    }
    let opts = sfnap::bench::BenchOptions {
        kind,
        inner_momentum: a.inner_momentum,
        params: a.params.expect("clap requires --params without --train"),
        tensors: a.tensors,
        nap: a.nap,
        steps: a.steps,
        max_binding_bytes: a.max_binding,
        state_dtype: a.state_dtype,
    };
    if a.foreign {
        opts.validate()?;
        let result = sfnap::bench::run_foreign(&Gpu::new(backend)?, &opts)?;
        return print_bench(&result, result.line(), a.json);
    }
    bench_cmd(backend, &opts, a.json)
}
