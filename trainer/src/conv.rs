//! The model's 2-D convolutions, with a faster backward pass on the CPU.
//!
//! [`forward`] is `Conv2d::forward`. On burn-flex under `Autodiff` (the CPU's training
//! backend) it records its own autodiff node ([`cpu`]) whose backward pass computes what
//! burn's generic one computes, with the same burn-flex kernels on the same values, bit for bit
//! (tested), but without its slow layout changes: burn's weight and bias gradients convolve
//! and sum views with the batch and channel axes swapped, which burn-flex 0.21 first copies
//! into contiguous memory element by element through its generic strided iterator (the
//! largest single cost of a CPU training step's backward pass, docs/performance.md); here
//! the swap is one block copy per (batch, channel) plane, made once for both gradients.

use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// `conv.forward(x)`, through the CPU training backend's own backward pass where it applies.
pub fn forward<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    #[cfg(not(feature = "cuda"))]
    {
        cpu::forward(conv, x)
    }
    #[cfg(feature = "cuda")]
    {
        conv.forward(x)
    }
}

/// The autodiff node of a convolution on burn-flex, with its backward pass.
#[cfg(not(feature = "cuda"))]
pub(crate) mod cpu {
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::{Autodiff, Flex};
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2d;
    use burn::tensor::backend::Backend;
    use burn::tensor::ops::conv::calculate_padding_out;
    use burn::tensor::ops::{ConvOptions, ConvTransposeOptions, FloatTensorOps, ModuleOps};
    use burn::tensor::{DType, Shape, Tensor, TensorData, TensorPrimitive};
    use burn_flex::FlexTensor;

    use crate::backend::{dims4, same};

    type Ad = Autodiff<Flex>;

