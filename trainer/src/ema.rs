//! An exponential moving average of a model's weights (Mean Teacher, Noisy Student, Depth
//! Anything): after every optimiser step `ema = decay * ema + (1 - decay) * weights`. Runs
//! with `ema_decay > 0` save it beside the weights (`ema.mpk`) and evaluation, labelling,
//! export and `init_from` use it.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// Collects every float parameter, flattened, in the module's visiting order.
struct Collect<B: Backend> {
    out: Vec<Tensor<B, 1>>,
}

impl<B: Backend> ModuleVisitor<B> for Collect<B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let t = param.val().detach();
        let n = t.shape().num_elements();
        self.out.push(t.reshape([n]));
    }
}

/// Blends each float parameter with the collected one at the same position.
struct Blend<B: Backend> {
    current: Vec<Tensor<B, 1>>,
    at: usize,
    decay: f64,
}

impl<B: Backend> ModuleMapper<B> for Blend<B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, t, mapper) = param.consume();
        let blended = match self.current.get(self.at) {
            Some(c) => {
                let c = c.clone().reshape(t.shape());
                t.detach()
                    .mul_scalar(self.decay)
                    .add(c.mul_scalar(1.0 - self.decay))
            }
            None => t,
        };
        self.at += 1;
        Param::from_mapped_value(id, blended, mapper)
    }
}

/// One EMA step: `ema` moved `1 - decay` of the way towards `model` (same structure).
pub fn ema_update<B: Backend, M: Module<B>>(ema: M, model: &M, decay: f64) -> M {
    let mut c = Collect { out: Vec::new() };
    model.visit(&mut c);
    ema.map(&mut Blend {
        current: c.out,
        at: 0,
        decay,
    })
}

#[cfg(test)]
mod tests {
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::TensorData;

    use super::*;
    use crate::backend::{Backend as B, default_device};

    #[test]
    fn the_average_moves_towards_the_weights_by_one_minus_decay() {
        let device = default_device();
        let a: Linear<B> = LinearConfig::new(2, 2).init(&device);
        let mut b = a.clone();
        b.weight = Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![1.0f32, 1.0, 1.0, 1.0], [2, 2]),
            &device,
        ));
        let before: Vec<f32> = a.weight.val().into_data().to_vec().unwrap();
        let ema = ema_update(a, &b, 0.9);
        let after: Vec<f32> = ema.weight.val().into_data().to_vec().unwrap();
        for (x, y) in before.iter().zip(&after) {
            assert!((y - (0.9 * x + 0.1)).abs() < 1e-6, "{x} -> {y}");
        }
    }
}
