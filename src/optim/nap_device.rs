//! NaP's device half: the group and chunk tables, rho measured at registration,
//! and the passes that run after every optimizer step (chunk norms, group norms,
//! projection back to rho), chosen by the kind's [`NapRule`].

use crate::arena::Arena;
use crate::error::Result;
use crate::gpu::buffers::whole;
use crate::gpu::kernels::Entry;
use crate::gpu::{Dispatch, Gpu, PackedReadback};
use crate::nap::{GroupReport, GroupRow, NapPlan};
use crate::optim::plan::{Grid, Plan};
use crate::optim::spec::{KindSpec, NapRule};

/// NaP on the device for one optimizer.
pub(crate) struct NapDevice {
    plan: NapPlan,
    groups_buf: wgpu::Buffer,
    norms_buf: wgpu::Buffer,
    norms: Dispatch,
    chunk_sums: Dispatch,
    group: Dispatch,
    project: Dispatch,
}

impl NapDevice {
    /// Uploads the tables and measures each group's rho where none is given (on
    /// the device, from the parameters as they are now: no readback).
    pub fn new(gpu: &Gpu, arena: &Arena, opt: &Plan, plan: NapPlan, rule: NapRule) -> Result<NapDevice> {
        let chunk_ids = gpu.storage_init("nap chunk ids", &plan.chunk_ids);
        let norms_buf = gpu.storage("nap norms", 8 * plan.groups.len() as u64);
        let groups_buf = gpu.storage("nap groups", 16 * plan.groups.len() as u64);
        // rho: given, or the group's norm now, measured on the device (0 marks "measure").
        let rows: Vec<GroupRow> = plan
            .ranges
            .iter()
            .zip(&plan.rho)
            .map(|(&(start, end), rho)| GroupRow {
                start,
                end,
                rho: rho.unwrap_or(0.0) as f32,
                pad0: 0,
            })
            .collect();
        gpu.queue.write_buffer(&groups_buf, 0, bytemuck::cast_slice(&rows));
        let tables = [
            (10, whole(&groups_buf)),
            (13, whole(&norms_buf)),
            (17, whole(&chunk_ids)),
        ];
        let n_groups = plan.groups.len();
        let group = gpu.dispatch(
            "nap",
            "group_norms",
            &opt.resources(arena, 0, &tables),
            [n_groups as u32, 1, 1],
        )?;
        let measure = opt.per_segment(gpu, arena, Entry::NORMS_W, &tables, Grid::Chunks)?;
        let init_rho = gpu.dispatch(
            "nap",
            "init_rho",
            &opt.resources(arena, 0, &tables),
            [n_groups.div_ceil(64) as u32, 1, 1],
        )?;
        gpu.run(&[&measure, &opt.chunk_sums, &group, &init_rho]);
        Ok(NapDevice {
            norms: opt.per_segment(gpu, arena, rule.norms, &tables, Grid::Chunks)?,
            project: opt.per_segment(gpu, arena, rule.project, &tables, Grid::Chunks)?,
            chunk_sums: opt.chunk_sums.clone(),
            group,
            plan,
            groups_buf,
            norms_buf,
        })
    }

    /// The group table: one [`GroupRow`] per group (its range and rho).
    pub fn table(&self) -> &wgpu::Buffer {
        &self.groups_buf
    }

    /// Checks a saved group table against these groups: as many, over the same ranges.
    pub fn check_table(&self, data: &[u8]) -> std::result::Result<(), String> {
        let rows: Vec<GroupRow> = data
            .chunks_exact(std::mem::size_of::<GroupRow>())
            .map(bytemuck::pod_read_unaligned)
            .collect();
        let saved: Vec<(u32, u32)> = rows.iter().map(|r| (r.start, r.end)).collect();
        if saved != self.plan.ranges {
            return Err(format!(
                "its NaP groups cover other parts of the arena ({saved:?}) than this run's ({:?}): other groups or tensors",
                self.plan.ranges
            ));
        }
        Ok(())
    }

    /// Records the passes that follow a step: norms (two passes), group norms, projection.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        self.norms.record(pass);
        self.chunk_sums.record(pass);
        self.group.record(pass);
        self.project.record(pass);
    }

    /// Per group: rho, the current norms, the effective learning rate under step size `gamma`.
    pub async fn report(&self, gpu: &Gpu, spec: &KindSpec, step_scalars: &wgpu::Buffer) -> Result<Vec<GroupReport>> {
        let n = self.plan.groups.len();
        let mut packed = PackedReadback::default();
        let pending = gpu.submit(|enc| {
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                self.norms.record(&mut pass);
                self.chunk_sums.record(&mut pass);
                self.group.record(&mut pass);
            }
            let norms = packed.add_values::<[f32; 2]>(&self.norms_buf, 0, n);
            let rows = packed.add_values::<GroupRow>(&self.groups_buf, 0, n);
            let gamma = packed.add_values::<f32>(step_scalars, 0, 1);
            (packed.record(gpu, enc), norms, rows, gamma)
        });
        let (pending, norms, rows, gamma) = pending;
        let data = pending.read(gpu).await?;
        let norms: Vec<[f32; 2]> = data.values(norms);
        let rows: Vec<GroupRow> = data.values(rows);
        let gamma = data.values::<f32>(gamma)[0] as f64;
        Ok(self
            .plan
            .groups
            .iter()
            .zip(&rows)
            .zip(&norms)
            .map(|((tensors, row), n)| GroupReport {
                tensors: tensors.clone(),
                rho: row.rho as f64,
                norm_z: n[0] as f64,
                norm_x: n[1] as f64,
                effective_lr: spec.effective_lr(gamma, row.rho as f64),
            })
            .collect())
    }
}
