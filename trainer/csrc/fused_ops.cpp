// Multi-tensor optimizer operations that LibTorch has but tch 0.24 does not expose:
// torch.optim.AdamW(fused=True)'s kernel, the foreach gradient norm of
// clip_grad_norm_, and zero_grad(set_to_none=True). Called from trainer/src/fused.rs.
//
// Every function takes arrays of tch tensor handles (each a heap `at::Tensor*`, as
// tch's C wrapper allocates them), returns nullptr on success or a malloc'ed error
// message (freed by crossover_free_error), and never lets a C++ exception cross
// into Rust.

#include <ATen/core/Tensor.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/_foreach_add.h>
#include <ATen/ops/_foreach_norm.h>
#include <ATen/ops/_fused_adamw.h>
#include <ATen/ops/linalg_vector_norm.h>
#include <ATen/ops/stack.h>
#include <ATen/ops/zeros.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <vector>

#include <ATen/Context.h>
#include <ATen/core/Generator.h>
#include <c10/core/CachingDeviceAllocator.h>
#include <torch/csrc/autograd/autograd.h>

#include <mutex>
#include <c10/core/impl/DeviceGuardImplInterface.h>

#include "shim.h"

using crossover::guarded;
using crossover::handle;

extern "C" {

void crossover_free_error(char* error) { free(error); }

// TF32 for fp32 matmuls on CUDA, or strict IEEE fp32 (torch.backends.cuda.matmul.
// fp32_precision = "tf32" / "ieee"): the CUDA backend only, so CPU kernels are
// untouched. Writes the setting read back (1 = TF32).
char* crossover_set_cuda_tf32(int on, int* now) {
  return guarded([&] {
    auto& context = at::globalContext();
    context.setFloat32Precision(at::Float32Backend::CUDA, at::Float32Op::MATMUL,
                                on != 0 ? at::Float32Precision::TF32 : at::Float32Precision::IEEE);
    *now = context.float32Precision(at::Float32Backend::CUDA, at::Float32Op::MATMUL) ==
                   at::Float32Precision::TF32
               ? 1
               : 0;
  });
}

// Deterministic kernels (torch.use_deterministic_algorithms) and attention through the
// math kernel only (flash, memory-efficient and cuDNN attention off), or LibTorch's
// defaults. Writes whether deterministic algorithms are now on.
char* crossover_set_deterministic(int on, int* now) {
  return guarded([&] {
    auto& context = at::globalContext();
    const bool deterministic = on != 0;
    context.setDeterministicAlgorithms(deterministic, /*warn_only=*/false);
    context.setBenchmarkCuDNN(false);
    context.setSDPUseFlash(!deterministic);
    context.setSDPUseMemEfficient(!deterministic);
    context.setSDPUseCuDNN(!deterministic);
    context.setSDPUseMath(true);
    *now = context.deterministicAlgorithms() ? 1 : 0;
  });
}

// Forget every parameter's gradient, so the next backward writes a fresh one instead
// of adding to zeros.
char* crossover_clear_grads(void* const* params, size_t count) {
  return guarded([&] {
    for (size_t i = 0; i < count; ++i) {
      handle(params, i).mutable_grad().reset();
    }
  });
}

// Global L2 norm of the parameters' gradients (parameters without one are skipped),
// as a new scalar tensor on their device: the norm of the per-tensor norms.
char* crossover_grad_norm(void* const* params, size_t count, void** out) {
  return guarded([&] {
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> grads;
    grads.reserve(count);
    for (size_t i = 0; i < count; ++i) {
      const at::Tensor& grad = handle(params, i).grad();
      if (grad.defined()) {
        grads.push_back(grad);
      }
    }
    at::Tensor norm = grads.empty()
                          ? at::zeros({}, at::kFloat)
                          : at::linalg_vector_norm(at::stack(at::_foreach_norm(grads, 2)), 2);
    *out = new at::Tensor(std::move(norm));
  });
}

// Make cuda:`index` this thread's current device (torch.cuda.set_device), through the
// device-guard registry that libtorch_cuda.so fills when it is loaded, so this file
// needs no CUDA headers or link. Without CUDA loaded: "not linked with support".
char* crossover_set_cuda_device(int index) {
  return guarded([&] {
    c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)
        ->setDevice(c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(index)));
  });
}