    /// [`super::forward`] on the CPU: the own node for burn-flex f32 under `Autodiff` with a
    /// bias, one group and symmetric padding (every convolution of the model), burn's
    /// `Conv2d::forward` otherwise.
    pub(crate) fn forward<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let Some(bias) = &conv.bias else {
            return conv.forward(x);
        };
        if conv.groups != 1 || x.dtype() != DType::F32 {
            return conv.forward(x);
        }
        // The padding burn's `Conv2d` applies, where it is symmetric: none, or "same" at
        // stride 1 with odd kernels ((k - 1) / 2 on each side).
        let [kh, kw] = conv.kernel_size;
        let padding = match conv.padding {
            PaddingConfig2d::Valid => [0, 0],
            PaddingConfig2d::Same if conv.stride == [1, 1] && kh % 2 == 1 && kw % 2 == 1 => {
                [(kh - 1) / 2, (kw - 1) / 2]
            }
            _ => return conv.forward(x),
        };
        let x = match same::<_, Tensor<Ad, 4>>(x) {
            Ok(x) => x,
            Err(x) => return conv.forward(x),
        };
        let (Ok(weight), Ok(bias)) = (
            same::<_, Tensor<Ad, 4>>(conv.weight.val()),
            same::<_, Tensor<Ad, 1>>(bias.val()),
        ) else {
            unreachable!("a module's parameters live on its input's backend")
        };
        let options = ConvOptions::new(conv.stride, padding, conv.dilation, 1);
        same(conv2d(x, weight, bias, options)).expect("the same type")
    }

    /// What the backward pass keeps: the input, the weight and the options.
    type State = (FlexTensor, FlexTensor, ConvOptions<2>);

    #[derive(Debug)]
    struct Conv2dBackward;

    impl Backward<Flex, 3> for Conv2dBackward {
        type State = State;

        fn backward(self, ops: Ops<State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
            let [node_x, node_weight, node_bias] = ops.parents;
            let grad = grads.consume::<Flex>(&ops.node);
            let (x, weight, options) = ops.state;
            if let Some(node) = node_x {
                grads.register::<Flex>(node.id, x_grad(&x, &weight, grad.clone(), &options));
            }
            if node_weight.is_none() && node_bias.is_none() {
                return;
            }
            // Both gradients read the output gradient with its batch and channel axes swapped.
            let grad_swapped = swap_batch_and_channels(&grad);
            if let Some(node) = node_weight {
                let g = weight_grad(&x, &weight, grad_swapped.clone(), &options);
                grads.register::<Flex>(node.id, g);
            }
            if let Some(node) = node_bias {
                grads.register::<Flex>(node.id, bias_grad(grad_swapped));
            }
        }
    }

    fn conv2d(
        x: Tensor<Ad, 4>,
        weight: Tensor<Ad, 4>,
        bias: Tensor<Ad, 1>,
        options: ConvOptions<2>,
    ) -> Tensor<Ad, 4> {
        let (x, weight, bias) = (
            x.into_primitive().tensor(),
            weight.into_primitive().tensor(),
            bias.into_primitive().tensor(),
        );
        let out = match Conv2dBackward
            .prepare::<NoCheckpointing>([x.node.clone(), weight.node.clone(), bias.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let out = Flex::conv2d(
                    x.primitive.clone(),
                    weight.primitive.clone(),
                    Some(bias.primitive),
                    options.clone(),
                );
                prep.finish((x.primitive, weight.primitive, options), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::conv2d(
                x.primitive,
                weight.primitive,
                Some(bias.primitive),
                options,
            )),
        };
        Tensor::from_primitive(TensorPrimitive::Float(out))
    }

    /// `[a, b, h, w]` -> `[b, a, h, w]`, contiguous: one copy of each `h * w` plane.
    fn swap_batch_and_channels(x: &FlexTensor) -> FlexTensor {
        use rayon::prelude::*;
        let [a, b, h, w] = dims4(x);
        let x = x.to_contiguous();
        let src = x.storage::<f32>();
        let plane = h * w;
        let mut out = vec![0.0f32; src.len()];
        if plane > 0 {
            out.par_chunks_mut(a * plane)
                .enumerate()
                .for_each(|(j, dst)| {
                    for (i, dst) in dst.chunks_exact_mut(plane).enumerate() {
                        let from = (i * b + j) * plane;
                        dst.copy_from_slice(&src[from..from + plane]);
                    }
                });
        }
        FlexTensor::from_data(TensorData::new(out, [b, a, h, w]))
    }

    /// The input's gradient: burn's `conv2d_x_backward` (a transposed convolution), one
    /// batch item per task. burn-flex's transposed convolution runs its batch items one after
    /// the other and scatters each item's columns on one thread; each item's result depends
    /// on that item alone, so computing them apart and in parallel gives the same values.
    fn x_grad(
        x: &FlexTensor,
        weight: &FlexTensor,
        grad: FlexTensor,
        options: &ConvOptions<2>,
    ) -> FlexTensor {
        use rayon::prelude::*;
        let [n, c_in, h_in, w_in] = dims4(x);
        let [_, c_out, h_out, w_out] = dims4(&grad);
        let [_, _, kh, kw] = dims4(weight);
        let padding_out = [
            calculate_padding_out(
                kh,
                options.stride[0],
                options.padding[0],
                options.dilation[0],
                h_in,
                h_out,
            ),
            calculate_padding_out(
                kw,
                options.stride[1],
                options.padding[1],
                options.dilation[1],
                w_in,
                w_out,
            ),
        ];
        let transposed = ConvTransposeOptions::new(
            options.stride,
            options.padding,
            padding_out,
            options.dilation,
            options.groups,
        );
        let grad = grad.to_contiguous();
        let item = c_out * h_out * w_out;
        let parts: Vec<FlexTensor> = grad
            .storage::<f32>()
            .par_chunks(item.max(1))
            .take(n)
            .map(|g| {
                let g =
                    FlexTensor::from_data(TensorData::new(g.to_vec(), [1, c_out, h_out, w_out]));
                Flex::conv_transpose2d(g, weight.clone(), None, transposed.clone())
            })
            .collect();
        let mut out = Vec::with_capacity(n * c_in * h_in * w_in);
        for p in &parts {
            out.extend_from_slice(p.to_contiguous().storage::<f32>());
        }
        FlexTensor::from_data(TensorData::new(out, [n, c_in, h_in, w_in]))
    }

    /// The weight's gradient as burn's `conv2d_weight_backward` computes it (one group): the
    /// input with batch and channels swapped, convolved with the swapped output gradient.
    fn weight_grad(
        x: &FlexTensor,
        weight: &FlexTensor,
        grad_swapped: FlexTensor,
        options: &ConvOptions<2>,
    ) -> FlexTensor {
        let x_swapped = swap_batch_and_channels(x);
        let g = Flex::conv2d(
            x_swapped,
            grad_swapped,
            None,
            ConvOptions::new(options.dilation, options.padding, options.stride, 1),
        );
        let g = Flex::float_swap_dims(g, 0, 1);
        let shape = weight.layout().shape().clone();
        if g.layout().shape() == &shape {
            g
        } else {
            let slices: Vec<burn::tensor::Slice> = shape
                .iter()
                .map(|&d| burn::tensor::Slice::from(0..d))
                .collect();
            Flex::float_slice(g, &slices)
        }
    }

    /// The bias's gradient as burn's `conv2d_bias_backward` computes it: the swapped output
    /// gradient `[c_out, n, h, w]` summed over everything but the channel.
    fn bias_grad(grad_swapped: FlexTensor) -> FlexTensor {
        let [c, n, h, w] = dims4(&grad_swapped);
        let g = Flex::float_reshape(grad_swapped, Shape::new([c, n * h * w]));
        let g = Flex::float_sum_dim(g, 1);
        Flex::float_reshape(g, Shape::new([c]))
    }
}

