//! AdamW (Loshchilov & Hutter 2019) with decoupled weight decay, over plain tensors so
//! its state (moments and step count) can be checkpointed and restored exactly.
//! Update, per parameter with gradient g:
//!   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//!   p = p (1 - lr wd) - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
//! which is torch.optim.AdamW's (non-amsgrad). The step runs LibTorch's fused kernel
//! (`torch.optim.AdamW(fused=True)`, see `fused.rs`): one pass over each parameter,
//! its gradient and moments, on CPU and CUDA, with gradient clipping folded in.

use crate::fused::{self, AdamWStep};
use std::path::Path;
use tch::{Kind, TchError, Tensor};

#[derive(Debug)]
struct Slot {
    name: String,
    variable: Tensor,
    first_moment: Tensor,
    second_moment: Tensor,
    /// float32 step counter on the variable's device (the fused kernel reads it).
    step: Tensor,
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
    /// Set by `clip_gradients`: the next step divides the gradients by it.
    pending_scale: Option<Tensor>,
}

impl AdamW {
    /// `parameters`: (name, variable, takes weight decay), in a fixed order.
    pub fn new(parameters: Vec<(String, Tensor, bool)>, config: AdamWConfig) -> Self {
        let slots = parameters
            .into_iter()
            .map(|(name, variable, decay)| Slot {
                first_moment: variable.zeros_like(),
                second_moment: variable.zeros_like(),
                step: Tensor::zeros([], (Kind::Float, variable.device())),
                name,
                variable,
                decay,
            })
            .collect();
        Self {
            slots,
            config,
            steps_taken: 0,
            pending_scale: None,
        }
    }

    fn variables(&self) -> Vec<&Tensor> {
        self.slots.iter().map(|slot| &slot.variable).collect()
    }

    /// The parameters' gradients that exist (sharing storage with them, so an
    /// in-place all-reduce of these averages the gradients the next step uses).
    pub fn gradients(&self) -> Vec<Tensor> {
        self.slots
            .iter()
            .map(|slot| slot.variable.grad())
            .filter(Tensor::defined)
            .collect()
    }

    /// Global L2 norm of all gradients, as a scalar tensor (no host sync).
    pub fn gradient_norm(&self) -> Result<Tensor, TchError> {
        fused::gradient_norm(&self.variables())
    }

    /// Clip gradients to a global norm of at most `max_norm` (0 disables) and return the
    /// norm before clipping, as torch.nn.utils.clip_grad_norm_ does. The factor
    /// min(1, max_norm / (norm + 1e-6)) stays on the device and is applied by the next
    /// `step` (its fused kernel divides the gradients by 1 / factor), so nothing waits
    /// for it and the gradients are not read an extra time.
    pub fn clip_gradients(&mut self, max_norm: f64) -> Result<Tensor, TchError> {
        let norm = self.gradient_norm()?;
        self.pending_scale = (max_norm > 0.0).then(|| {
            let _guard = tch::no_grad_guard();
            ((&norm + 1e-6) / max_norm).clamp_min(1.0)
        });
        Ok(norm)
    }

    /// One update with learning rate `lr` (parameters without a gradient are left as
    /// they are). Weight decay applies to the slots created with `decay`.
    pub fn step(&mut self, lr: f64) -> Result<(), TchError> {
        self.steps_taken += 1;
        let AdamWConfig {
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.config;
        let scale = self.pending_scale.take();
        for decay in [true, false] {
            let group: Vec<&Slot> = self
                .slots
                .iter()
                .filter(|slot| slot.decay == decay)
                .collect();
            if group.is_empty() {
                continue;
            }
            let pick = |field: fn(&Slot) -> &Tensor| {
                group.iter().map(|slot| field(slot)).collect::<Vec<_>>()
            };
            fused::fused_adamw(
                &pick(|slot| &slot.variable),
                &pick(|slot| &slot.first_moment),
                &pick(|slot| &slot.second_moment),
                &pick(|slot| &slot.step),
                AdamWStep {
                    lr,
                    beta1,
                    beta2,
                    weight_decay: if decay { weight_decay } else { 0.0 },
                    eps,
                },
                scale.as_ref(),
            )?;
        }
        Ok(())
    }

    /// Forget the gradients (torch's zero_grad(set_to_none=True)): the next backward
    /// writes them afresh instead of adding to zeros.
    pub fn zero_grad(&mut self) -> Result<(), TchError> {
        self.pending_scale = None;
        fused::clear_gradients(&self.variables())
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
            let _ = slot.step.fill_(steps_taken as f64);
        }
        self.steps_taken = steps_taken;
        Ok(())
    }
}
