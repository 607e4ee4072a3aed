//! Batches of token ids on the training device.

use tch::{Device, Tensor};

/// A (rows, cols) int64 batch of token ids on `device`: staged in pinned host memory
/// and copied without blocking when the device is a GPU.
pub fn to_device(ids: &[u32], shape: [i64; 2], device: Device) -> Tensor {
    let ids: Vec<i64> = ids.iter().map(|&id| i64::from(id)).collect();
    let host = Tensor::from_slice(&ids).view(shape);
    if device.is_cuda() {
        // Pinned through the shim: tch's pin_memory(device) warns at every step. A
        // failure to pin only costs the overlap: copy from pageable memory.
        crate::fused::pin_memory(&host).unwrap_or(host).to_device_(
            device,
            tch::Kind::Int64,
            true,
            false,
        )
    } else {
        host
    }
}
