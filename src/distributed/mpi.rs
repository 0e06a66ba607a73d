//! The [`Collective`] over MPI (cargo feature `mpi`): the world of the ranks
//! that `mpirun -n N` or Slurm's `srun` started.

use mpi::collective::{CommunicatorCollectives, SystemOperation};
use mpi::environment::Universe;
use mpi::topology::{Communicator, SimpleCommunicator};

use super::Collective;
use crate::error::{Error, Result};

/// Environment variables that a launcher sets in the processes it starts
/// (OpenMPI, PMIx, PMI-1/2 as MPICH and Slurm's `srun --mpi=...` use them):
/// with none set, the program was started on its own and does not initialize MPI.
pub const LAUNCHER_VARS: [&str; 5] = [
    "OMPI_COMM_WORLD_SIZE",
    "PMIX_RANK",
    "PMI_RANK",
    "PMI_SIZE",
    "MPI_LOCALNRANKS",
];

/// Whether a launcher started this process (one of [`LAUNCHER_VARS`] is set).
pub fn launched() -> bool {
    LAUNCHER_VARS.iter().any(|k| std::env::var_os(k).is_some())
}

/// MPI's world, initialized once per process (MPI is finalized when it is dropped).
pub struct MpiWorld {
    _universe: Universe,
    world: SimpleCommunicator,
    local_rank: usize,
    local_size: usize,
}

impl MpiWorld {
    /// Initializes MPI (single-threaded: only the training loop's thread calls
    /// it) and finds the ranks sharing this node through a shared-memory split.
    pub fn init() -> Result<MpiWorld> {
        let universe = mpi::initialize().ok_or_else(|| Error::Gpu("MPI was initialized twice".into()))?;
        let world = universe.world();
        let node = world.split_shared(world.rank());
        Ok(MpiWorld {
            local_rank: node.rank() as usize,
            local_size: node.size() as usize,
            _universe: universe,
            world,
        })
    }

    /// This rank's index among the ranks on its node (it picks the adapter).
    pub fn local_rank(&self) -> usize {
        self.local_rank
    }

    /// Ranks on this node.
    pub fn local_size(&self) -> usize {
        self.local_size
    }

    /// Ends every rank of the job with `code` (MPI_Abort): a failed rank calls
    /// it so that the others, waiting in a collective, do not hang.
    pub fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }
}

impl Collective for MpiWorld {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn all_reduce_sum(&self, send: &[f32], recv: &mut [f32]) -> Result<()> {
        if send.len() != recv.len() || send.len() > i32::MAX as usize {
            return Err(Error::Gpu(format!(
                "all-reduce of {} values into {}",
                send.len(),
                recv.len()
            )));
        }
        // MPI's default error handler ends the job on a failed collective.
        mpi::request::scope(|scope| {
            wait(
                self.world
                    .immediate_all_reduce_into(scope, send, recv, SystemOperation::sum()),
            )
        });
        Ok(())
    }

    fn all_gather(&self, value: u64) -> Result<Vec<u64>> {
        let mut all = vec![0u64; self.size()];
        mpi::request::scope(|scope| wait(self.world.immediate_all_gather_into(scope, &value, &mut all[..])));
        Ok(all)
    }
}

/// Completes a nonblocking collective: polled without pause for
/// [`SPIN`], then with short sleeps. A blocking MPI call spins (or yields) for
/// as long as the slowest rank takes; on a host where ranks share cores with
/// each other or with a CPU driver's threads (lavapipe), a spinning rank takes
/// the core the others need: on 2 shared cores, a 3-value all-reduce took 50 ms
/// blocking and 0.2 ms this way. The sleeps add at most [`NAP`] to a wait.
fn wait<'a, R: ?Sized, S: mpi::request::Scope<'a>>(mut request: mpi::request::Request<'a, R, S>) {
    let started = std::time::Instant::now();
    loop {
        match request.test() {
            Ok(_) => return,
            Err(pending) => request = pending,
        }
        if started.elapsed() > SPIN {
            std::thread::sleep(NAP);
        } else {
            std::hint::spin_loop();
        }
    }
}

/// How long [`wait`] polls without pause.
const SPIN: std::time::Duration = std::time::Duration::from_micros(50);
/// How long [`wait`] sleeps between polls after that.
const NAP: std::time::Duration = std::time::Duration::from_micros(20);
