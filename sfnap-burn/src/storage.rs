//! Where a Burn tensor's values sit: its wgpu buffer range, and the flush that
//! puts Burn's recorded work on the queue before sfnap's.

use burn::backend::wgpu::{CubeTensor, Wgpu};
use burn::tensor::Tensor;
use cubecl_runtime::storage::ManagedResource;
use cubecl_wgpu::{AutoCompiler, WgpuResource, WgpuServer};
use sfnap::error::{Error, Result};
use sfnap::foreign::BufferRange;

/// A tensor's values as one contiguous f32 range of a wgpu buffer, held in
/// place (Burn neither frees nor moves the allocation while this lives).
pub(crate) struct Storage {
    /// The buffer range; holding it keeps the allocation in place.
    managed: ManagedResource<WgpuResource>,
    len: usize,
    /// The tensor, flattened (which also keeps it alive).
    flat: Tensor<1>,
    /// Burn's primitive of it, for the client.
    cube: CubeTensor,
}

impl Storage {
    /// The storage of `tensor` (a float tensor on a [`crate::SharedDevice`]),
    /// flattened first: a tensor whose layout is not plain row-major (a
    /// transposed view, a pitched allocation) is copied to one that is, by Burn.
    /// `what` names the tensor in errors.
    pub(crate) fn of<const D: usize>(tensor: Tensor<D>, what: &str) -> Result<Storage> {
        let len = tensor.shape().num_elements();
        let flat: Tensor<1> = tensor.inner().reshape([len]);
        let cube: CubeTensor = flat
            .clone()
            .try_into_primitive::<Wgpu>()
            .map_err(|e| Error::invalid(what, format!("is not a tensor of Burn's wgpu backend ({e:?})")))?;
        if !(cube.is_contiguous() && cube.is_contiguous_buffer()) {
            return Err(Error::Gpu(format!(
                "{what}: Burn's flattened tensor is not one contiguous range"
            )));
        }
        if cube.dtype != burn::tensor::DType::F32 {
            return Err(Error::invalid(
                what,
                format!("is {:?}; sfnap steps f32 tensors", cube.dtype),
            ));
        }
        let managed = cube
            .client
            .get_resource::<WgpuServer<AutoCompiler>>(cube.handle.clone())
            .map_err(|e| Error::Gpu(format!("{what}: Burn could not hand out its buffer: {e:?}")))?;
        let need = len as u64 * 4;
        if managed.resource().size < need {
            return Err(Error::Gpu(format!(
                "{what}: Burn's buffer range holds {} bytes, the tensor needs {need}",
                managed.resource().size
            )));
        }
        Ok(Storage {
            managed,
            len,
            flat,
            cube,
        })
    }

    /// Its f32 range, for sfnap.
    pub(crate) fn range(&self) -> BufferRange<'_> {
        let r = self.managed.resource();
        BufferRange::new(&r.buffer, r.offset, self.len)
    }

    /// The tensor, flattened (without autodiff).
    pub(crate) fn tensor(&self) -> Tensor<1> {
        self.flat.clone()
    }

    /// Puts every command Burn recorded on this thread's stream on the queue,
    /// so that sfnap's commands, submitted next, run after them.
    pub(crate) fn flush(&self) -> Result<()> {
        self.cube
            .client
            .flush()
            .map_err(|e| Error::Gpu(format!("Burn could not flush its commands: {e:?}")))
    }
}

/// An uninitialised f32 tensor of `len` elements on `device` (without autodiff),
/// for sfnap to write into.
pub(crate) fn empty(len: usize, device: &burn::tensor::Device) -> Tensor<1> {
    Tensor::<1>::empty([len], &device.clone().without_autodiff())
}
