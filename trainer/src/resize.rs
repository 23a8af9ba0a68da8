//! Bilinear resizing of `[n, c, h, w]` feature maps (half-pixel centres, `align_corners =
//! false`), the DPT heads' most frequent operation.
//!
//! Three implementations of the same interpolation:
//!
//! - [`resize_by_interpolate`]: burn's `interpolate`, the reference;
//! - [`resize_by_matmul`]: two matrix products with fixed weights, which every backend
//!   differentiates (burn-cubecl 0.21 has no backward pass for `interpolate`, so cuda builds
//!   use this one);
//! - on the CPU backend (`flex`, plain and under `Autodiff`), a table-driven kernel with its
//!   own backward pass ([`cpu`]). It computes exactly what burn-flex's `interpolate` and its
//!   backward compute, bit for bit (same f64 coordinates, same f32 expressions, the same
//!   accumulation order within each channel; tested), but looks the coordinates up in
//!   per-row and per-column tables instead of recomputing them per output element, runs the
//!   backward pass over channels in parallel (burn-flex 0.21's is one serial loop), and keeps
//!   only the input's shape for the backward pass, not the input.
//!
//! [`resize`] picks the one for the backend the model runs on.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

/// Bilinear resize of `[n, c, h, w]` maps to `size` (half-pixel centres). A no-op when the
/// size is already `size`.
pub fn resize<B: Backend>(x: Tensor<B, 4>, size: [usize; 2]) -> Tensor<B, 4> {
    let [_, _, h, w] = x.dims();
    if [h, w] == size {
        return x;
    }
    #[cfg(feature = "cuda")]
    {
        resize_by_matmul(x, size)
    }
    #[cfg(not(feature = "cuda"))]
    {
        cpu::resize(x, size)
    }
}

/// [`resize`] through burn's `interpolate` (bilinear, `align_corners = false`).
pub fn resize_by_interpolate<B: Backend>(x: Tensor<B, 4>, size: [usize; 2]) -> Tensor<B, 4> {
    burn::tensor::module::interpolate(
        x,
        size,
        burn::tensor::ops::InterpolateOptions::new(burn::tensor::ops::InterpolateMode::Bilinear)
            .with_align_corners(false),
    )
}

/// [`resize`] as two matrix products with fixed bilinear weights.
pub fn resize_by_matmul<B: Backend>(x: Tensor<B, 4>, size: [usize; 2]) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let [oh, ow] = size;
    let device = x.device();
    // [n*c*h, w] x [w, ow] -> [n*c, h, ow]
    let x = x
        .reshape([n * c * h, w])
        .matmul(bilinear_weights::<B>(w, ow, &device).transpose())
        .reshape([n * c, h, ow]);
    // [n*c*ow, h] x [h, oh] -> [n, c, oh, ow]
    x.swap_dims(1, 2)
        .reshape([n * c * ow, h])
        .matmul(bilinear_weights::<B>(h, oh, &device).transpose())
        .reshape([n * c, ow, oh])
        .swap_dims(1, 2)
        .reshape([n, c, oh, ow])
}

/// `[out, inp]` weights of 1-D linear interpolation with half-pixel centres: output sample
/// `d` reads source position `(d + 0.5) * inp / out - 0.5`, clamped to the first and last
/// samples (PyTorch's and burn's `align_corners = false`).
fn bilinear_weights<B: Backend>(inp: usize, out: usize, device: &B::Device) -> Tensor<B, 2> {
    let mut m = vec![0.0f32; out * inp];
    for (d, tap) in taps(inp, out).into_iter().enumerate() {
        m[d * inp + tap.low] += tap.keep;
        m[d * inp + tap.high] += tap.weight;
    }
    Tensor::from_data(TensorData::new(m, [out, inp]), device)
}

/// Where one output sample of a 1-D bilinear resize reads: `keep * x[low] + weight * x[high]`.
#[derive(Debug, Clone, Copy)]
struct Tap {
    low: usize,
    high: usize,
    /// The weight of `high`, as burn-flex computes it (f64 coordinates rounded to f32).
    weight: f32,
    /// `1 - weight`, computed in f32 as burn-flex does.
    keep: f32,
}

