//! AdamW (Loshchilov & Hutter 2019) with decoupled weight decay, over plain tensors so
//! its state (moments and step count) can be checkpointed and restored exactly.
//! Update, per parameter with gradient g:
//!   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//!   p = p (1 - lr wd) - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
//! which is torch.optim.AdamW's (non-amsgrad). The step runs LibTorch's fused kernel
//! (`torch.optim.AdamW(fused=True)`, see `fused.rs`): one pass over each parameter,
//! its gradient and moments, on CPU and CUDA, with gradient clipping folded in.
//!
//! Sharded (ZeRO stage 1, Rajbhandari et al. 2020; `train.shard_optimizer`): in a
//! data-parallel job every rank holds the averaged gradients of every parameter, but
//! only the owner of a parameter (see [`partition`]) keeps its moments and updates it;
//! the owners then broadcast what they updated. The update of a parameter is the same
//! kernel on the same numbers wherever it runs, so the weights are bit-identical to an
//! unsharded run's. Checkpoints hold the whole state, gathered from the owners.

use crate::fused::{self, AdamWStep};
use std::path::Path;
use tch::nn::VarStore;
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
    /// The rank that keeps this parameter's moments and updates it (0 unsharded).
    owner: usize,
}

/// Sharding of the optimizer state over a data-parallel job's ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sharding {
    rank: usize,
    world: usize,
}

