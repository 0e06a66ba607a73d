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
    pipeline: wgpu::ComputePipeline,
    calls: Vec<(wgpu::BindGroup, [u32; 3])>,
}

impl Dispatch {
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
        Ok(Dispatch { pipeline, calls })
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
