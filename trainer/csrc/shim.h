// What both C++ shims (fused_ops.cpp, dist.cpp) share: reading tch's tensor handles
// and turning C++ exceptions into malloc'ed error messages for Rust
// (trainer/src/fused.rs, `checked`), so that no exception crosses into Rust.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cstdlib>
#include <cstring>
#include <exception>

namespace crossover {

// The i-th of an array of tch tensor handles (each a heap `at::Tensor*`).
inline at::Tensor& handle(void* const* tensors, size_t i) {
  return *static_cast<at::Tensor*>(tensors[i]);
}

inline char* error_text(const char* what) {
  return strdup(what == nullptr ? "unknown LibTorch error" : what);
}

// Run `body`; nullptr on success, else the error's message (freed by
// crossover_free_error).
template <typename F>
char* guarded(F&& body) {
  try {
    body();
    return nullptr;
  } catch (const c10::Error& error) {
    // The message without the C++ stack trace c10 appends.
    return error_text(error.what_without_backtrace());
  } catch (const std::exception& error) {
    return error_text(error.what());
  } catch (...) {
    return error_text(nullptr);
  }
}

}  // namespace crossover
