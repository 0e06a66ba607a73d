//! The one way work is recorded: a [`Dispatch`] is a compute pipeline with one or
//! more (bind group, workgroup grid) calls, built once and recorded into any
//! compute pass as often as needed.

use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// A binding number of group 0 and the resource bound there.
pub type Resource<'a> = (u32, wgpu::BindingResource<'a>);

/// One pipeline and its calls, each a bind group and a workgroup grid.
#[derive(Debug, Clone)]
pub struct Dispatch {
    label: String,
    pipeline: wgpu::ComputePipeline,
    calls: Vec<(wgpu::BindGroup, [u32; 3])>,
}

/// Where a graph's dispatches go: a compute pass records them in order; a
/// `Vec<Dispatch>` collects them (as the training step's profile does, to time
/// each in a pass of its own).
pub trait Recorder {
    /// Takes the next dispatch.
    fn dispatch(&mut self, dispatch: &Dispatch);
}

impl Recorder for wgpu::ComputePass<'_> {
    fn dispatch(&mut self, dispatch: &Dispatch) {
        dispatch.record(self);
    }
}

impl Recorder for Vec<Dispatch> {
    fn dispatch(&mut self, dispatch: &Dispatch) {
        self.push(dispatch.clone());
    }
}

impl Dispatch {
    /// What it runs, `file.entry` (a layer's dispatches: `layer file.entry`).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The same dispatch under another label.
    pub fn labelled(mut self, label: String) -> Dispatch {
        self.label = label;
        self
    }

    /// Workgroups in all, over its calls.
    pub fn workgroups(&self) -> u64 {
        self.calls.iter().map(|(_, [x, y, z])| (*x * *y * *z) as u64).sum()
    }

    /// Records every call into `pass` (calls with an empty grid are skipped).
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipeline);
        for (bind_group, [x, y, z]) in &self.calls {
            if x * y * z > 0 {
                pass.set_bind_group(0, bind_group, &[]);
                pass.dispatch_workgroups(*x, *y, *z);
            }
        }
    }
}

impl Gpu {
    /// A bind group for entry `entry` of kernel file `file`, taking from
    /// `resources` the bindings the entry uses (others are ignored; a missing one
    /// is an error naming it).
    pub fn bind_group(&self, file: &str, entry: &str, resources: &[Resource<'_>]) -> Result<wgpu::BindGroup> {
        let layout = self.pipeline(file, entry)?.get_bind_group_layout(0);
        let used = self.kernel_bindings(file, entry)?;
        self.bind(&layout, &used, (file, entry), resources)
    }

    /// A bind group of `layout` from those of `resources` that `used` lists.
    fn bind(
        &self,
        layout: &wgpu::BindGroupLayout,
        used: &[u32],
        (file, entry): (&str, &str),
        resources: &[Resource<'_>],
    ) -> Result<wgpu::BindGroup> {
        if let Some(missing) = used.iter().find(|b| !resources.iter().any(|(r, _)| r == *b)) {
            return Err(Error::invalid(
                format!("kernels.{file}.{entry}"),
                format!("binding {missing} was not given (it uses {used:?})"),
            ));
        }
        let entries: Vec<_> = resources
            .iter()
            .filter(|(b, _)| used.contains(b))
            .map(|(binding, resource)| wgpu::BindGroupEntry {
                binding: *binding,
                resource: resource.clone(),
            })
            .collect();
        Ok(self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(entry),
            layout,
            entries: &entries,
        }))
    }

    /// One call of entry `entry` of kernel file `file` over `grid` workgroups.
    pub fn dispatch(&self, file: &str, entry: &str, resources: &[Resource<'_>], grid: [u32; 3]) -> Result<Dispatch> {
        self.dispatch_each(file, entry, [(resources.to_vec(), grid)])
    }

    /// One pipeline, several calls: each with its own resources and grid (e.g.
    /// one per arena segment).
    pub fn dispatch_each<'a>(
        &self,
        file: &str,
        entry: &str,
        calls: impl IntoIterator<Item = (Vec<Resource<'a>>, [u32; 3])>,
    ) -> Result<Dispatch> {
        let pipeline = self.pipeline(file, entry)?;
        let layout = pipeline.get_bind_group_layout(0);
        let used = self.kernel_bindings(file, entry)?;
        let calls = calls
            .into_iter()
            .map(|(resources, grid)| Ok((self.bind(&layout, &used, (file, entry), &resources)?, grid)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Dispatch {
            label: format!("{file}.{entry}"),
            pipeline,
            calls,
        })
    }

    /// Creates a command encoder, lets `record` fill it, and submits it.
    pub fn submit<R>(&self, record: impl FnOnce(&mut wgpu::CommandEncoder) -> R) -> R {
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("sfnap") });
        let out = record(&mut enc);
        self.queue.submit([enc.finish()]);
        out
    }

    /// Records `dispatches` in order into one compute pass and submits it.
    pub fn run(&self, dispatches: &[&Dispatch]) {
        self.submit(|enc| {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for d in dispatches {
                d.record(&mut pass);
            }
        });
    }
}