// The caching allocator's peak bytes on cuda:`index` since the last reset
// (torch.cuda.max_memory_reserved and max_memory_allocated), through the device-
// allocator registry libtorch_cuda.so fills; then reset the peaks if `reset`.
char* crossover_cuda_peak_memory(int index, int reset, int64_t* reserved, int64_t* allocated) {
  return guarded([&] {
    auto* allocator = c10::getDeviceAllocator(c10::DeviceType::CUDA);
    const auto device = static_cast<c10::DeviceIndex>(index);
    const auto stats = allocator->getDeviceStats(device);
    const auto all = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
    *reserved = stats.reserved_bytes[all].peak;
    *allocated = stats.allocated_bytes[all].peak;
    if (reset != 0) {
      allocator->resetPeakStats(device);
    }
  });
}

// A copy of a host tensor in page-locked memory (Tensor.pin_memory() without the
// deprecated device argument tch passes, which warns at every call), as a new tensor.
char* crossover_pin_memory(void* const* tensors, void** out) {
  return guarded([&] { *out = new at::Tensor(handle(tensors, 0).pin_memory()); });
}

// Backpropagate from several outputs at once, each with the gradient it receives
// (torch.autograd.backward(outputs, grads)): what a checkpointed block's walk back
// needs, its output's upstream gradient and its auxiliary losses' weights in one
// pass. Gradients accumulate into the leaves' .grad as a loss' backward does.
char* crossover_backward_from(void* const* outputs, void* const* grads, size_t count) {
  return guarded([&] {
    std::vector<at::Tensor> roots, seeds;
    for (size_t i = 0; i < count; ++i) {
      roots.push_back(handle(outputs, i));
      seeds.push_back(handle(grads, i));
    }
    torch::autograd::backward(roots, seeds);
  });
}

// The state of the default generator of `like`'s device (torch.get_rng_state, or
// torch.cuda.get_rng_state for a CUDA tensor), as a new tensor.
char* crossover_rng_state(void* const* like, void** out) {
  return guarded([&] {
    auto generator = at::globalContext().defaultGenerator(handle(like, 0).device());
    std::lock_guard<std::mutex> lock(generator.mutex());
    *out = new at::Tensor(generator.get_state());
  });
}

// Put the default generator of `like`'s device back into `state` (from
// crossover_rng_state): the draws that follow repeat those made after it was read.
char* crossover_set_rng_state(void* const* like_and_state) {
  return guarded([&] {
    auto generator =
        at::globalContext().defaultGenerator(handle(like_and_state, 0).device());
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(handle(like_and_state, 1));
  });
}

// One AdamW step over parameters with their moments and float32 step counters
// (torch.optim.AdamW(fused=True)): the counters are advanced first, gradients are
// divided by `grad_scale` when given (gradient clipping), parameters without a
// gradient are left alone.
char* crossover_fused_adamw(void* const* params, void* const* exp_avgs, void* const* exp_avg_sqs,
                            void* const* steps, size_t count, double lr, double beta1,
                            double beta2, double weight_decay, double eps, void* grad_scale) {
  return guarded([&] {
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> p, g, m, v, t;
    for (size_t i = 0; i < count; ++i) {
      const at::Tensor& grad = handle(params, i).grad();
      if (!grad.defined()) {
        continue;
      }
      p.push_back(handle(params, i));
      g.push_back(grad);
      m.push_back(handle(exp_avgs, i));
      v.push_back(handle(exp_avg_sqs, i));
      t.push_back(handle(steps, i));
    }
    if (p.empty()) {
      return;
    }
    std::optional<at::Tensor> scale;
    if (grad_scale != nullptr) {
      scale = *static_cast<at::Tensor*>(grad_scale);
    }
    at::_foreach_add_(t, 1);
    at::_fused_adamw_(p, g, m, v, {}, t, lr, beta1, beta2, weight_decay, eps,
                      /*amsgrad=*/false, /*maximize=*/false, scale, std::nullopt);
  });
}

}  // extern "C"