/// Which rank owns each parameter in a sharded optimizer: parameters from the largest
/// to the smallest (equal sizes in their given order), each to the rank holding the
/// fewest elements so far (ties to the lowest rank). The same on every rank, since it
/// depends only on the sizes and the world size.
pub fn partition(sizes: &[i64], world: usize) -> Vec<usize> {
    let world = world.max(1);
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&index| std::cmp::Reverse(sizes[index]));
    let mut load = vec![0i64; world];
    let mut owners = vec![0; sizes.len()];
    for index in order {
        let rank = (0..world)
            .min_by_key(|&rank| (load[rank], rank))
            .unwrap_or(0);
        load[rank] += sizes[index];
        owners[index] = rank;
    }
    owners
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
    sharding: Option<Sharding>,
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
                owner: 0,
            })
            .collect();
        Self {
            slots,
            config,
            sharding: None,
            steps_taken: 0,
            pending_scale: None,
        }
    }

    /// Shard the state over `world` ranks as rank `rank` (before loading a
    /// checkpoint): the moments of parameters other ranks own are freed, and `step`
    /// updates this rank's parameters only (see [`AdamW::share_updates`]). A world of
    /// one leaves the optimizer whole.
    pub fn shard(&mut self, rank: usize, world: usize) {
        if world <= 1 {
            return;
        }
        let sizes: Vec<i64> = self
            .slots
            .iter()
            .map(|slot| slot.variable.numel() as i64)
            .collect();
        for (slot, owner) in self.slots.iter_mut().zip(partition(&sizes, world)) {
            slot.owner = owner;
            if owner != rank {
                let empty = Tensor::empty([0], (Kind::Float, slot.variable.device()));
                slot.first_moment = empty.shallow_clone();
                slot.second_moment = empty;
            }
        }
        self.sharding = Some(Sharding { rank, world });
    }

    fn owns(&self, slot: &Slot) -> bool {
        self.sharding
            .is_none_or(|sharding| slot.owner == sharding.rank)
    }

    /// Bytes of optimizer state (the two moments): (kept by this rank, the whole).
    pub fn state_bytes(&self) -> (u64, u64) {
        let bytes = |tensor: &Tensor| (tensor.numel() * tensor.kind().elt_size_in_bytes()) as u64;
        self.slots.iter().fold((0, 0), |(kept, whole), slot| {
            (
                kept + bytes(&slot.first_moment) + bytes(&slot.second_moment),
                whole + 2 * bytes(&slot.variable),
            )
        })
    }

    /// After a sharded `step`: every owner sends the parameters it updated to the
    /// other ranks (one broadcast per rank), so all replicas hold the same weights.
    /// `broadcast(root, tensors)` is the job's collective. Unsharded, nothing happens.
    pub fn share_updates(
        &self,
        mut broadcast: impl FnMut(usize, &[Tensor]) -> Result<(), String>,
    ) -> Result<(), String> {
        let Some(sharding) = self.sharding else {
            return Ok(());
        };
        for root in 0..sharding.world {
            let owned: Vec<Tensor> = self
                .slots
                .iter()
                .filter(|slot| slot.owner == root)
                .map(|slot| slot.variable.shallow_clone())
                .collect();
            broadcast(root, &owned)?;
        }
        Ok(())
    }

    /// The whole state by name (`m.<parameter>`, `v.<parameter>`), as a checkpoint
    /// holds it. Sharded, it is gathered from the owners one parameter at a time
    /// (every rank must call this at the same point); the result is complete on rank 0
    /// only, on the CPU there, and empty elsewhere.
    pub fn gathered_state(
        &self,
        mut broadcast: impl FnMut(usize, &[Tensor]) -> Result<(), String>,
    ) -> Result<Vec<(String, Tensor)>, String> {
        let mut named = Vec::with_capacity(self.slots.len() * 2);
        let Some(sharding) = self.sharding else {
            for slot in &self.slots {
                named.push((
                    format!("m.{}", slot.name),
                    slot.first_moment.shallow_clone(),
                ));
                named.push((
                    format!("v.{}", slot.name),
                    slot.second_moment.shallow_clone(),
                ));
            }
            return Ok(named);
        };
        for slot in &self.slots {
            let moments = if slot.owner == sharding.rank {
                [
                    slot.first_moment.shallow_clone(),
                    slot.second_moment.shallow_clone(),
                ]
            } else {
                [slot.variable.zeros_like(), slot.variable.zeros_like()]
            };
            broadcast(slot.owner, &moments)?;
            if sharding.rank == 0 {
                let [first, second] = moments;
                named.push((
                    format!("m.{}", slot.name),
                    first.to_device(tch::Device::Cpu),
                ));
                named.push((
                    format!("v.{}", slot.name),
                    second.to_device(tch::Device::Cpu),
                ));
            }
        }
        Ok(named)
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
                .filter(|slot| slot.decay == decay && self.owns(slot))
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

    pub fn load(&mut self, path: &Path, steps_taken: i64) -> Result<(), String> {
        let tensors = Tensor::read_safetensors(path).map_err(|error| error.to_string())?;
        let lookup: std::collections::HashMap<String, Tensor> = tensors.into_iter().collect();
        let _guard = tch::no_grad_guard();
        let sharding = self.sharding;
        for slot in &mut self.slots {
            let _ = slot.step.fill_(steps_taken as f64);
            if sharding.is_some_and(|sharding| slot.owner != sharding.rank) {
                continue;
            }
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

/// Write optimizer state (from [`AdamW::gathered_state`]) as safetensors.
pub fn write_state(named: &[(String, Tensor)], path: &Path) -> Result<(), String> {
    Tensor::write_safetensors(named, path).map_err(|error| error.to_string())
}

/// Parameters by name (sorted, so the optimizer's order is stable) with their
/// weight-decay flag.
pub(crate) fn named_parameters(
    variables: &VarStore,
    decay: jobspec::DecayScope,
) -> Vec<(String, Tensor, bool)> {
    let mut named: Vec<(String, Tensor)> = variables.variables().into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
        .into_iter()
        .map(|(name, tensor)| {
            let decays = decay.decays(&name);
            (name, tensor, decays)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::partition;

    #[test]
    fn partition_balances_elements_largest_first() {
        // (sizes, world, owners)
        let cases: &[(&[i64], usize, &[usize])] = &[
            (&[10, 10, 10, 10], 2, &[0, 1, 0, 1]),
            (&[100, 1, 1, 1], 2, &[0, 1, 1, 1]),
            (&[1, 2, 3, 4], 2, &[0, 1, 1, 0]),
            (&[5, 5, 5], 4, &[0, 1, 2]),
            (&[7, 3], 1, &[0, 0]),
            (&[], 3, &[]),
            (&[4, 4], 0, &[0, 0]),
        ];
        for (sizes, world, owners) in cases {
            assert_eq!(partition(sizes, *world), *owners, "{sizes:?} over {world}");
        }
    }
}