/// The taps of every output sample along one axis, computed as burn-flex's bilinear
/// `interpolate` computes them per element (`align_corners = false`).
fn taps(inp: usize, out: usize) -> Vec<Tap> {
    let ratio = inp as f64 / out as f64;
    (0..out)
        .map(|d| {
            let src = (d as f64 + 0.5) * ratio - 0.5;
            let low = src.floor().max(0.0) as usize;
            let high = (low + 1).min(inp - 1);
            let weight = (src - low as f64).max(0.0) as f32;
            Tap {
                low,
                high,
                weight,
                keep: 1.0 - weight,
            }
        })
        .collect()
}

/// Bilinear resize of contiguous `[planes, h, w]` f32 data to `[planes, oh, ow]`, each plane in
/// parallel; the arithmetic of burn-flex's `interpolate_bilinear` per output element.
fn forward_planes(input: &[f32], [h, w]: [usize; 2], [oh, ow]: [usize; 2]) -> Vec<f32> {
    use rayon::prelude::*;
    let (ys, xs) = (taps(h, oh), taps(w, ow));
    let mut out = vec![0.0f32; input.len() / (h * w) * oh * ow];
    out.par_chunks_mut(oh * ow)
        .zip(input.par_chunks(h * w))
        .for_each(|(out, plane)| {
            for (row, y) in out.chunks_exact_mut(ow).zip(&ys) {
                let low = &plane[y.low * w..(y.low + 1) * w];
                let high = &plane[y.high * w..(y.high + 1) * w];
                for (o, x) in row.iter_mut().zip(&xs) {
                    *o = low[x.low] * x.keep * y.keep
                        + low[x.high] * x.weight * y.keep
                        + high[x.low] * x.keep * y.weight
                        + high[x.high] * x.weight * y.weight;
                }
            }
        });
    out
}

/// The gradient of [`forward_planes`] with respect to its input, from the output's gradient
/// `[planes, oh, ow]`: each output element's gradient spread over its four sources, in
/// burn-flex's order (output elements row by row; sources low-low, low-high, high-low,
/// high-high), each plane in parallel.
fn backward_planes(grad: &[f32], [h, w]: [usize; 2], [oh, ow]: [usize; 2]) -> Vec<f32> {
    use rayon::prelude::*;
    let (ys, xs) = (taps(h, oh), taps(w, ow));
    let mut input = vec![0.0f32; grad.len() / (oh * ow) * h * w];
    input
        .par_chunks_mut(h * w)
        .zip(grad.par_chunks(oh * ow))
        .for_each(|(plane, grad)| {
            for (row, y) in grad.chunks_exact(ow).zip(&ys) {
                for (&g, x) in row.iter().zip(&xs) {
                    let (lo, hi) = (y.low * w, y.high * w);
                    plane[lo + x.low] += g * x.keep * y.keep;
                    plane[lo + x.high] += g * x.weight * y.keep;
                    plane[hi + x.low] += g * x.keep * y.weight;
                    plane[hi + x.high] += g * x.weight * y.weight;
                }
            }
        });
    input
}

/// The CPU kernels behind [`resize`], for burn-flex and burn-flex under `Autodiff`.
///
/// The model is generic over its backend; [`cpu::resize`] recognises the two CPU backends
/// by type ([`crate::backend::same`]) and falls back to [`resize_by_interpolate`] for any
/// other.
#[cfg(not(feature = "cuda"))]
pub(crate) mod cpu {
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::backend::Backend;
    use burn::tensor::{DType, Tensor, TensorData, TensorPrimitive};
    use burn_flex::FlexTensor;

    use super::{backward_planes, forward_planes, resize_by_interpolate};
    use crate::backend::{dims4, same};

