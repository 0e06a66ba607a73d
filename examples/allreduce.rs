//! Times sfnap's gradient exchange under MPI (feature `mpi`): the gradient of
//! P parameters read from the device in buckets, summed over the ranks with
//! MPI all-reduce, divided and written back, as a data-parallel training step
//! does it after its backward pass. Figures for BENCHMARKS.md:
//!
//! ```text
//! cargo build --release --features mpi --example allreduce
//! mpirun -n 2 target/release/examples/allreduce 1000000 16000000 64000000
//! ```
//!
//! Prints, for every size, the mean time per step and its parts (download,
//! all-reduce, upload), and the bare MPI all-reduce of the same bytes in one
//! call from host memory for comparison.

use std::time::Instant;

use mpi::collective::{CommunicatorCollectives, SystemOperation};
use sfnap::distributed::mpi::MpiWorld;
use sfnap::distributed::{Collective, GradientBuckets};
use sfnap::gpu::{context, BackendChoice, Gpu};

fn main() -> Result<(), sfnap::Error> {
    let world = MpiWorld::init()?;
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("parameter counts"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000_000, 16_000_000, 64_000_000]
    } else {
        sizes
    };
    let adapter = context::pick_adapter_for_rank(BackendChoice::from_env()?, world.local_rank())?;
    let gpu = pollster::block_on(Gpu::from_adapter(adapter))?;
    let lead = world.rank() == 0;
    if lead {
        println!(
            "{} ranks, adapter {}, buckets of {} MiB",
            world.size(),
            gpu.describe(),
            sfnap::distributed::BUCKET_BYTES >> 20
        );
        println!("| parameters | MB moved per rank | step (ms) | download (ms) | all-reduce (ms) | upload (ms) | bare MPI all-reduce (ms) |");
        println!("|---:|---:|---:|---:|---:|---:|---:|");
    }
    for &params in &sizes {
        let elements = params.next_multiple_of(64);
        let values: Vec<f32> = (0..elements).map(|i| (i % 97) as f32 * 1e-3).collect();
        let buffer = gpu.storage_init("gradient", &values);
        let mut buckets = GradientBuckets::new(&gpu, elements);
        let reps = (200_000_000 / elements).clamp(3, 50);
        // One step untimed (first mappings, MPI connections).
        buckets.all_reduce(&gpu, Some(&world), &buffer, elements, world.size() as f32, None)?;
        gpu.wait()?;
        let before = buckets.timing();
        let started = Instant::now();
        for _ in 0..reps {
            buckets.all_reduce(&gpu, Some(&world), &buffer, elements, world.size() as f32, None)?;
        }
        gpu.wait()?;
        let step = started.elapsed().as_secs_f64() / reps as f64;
        let t = buckets.timing();
        let per = |a: f64, b: f64| 1e3 * (a - b) / reps as f64;
        // The same bytes in one MPI call, host to host.
        let send = vec![1.0f32; elements];
        let mut recv = vec![0.0f32; elements];
        let raw = mpi::topology::SimpleCommunicator::world();
        raw.all_reduce_into(&send[..], &mut recv[..], SystemOperation::sum());
        let started = Instant::now();
        for _ in 0..reps {
            raw.all_reduce_into(&send[..], &mut recv[..], SystemOperation::sum());
        }
        let bare = started.elapsed().as_secs_f64() / reps as f64;
        if lead {
            println!(
                "| {params} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
                elements as f64 * 4.0 / 1e6,
                1e3 * step,
                per(t.download_s, before.download_s),
                per(t.reduce_s, before.reduce_s),
                per(t.upload_s, before.upload_s),
                1e3 * bare
            );
        }
    }
    Ok(())
}
