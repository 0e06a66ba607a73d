//! The `sfnap` command line: list adapters, replay optimizer cases.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sfnap::gpu::{context, BackendChoice, Gpu};
use sfnap::replay::{self, ReplayCase};
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
    }
    Ok(())
}

fn write_atomic(path: &std::path::Path, text: &str) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}

fn replay_cmd(backend: BackendChoice, case: &std::path::Path, out: Option<&std::path::Path>) -> Result<(), Error> {
    let case = ReplayCase::load(case)?;
    let gpu = Gpu::new(backend)?;
    let result = replay::run_gpu(&gpu, &case)?;
    let order: Vec<String> = case.tensors.iter().map(|t| t.name.clone()).collect();
    let json = result.to_json(&order);
    match out {
        Some(path) => write_atomic(path, &json),
        None => {
            println!("{json}");
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn,wgpu_hal::gles::egl=off")).init();
    let cli = Cli::parse();
    let result = BackendChoice::parse(&cli.backend).and_then(|backend| match &cli.command {
        Command::Devices => devices(),
        Command::Replay { case, out } => replay_cmd(backend, case, out.as_deref()),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                Error::Invalid { .. } | Error::Io { .. } => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
