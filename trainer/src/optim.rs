//! AdamW (Loshchilov & Hutter 2019) with decoupled weight decay, written over plain
//! tensors so its state (moments and step count) can be checkpointed and restored
//! exactly. Update, per parameter with gradient g:
//!   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//!   p = p (1 - lr wd) - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
//! which is torch.optim.AdamW's default (non-amsgrad) path.

use std::path::Path;
use tch::{Kind, Tensor};

#[derive(Debug)]
struct Slot {
    name: String,
    variable: Tensor,
    first_moment: Tensor,
    second_moment: Tensor,
    decay: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

#[derive(Debug)]
pub struct AdamW {
    slots: Vec<Slot>,
    config: AdamWConfig,
    pub steps_taken: i64,
}

impl AdamW {
    /// `parameters`: (name, variable, takes weight decay), in a fixed order.
    pub fn new(parameters: Vec<(String, Tensor, bool)>, config: AdamWConfig) -> Self {
        let slots = parameters
            .into_iter()
            .map(|(name, variable, decay)| Slot {
                first_moment: variable.zeros_like(),
                second_moment: variable.zeros_like(),
                name,
                variable,
                decay,
            })
            .collect();
        Self {
            slots,
            config,
            steps_taken: 0,
        }
    }

    /// Global L2 norm of all gradients, as a scalar tensor (no host sync).
    pub fn gradient_norm(&self) -> Tensor {
        let norms: Vec<Tensor> = self
            .slots
            .iter()
            .map(|slot| slot.variable.grad())
            .filter(Tensor::defined)
            .map(|gradient| gradient.to_kind(Kind::Float).square().sum(Kind::Float))
            .collect();
        if norms.is_empty() {
            return Tensor::from(0.0f32);
        }
        Tensor::stack(&norms, 0).sum(Kind::Float).sqrt()
    }

    /// Scale gradients so their global norm is at most `max_norm` (0 disables) and
    /// return the norm before clipping, as torch.nn.utils.clip_grad_norm_ does: the
    /// factor min(1, max_norm / (norm + 1e-6)) stays on the device, so nothing waits
    /// for it.
    pub fn clip_gradients(&mut self, max_norm: f64) -> Tensor {
        let norm = self.gradient_norm();
        if max_norm > 0.0 {
            let _guard = tch::no_grad_guard();
            let scale = ((&norm + 1e-6).reciprocal() * max_norm).clamp_max(1.0);
            for slot in &self.slots {
                let mut gradient = slot.variable.grad();
                if gradient.defined() {
                    let _ = gradient.g_mul_(&scale.to_kind(gradient.kind()));
                }
            }
        }
        norm
    }

    pub fn step(&mut self, lr: f64) {
        let _guard = tch::no_grad_guard();
        self.steps_taken += 1;
        let AdamWConfig {
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.config;
        let bias1 = 1.0 - beta1.powi(self.steps_taken as i32);
        let bias2 = 1.0 - beta2.powi(self.steps_taken as i32);
        for slot in &mut self.slots {
            let gradient = slot.variable.grad();
            if !gradient.defined() {
                continue;
            }
            if slot.decay && weight_decay > 0.0 {
                let _ = slot.variable.g_mul_scalar_(1.0 - lr * weight_decay);
            }
            let _ = slot.first_moment.lerp_(&gradient, 1.0 - beta1);
            // v = b2 v + (1 - b2) g^2, as one multiply and one addcmul.
            let _ = slot.second_moment.g_mul_scalar_(beta2);
            let _ = slot
                .second_moment
                .addcmul_(&(&gradient * (1.0 - beta2)), &gradient);
            // p += m / d with d = -(sqrt(v) / sqrt(bias2) + eps) * bias1 / lr: the step
            // size folded into the denominator so the update is one addcdiv.
            // (A zero learning rate leaves the weights alone.)
            if lr != 0.0 {
                let mut denominator = slot.second_moment.sqrt();
                let _ = denominator.g_mul_scalar_(-bias1 / (lr * bias2.sqrt()));
                let _ = denominator.g_add_scalar_(-eps * bias1 / lr);
                let _ = slot.variable.addcdiv_(&slot.first_moment, &denominator);
            }
        }
    }

    pub fn zero_grad(&mut self) {
        for slot in &mut self.slots {
            slot.variable.zero_grad();
        }
    }

    pub fn save(&self, path: &Path) -> Result<(), tch::TchError> {
        let mut named: Vec<(String, &Tensor)> = Vec::with_capacity(self.slots.len() * 2);
        for slot in &self.slots {
            named.push((format!("m.{}", slot.name), &slot.first_moment));
            named.push((format!("v.{}", slot.name), &slot.second_moment));
        }
        Tensor::write_safetensors(&named, path)
    }

    pub fn load(&mut self, path: &Path, steps_taken: i64) -> Result<(), String> {
        let tensors = Tensor::read_safetensors(path).map_err(|error| error.to_string())?;
        let lookup: std::collections::HashMap<String, Tensor> = tensors.into_iter().collect();
        let _guard = tch::no_grad_guard();
        for slot in &mut self.slots {
            for (prefix, target) in [
                ("m", &mut slot.first_moment),
                ("v", &mut slot.second_moment),
            ] {
                let key = format!("{prefix}.{}", slot.name);
                let source = lookup
                    .get(&key)
                    .ok_or_else(|| format!("optimizer state lacks `{key}`"))?;
                if source.size() != target.size() {
                    return Err(format!(
                        "optimizer state `{key}` has shape {:?}, model needs {:?}",
                        source.size(),
                        target.size()
                    ));
                }
                target.copy_(source);
            }
        }
        self.steps_taken = steps_taken;
        Ok(())
    }
}
