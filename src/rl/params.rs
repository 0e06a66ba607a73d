//! The uniform every kernel of `shaders/dqn.wgsl` reads.

/// `DqnParams` of `shaders/dqn.wgsl`; each dispatch fills the fields its entry reads.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct DqnParams {
    /// Rows: environments, or the batch's rows.
    pub n: u32,
    /// The network's input width.
    pub input: u32,
    /// The environment's observation width.
    pub obs_dim: u32,
    /// The environment's actions.
    pub valid: u32,
    /// The network's outputs.
    pub head: u32,
    /// Replay rows (episodes: the log's entries).
    pub capacity: u32,
    /// The generator's key.
    pub key: [u32; 2],
    /// Agent steps of epsilon's linear decay.
    pub eps_decay: u32,
    /// Offset levels.
    pub levels: u32,
    /// Agent steps per level.
    pub switch_every: u32,
    /// The environment's number in the episode log.
    pub kind: u32,
    /// Epsilon at agent step 0.
    pub eps_start: f32,
    /// Epsilon after the decay.
    pub eps_end: f32,
    /// The discount.
    pub gamma: f32,
    /// Environments (the rows an agent step writes).
    pub envs: u32,
    /// What `store` multiplies the rewards by.
    pub reward_scale: f32,
    /// Padding to the uniform's 16-byte multiple.
    pub pad: [u32; 3],
}

impl DqnParams {
    /// All zero but one level of one agent step (a dispatch sets what it reads).
    pub fn new() -> DqnParams {
        DqnParams {
            levels: 1,
            switch_every: 1,
            reward_scale: 1.0,
            ..bytemuck::Zeroable::zeroed()
        }
    }
}

/// Invocations per workgroup of the kernels over rows (`ROW_WG` in `shaders/dqn.wgsl`).
pub(crate) const WG: usize = 64;

/// Workgroups for `rows` rows.
pub(crate) fn groups(rows: usize) -> [u32; 3] {
    [rows.div_ceil(WG) as u32, 1, 1]
}