#[cfg(test)]
#[cfg(not(feature = "cuda"))]
mod tests {
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::{Conv2d, Conv2dConfig};
    use burn::tensor::{Distribution, Tensor, TensorData};

    use super::*;
    use crate::backend::{TrainBackend as B, default_device};

    fn bits(t: TensorData) -> Vec<u32> {
        let v: Vec<f32> = t.to_vec().unwrap();
        v.into_iter().map(f32::to_bits).collect()
    }

    /// Output and gradients (input, weight, bias) of `f` on a random input and output weights.
    fn run(
        conv: &Conv2d<B>,
        x: &Tensor<B, 4>,
        weights: &Tensor<B, 4>,
        f: fn(&Conv2d<B>, Tensor<B, 4>) -> Tensor<B, 4>,
    ) -> [Vec<u32>; 4] {
        let x = x.clone().require_grad();
        let y = f(conv, x.clone());
        let grads = (y.clone() * weights.clone()).sum().backward();
        let bias = conv.bias.as_ref().unwrap().val();
        [
            bits(y.into_data()),
            bits(x.grad(&grads).unwrap().into_data()),
            bits(conv.weight.val().grad(&grads).unwrap().into_data()),
            bits(bias.grad(&grads).unwrap().into_data()),
        ]
    }

    /// The CPU node's output and all three gradients are burn's, bit for bit, for the model's
    /// kinds of convolution (3x3 and 1x1 "same", the strided patch embedding).
    #[test]
    fn cpu_convolution_gradients_are_burns_bit_for_bit() {
        let _rng = crate::backend::rng_guard();
        let device = default_device();
        for (cin, cout, k, stride, hw) in [
            (8, 8, 3, 1, [12, 10]),
            (8, 4, 3, 1, [7, 9]),
            (6, 5, 1, 1, [5, 8]),
            (3, 16, 4, 4, [16, 12]),
        ] {
            let padding = if stride == 1 {
                PaddingConfig2d::Same
            } else {
                PaddingConfig2d::Valid
            };
            let conv: Conv2d<B> = Conv2dConfig::new([cin, cout], [k, k])
                .with_stride([stride, stride])
                .with_padding(padding)
                .init(&device);
            let x = Tensor::<B, 4>::random(
                [3, cin, hw[0], hw[1]],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            let out = conv.forward(x.clone()).dims();
            let weights = Tensor::<B, 4>::random(out, Distribution::Normal(0.0, 1.0), &device);
            let want = run(&conv, &x, &weights, |c, x| c.forward(x));
            let got = run(&conv, &x, &weights, forward);
            for (part, (g, w)) in [
                "output",
                "input gradient",
                "weight gradient",
                "bias gradient",
            ]
            .iter()
            .zip(got.iter().zip(&want))
            {
                assert!(g == w, "{cin}->{cout} k{k} s{stride}: {part} differs");
            }
        }
    }
}
