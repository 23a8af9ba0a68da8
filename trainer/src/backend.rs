//! The compute backend, chosen at build time.

/// Inference backend.
#[cfg(not(feature = "cuda"))]
pub type Backend = burn::backend::Flex;
/// Inference backend.
#[cfg(feature = "cuda")]
pub type Backend = burn::backend::Cuda;

/// Training backend (the inference backend with automatic differentiation).
pub type TrainBackend = burn::backend::Autodiff<Backend>;

/// Name of the backend, as recorded in `runs.backend`.
#[cfg(not(feature = "cuda"))]
pub const BACKEND_NAME: &str = "flex";
/// Name of the backend, as recorded in `runs.backend`.
#[cfg(feature = "cuda")]
pub const BACKEND_NAME: &str = "cuda";

/// The device work runs on (the first GPU with `cuda`).
pub fn default_device() -> <Backend as burn::tensor::backend::BackendTypes>::Device {
    Default::default()
}

/// Seeds the backend's random generator and runs `init` (a model's initialisation) while
/// holding a process-wide lock. The generator is one per process (burn-flex), so two models
/// initialised at once on two threads (the demo trains two arms at a time) would otherwise
/// interleave their draws and neither would be its seed's model.
pub fn seeded_init<B: burn::tensor::backend::Backend, T>(
    device: &B::Device,
    seed: u64,
    init: impl FnOnce() -> T,
) -> T {
    static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _held = INIT.lock().unwrap_or_else(|e| e.into_inner());
    B::seed(device, seed);
    init()
}

/// `t` as a `U` when `T` and `U` are the same type, else `t` back: the stable stand-in for
/// specialisation that lets backend-generic model code take a CPU fast path
/// ([`crate::resize`], [`crate::conv`]) when it runs on burn-flex.
#[cfg(not(feature = "cuda"))]
pub(crate) fn same<T: 'static, U: 'static>(t: T) -> Result<U, T> {
    use std::any::{Any, TypeId};
    if TypeId::of::<T>() != TypeId::of::<U>() {
        return Err(t);
    }
    let boxed: Box<dyn Any> = Box::new(t);
    Ok(*boxed.downcast::<U>().expect("the type ids are equal"))
}

/// The dimensions of a 4-D burn-flex primitive.
#[cfg(not(feature = "cuda"))]
pub(crate) fn dims4(x: &burn_flex::FlexTensor) -> [usize; 4] {
    let s = x.layout().shape();
    [s[0], s[1], s[2], s[3]]
}

/// Serialises tests that seed or draw from the backend's random generator: it is global to
/// the process (burn-flex), so concurrent tests would otherwise interleave their draws.
#[cfg(test)]
pub(crate) static RNG_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds [`RNG_LOCK`] for the rest of a test (a panicked holder does not poison it).
#[cfg(test)]
pub(crate) fn rng_guard() -> std::sync::MutexGuard<'static, ()> {
    RNG_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A small model of the tiny preset for tests: 16x16 images, 2 heads, the given widths.
#[cfg(test)]
pub(crate) fn test_model_config(width: usize, head_width: usize) -> crate::model::SpatialSvConfig {
    crate::model::SpatialSvConfig::tiny()
        .with_image_height(16)
        .with_image_width(16)
        .with_width(width)
        .with_head_width(head_width)
        .with_heads(2)
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Tensor, TensorData};

    use super::*;

    #[test]
    fn backend_computes_and_differentiates() {
        let _rng = crate::backend::rng_guard();
        let device = default_device();
        let a = Tensor::<TrainBackend, 2>::from_data(
            TensorData::from([[1.0f32, 2.0], [3.0, 4.0]]),
            &device,
        )
        .require_grad();
        let b = Tensor::<TrainBackend, 2>::from_data(TensorData::from([[5.0f32], [6.0]]), &device);
        let y = a.clone().matmul(b);
        assert_eq!(y.to_data().to_vec::<f32>().unwrap(), vec![17.0, 39.0]);
        // d(sum(a @ b)) / da = b^T repeated per row.
        let grads = y.sum().backward();
        let ga = a.grad(&grads).unwrap();
        assert_eq!(
            ga.to_data().to_vec::<f32>().unwrap(),
            vec![5.0, 6.0, 5.0, 6.0]
        );
    }
}