    /// [`super::resize`] on the CPU: the table-driven kernels for burn-flex (f32), burn's
    /// `interpolate` otherwise.
    pub(crate) fn resize<B: Backend>(x: Tensor<B, 4>, size: [usize; 2]) -> Tensor<B, 4> {
        if x.dtype() != DType::F32 || x.shape().num_elements() == 0 || size[0] * size[1] == 0 {
            return resize_by_interpolate(x, size);
        }
        let x = match same::<_, Tensor<Autodiff<Flex>, 4>>(x) {
            Ok(x) => return same(resize_autodiff(x, size)).expect("the same type"),
            Err(x) => x,
        };
        match same::<_, Tensor<Flex, 4>>(x) {
            Ok(x) => {
                let out = forward(x.into_primitive().tensor(), size);
                let out = Tensor::<Flex, 4>::from_primitive(TensorPrimitive::Float(out));
                same(out).expect("the same type")
            }
            // Other CPU backends (burn-ndarray, burn-candle: the `backends` bench) through the
            // two matrix products, which every backend differentiates: candle has no bilinear
            // interpolation and ndarray none backward.
            Err(x) => super::resize_by_matmul(x, size),
        }
    }

    /// The forward kernel on a burn-flex f32 primitive `[n, c, h, w]`.
    pub(crate) fn forward(x: FlexTensor, [oh, ow]: [usize; 2]) -> FlexTensor {
        let [n, c, h, w] = dims4(&x);
        let x = x.to_contiguous();
        let out = forward_planes(x.storage::<f32>(), [h, w], [oh, ow]);
        FlexTensor::from_data(TensorData::new(out, [n, c, oh, ow]))
    }

    /// The backward kernel: the gradient `[n, c, h, w]` of the input from the output's.
    pub(crate) fn backward(grad: FlexTensor, [n, c, h, w]: [usize; 4]) -> FlexTensor {
        let [_, _, oh, ow] = dims4(&grad);
        let grad = grad.to_contiguous();
        let input = backward_planes(grad.storage::<f32>(), [h, w], [oh, ow]);
        FlexTensor::from_data(TensorData::new(input, [n, c, h, w]))
    }

    /// The autodiff node of the resize: its state is the input's shape (the backward pass
    /// needs no input values).
    #[derive(Debug)]
    struct ResizeBackward;

    impl Backward<Flex, 1> for ResizeBackward {
        type State = [usize; 4];

        fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
            let [parent] = ops.parents;
            let grad = grads.consume::<Flex>(&ops.node);
            if let Some(parent) = parent {
                grads.register::<Flex>(parent.id, backward(grad, ops.state));
            }
        }
    }

    fn resize_autodiff(
        x: Tensor<Autodiff<Flex>, 4>,
        size: [usize; 2],
    ) -> Tensor<Autodiff<Flex>, 4> {
        let x = x.into_primitive().tensor();
        let out = match ResizeBackward
            .prepare::<NoCheckpointing>([x.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let dims = dims4(&x.primitive);
                prep.finish(dims, forward(x.primitive, size))
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(x.primitive, size)),
        };
        Tensor::from_primitive(TensorPrimitive::Float(out))
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;

    use super::*;
    use crate::backend::{TrainBackend, default_device};

    /// Sizes up, down, by non-integer factors and the DPT heads' own.
    fn cases() -> Vec<([usize; 4], [usize; 2])> {
        vec![
            ([2, 3, 5, 7], [10, 14]),
            ([2, 3, 5, 7], [20, 28]),
            ([2, 3, 5, 7], [5, 3]),
            ([2, 3, 5, 7], [3, 4]),
            ([2, 3, 5, 7], [9, 11]),
            ([2, 3, 5, 7], [15, 7]),
            ([2, 3, 8, 10], [4, 5]),
            ([2, 3, 8, 10], [32, 40]),
            ([2, 3, 8, 10], [16, 20]),
            ([2, 3, 8, 10], [4, 20]),
            ([1, 4, 1, 1], [3, 2]),
            ([3, 2, 32, 40], [64, 80]),
        ]
    }

    fn random<B: Backend>(dims: [usize; 4]) -> Tensor<B, 4> {
        Tensor::random(dims, Distribution::Normal(0.0, 1.0), &B::Device::default())
    }

    /// The matrix-product resize (what cuda builds use) equals burn's bilinear interpolation
    /// (half-pixel centres) up, down and by non-integer factors, and so does its gradient (the
    /// cuda backend lacked `interpolate`'s).
    #[test]
    fn matmul_resize_is_bilinear_interpolation_and_differentiable() {
        let _rng = crate::backend::rng_guard();
        for (dims, size) in cases() {
            let x = random::<crate::Backend>(dims);
            let want = resize_by_interpolate(x.clone(), size);
            let got = resize_by_matmul(x.clone(), size);
            assert_eq!(got.dims(), [dims[0], dims[1], size[0], size[1]]);
            let diff: f32 = (got - want).abs().max().into_scalar();
            assert!(diff < 1e-5, "{size:?}: max difference {diff}");
        }
        let x = Tensor::<TrainBackend, 4>::from_data(
            TensorData::new(vec![1.0f32; 2 * 2], [1, 1, 2, 2]),
            &default_device(),
        )
        .require_grad();
        let grads = resize_by_matmul(x.clone(), [4, 4]).sum().backward();
        let g: Vec<f32> = x.grad(&grads).unwrap().into_data().to_vec().unwrap();
        // Every output pixel's weights sum to 1: the 16 outputs spread over the 4 inputs.
        assert!((g.iter().sum::<f32>() - 16.0).abs() < 1e-4, "{g:?}");
        let probe = random::<TrainBackend>([1, 2, 4, 5]);
        let weights = random::<TrainBackend>([1, 2, 16, 20]);
        let grad_of = |f: fn(Tensor<TrainBackend, 4>, [usize; 2]) -> Tensor<TrainBackend, 4>| {
            let p = probe.clone().require_grad();
            let grads = (f(p.clone(), [16, 20]) * weights.clone()).sum().backward();
            p.grad(&grads).unwrap()
        };
        let want = grad_of(resize_by_interpolate);
        let diff: f32 = (grad_of(resize_by_matmul) - want).abs().max().into_scalar();
        assert!(diff < 1e-4, "gradient differs by {diff}");
    }

    /// The CPU kernels give burn-flex's `interpolate` and its gradient bit for bit, on the
    /// plain backend and under `Autodiff`, so the CPU's training results do not move.
    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cpu_resize_is_burns_interpolate_bit_for_bit_with_its_gradient() {
        let _rng = crate::backend::rng_guard();
        let bits = |t: TensorData| -> Vec<u32> {
            let v: Vec<f32> = t.to_vec().unwrap();
            v.into_iter().map(f32::to_bits).collect()
        };
        for (dims, size) in cases() {
            let x = random::<crate::Backend>(dims);
            let want: Vec<f32> = resize_by_interpolate(x.clone(), size)
                .into_data()
                .to_vec()
                .unwrap();
            let got: Vec<f32> = resize(x, size).into_data().to_vec().unwrap();
            let same = want
                .iter()
                .zip(&got)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(
                same && want.len() == got.len(),
                "{dims:?} -> {size:?}: forward differs"
            );

            let p = random::<TrainBackend>(dims);
            let weights = random::<TrainBackend>([dims[0], dims[1], size[0], size[1]]);
            let run = |f: fn(Tensor<TrainBackend, 4>, [usize; 2]) -> Tensor<TrainBackend, 4>| {
                let p = p.clone().require_grad();
                let y = f(p.clone(), size);
                let grads = (y.clone() * weights.clone()).sum().backward();
                (
                    bits(y.into_data()),
                    bits(p.grad(&grads).unwrap().into_data()),
                )
            };
            let (want_y, want_g) = run(resize_by_interpolate);
            let (got_y, got_g) = run(resize);
            assert_eq!(
                got_y, want_y,
                "{dims:?} -> {size:?}: autodiff forward differs"
            );
            assert_eq!(got_g, want_g, "{dims:?} -> {size:?}: gradient differs");
        }
    }

    /// Without a gradient requirement the autodiff path still resizes (the untracked branch).
    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cpu_resize_without_gradients_resizes() {
        let _rng = crate::backend::rng_guard();
        let x = random::<TrainBackend>([1, 2, 4, 5]);
        let want = resize_by_interpolate(x.clone(), [8, 10]);
        let diff: f32 = (resize(x, [8, 10]) - want).abs().max().into_scalar();
        assert_eq!(diff, 0.0);
    }
}
