// Collective communication for data-parallel training: LibTorch's own c10d
// (TCPStore rendezvous, ProcessGroupGloo; ProcessGroupNCCL where built for it),
// called from trainer/src/parallel/process_group.rs.
//
// Like fused_ops.cpp, every function takes tch tensor handles (heap `at::Tensor*`),
// returns nullptr on success or a malloc'ed error message (freed by
// crossover_free_error, defined there), and never lets a C++ exception cross into
// Rust.
//
// ## How ProcessGroupGloo is reached without Gloo's headers
//
// The torch 2.11 wheel ships c10d's headers and libtorch_cpu.so exports
// ProcessGroupGloo, but ProcessGroupGloo.hpp includes <gloo/...> headers that the
// wheel does not ship, and headers from another Gloo snapshot could silently
// disagree with the Gloo compiled into libtorch_cpu. libtorch_cpu exports no factory
// that returns a ready ProcessGroupGloo (no createProcessGroupGloo, no backend
// registry by name: Python's torch.distributed builds it in libtorch_python). So this
// file never includes ProcessGroupGloo.hpp and touches no Gloo type. It uses three
// things, all declared through c10d's own complete types:
//
// 1. `ProcessGroupGloo::Options::create_default(std::chrono::milliseconds)`, an
//    exported static function: it sets the timeout, two worker threads per device
//    and the network device (the interfaces in GLOO_SOCKET_IFNAME if set, else the
//    address this machine's hostname resolves to, else loopback). Declared below as
//    returning `c10::intrusive_ptr<c10d::Backend::Options>` instead of
//    `intrusive_ptr<ProcessGroupGloo::Options>`.
// 2. The exported constructor `ProcessGroupGloo::ProcessGroupGloo(const
//    intrusive_ptr<Store>&, int rank, int size, intrusive_ptr<Options>)` (the
//    complete-object constructor, "C1"; it connects the ranks through the store),
//    declared as a free function whose first parameter is `this`.
// 3. Everything afterwards goes through the virtual interface of `c10d::Backend`
//    (allreduce, broadcast, barrier, setTimeout, getBackendName, the virtual
//    destructor) and `c10d::Work::wait`, from Backend.hpp/Work.hpp: the very headers
//    libtorch_cpu was compiled with, so the vtable slots agree.
//
// Why the ABI is sound (Itanium C++ ABI, x86-64 and AArch64; outside ISO C++, which
// does not let a program redeclare a function with other types, but fixed by the
// platform ABI that both sides of a shared-library call already rely on):
// - The two declarations carry asm labels set to the exported mangled names (as
//   `nm -D libtorch_cpu.so` lists them; compiling the real signatures against
//   stand-in classes reproduces them). A mangled name encodes the parameter types,
//   so these are exactly the real functions, and a LibTorch without them fails to
//   link rather than misbehaving.
// - `c10::intrusive_ptr<T>` is one `T*` whatever T is, and is not trivially copyable,
//   so it is returned through a hidden result pointer and passed by invisible
//   reference (caller-owned temporary, destroyed by the caller) for every T. Only
//   the pointee's static type differs between our declaration and the definition.
// - `ProcessGroupGloo::Options` derives from `Backend::Options` alone, and
//   `ProcessGroupGloo` from `Backend` alone, non-virtually; a single non-virtual
//   polymorphic base is the primary base at offset 0, so the derived pointer and the
//   base pointer are the same address and no adjustment is lost. The objects really
//   are of the derived types (the library built them), so the library's own
//   dynamic_casts and virtual calls see what they expect.
// - A constructor is an ordinary function taking `this` first, returning void on
//   x86-64 and AArch64 Linux (the #error below keeps other targets out until checked).
// - The object needs storage of exactly sizeof(ProcessGroupGloo) from
//   `::operator new`, because it is later freed by its own deleting destructor
//   (`operator delete(p, 0x1e8)`) when the last intrusive_ptr goes. Its data members
//   (ProcessGroupGloo.hpp, "protected:") are std and c10 types whose layout does not
//   depend on Gloo: shared_ptr and vector<shared_ptr> of Gloo types are pointers
//   whatever the pointee. `GlooLayout` repeats them with Gloo types replaced by
//   layout-identical stand-ins; it is used only for sizeof. Cross-check: the
//   library's own `make_intrusive<ProcessGroupGloo>` in ProcessGroupGloo::split and
//   ::merge allocates `operator new(0x1e8)` (objdump -d of libtorch_cpu.so 2.11.0),
//   and the static_asserts pin both numbers and the LibTorch version, so a LibTorch
//   upgrade stops the build until the layout is re-checked.
// - The new object starts with a zero reference count, as after `new`;
//   `intrusive_ptr::unsafe_steal_from_new` is c10's own way to adopt it, the same
//   thing make_intrusive does.
// After construction, `getBackendName() == "gloo"` is checked through the vtable.
//
// ## ProcessGroupNCCL
//
// The same trick does not work without headers: its Options embed `ncclConfig_t`
// (layout from nccl.h) and are only made by an inline `Options::create`, and the
// group's size depends on CUDA and NCCL types. And the trainer never links
// libtorch_cuda.so: it is dlopen'ed with RTLD_GLOBAL when CUDA is asked for
// (trainer/src/device.rs), so a direct call would not even link. So the NCCL part,
// compiled only when build.rs finds nccl.h and the CUDA headers (CROSSOVER_WITH_NCCL),
// takes sizes and layouts from the real ProcessGroupNCCL.hpp and reaches the two
// non-inline functions it needs (Options' and the group's complete-object
// constructors, both exported) with dlsym in the loaded libtorch_cuda.so: one binary
// for CPU and GPU machines, which fails with an error, not a loader crash, where
// libtorch_cuda.so is not loaded. Checked against the torch 2.11.0+cu130 wheel with
// the nvidia-nccl-cu13 2.28.9 headers: sizeof gives 0x458 and 0xf8, the sizes
// libtorch_cuda.so's own ProcessGroupNCCL::split allocates, and the constructor runs
// (on a machine without a GPU it throws "no GPUs found", returned as an error).
// Without those headers, asking for NCCL is an error; Gloo still serves CUDA tensors
// by staging them through host memory.

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>
#include <torch/headeronly/version.h>

#ifdef CROSSOVER_WITH_NCCL
#include <dlfcn.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "shim.h"

#if !defined(__x86_64__) && !defined(__aarch64__)
#error "dist.cpp calls ProcessGroupGloo's constructor as a plain function: only checked for the Itanium C++ ABI on x86-64 and AArch64"
#endif

static_assert(TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR == 11,
              "dist.cpp mirrors ProcessGroupGloo's layout from LibTorch 2.11: re-check "
              "GlooLayout against ProcessGroupGloo.hpp and the allocation size in "
              "ProcessGroupGloo::split before building against another version");

// The two exported ProcessGroupGloo entry points (see the top of the file).
extern c10::intrusive_ptr<c10d::Backend::Options> crossover_gloo_create_default_options(
    std::chrono::milliseconds timeout)
    __asm__("_ZN4c10d16ProcessGroupGloo7Options14create_defaultENSt6chrono8durationIlSt5ratioILl1ELl1000EEEE");

extern void crossover_gloo_construct(void* self, const c10::intrusive_ptr<c10d::Store>& store,
                                     int rank, int size,
                                     c10::intrusive_ptr<c10d::Backend::Options> options)
    __asm__("_ZN4c10d16ProcessGroupGlooC1ERKN3c1013intrusive_ptrINS_5StoreENS1_6detail34intrusive_target_default_null_typeIS3_EEEEiiNS2_INS0_7OptionsENS5_ISA_EEEE");

namespace {

// ProcessGroupGloo's data members in declaration order, with Gloo types replaced by
// stand-ins of the same layout (shared_ptr<T> and intrusive_ptr<T> do not depend on
// T). Only its size is used; it is abstract, like Backend.
struct GlooLayout : c10d::Backend {
  std::shared_ptr<void> store_;                                // shared_ptr<gloo::rendezvous::Store>
  const c10::intrusive_ptr<c10d::Backend::Options> options_;   // intrusive_ptr<Options>
  std::vector<std::shared_ptr<void>> contexts_;                // vector<shared_ptr<gloo::Context>>
  std::vector<std::thread> threads_;
  bool stop_;
  uint32_t collectiveCounter_;
  std::deque<c10::intrusive_ptr<c10d::Work>> workQueue_;       // intrusive_ptr<AsyncWork>
  std::vector<c10::intrusive_ptr<c10d::Work>> workInProgress_; // intrusive_ptr<AsyncWork>
  std::mutex workMutex_;
  std::condition_variable workProduceCV_;
  std::condition_variable workConsumeCV_;
  uint64_t seq_;
  size_t local_id_;
  std::shared_ptr<void> pgStatus_;                             // shared_ptr<ProcessGroupStatus>
};

// `operator new(0x1e8)` before the constructor call in ProcessGroupGloo::split/merge.
constexpr size_t kGlooObjectSize = 0x1e8;
static_assert(sizeof(GlooLayout) == kGlooObjectSize,
              "GlooLayout disagrees with the size libtorch_cpu allocates for ProcessGroupGloo");
static_assert(alignof(GlooLayout) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__,
              "ProcessGroupGloo needs no over-aligned storage");

using crossover::guarded;

enum Kind : int { kGloo = 0, kNccl = 1 };

// One rank's membership: the store must outlive the backend (the backend keeps a
// reference too); members are destroyed in reverse order, backend first.
struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  int rank = 0;
  int world = 1;
  // Gloo (true) reduces host memory; NCCL (false) reduces device memory in place.
  bool host_staging = true;
};

Group& group_of(void* group) {
  if (group == nullptr) {
    throw std::invalid_argument("null process group handle");
  }
  return *static_cast<Group*>(group);
}

// Gloo connects the ranks in its constructor (within `rendezvous`); collectives then
// fail after `timeout`.
c10::intrusive_ptr<c10d::Backend> make_gloo(const c10::intrusive_ptr<c10d::Store>& store, int rank,
                                            int world, std::chrono::milliseconds rendezvous,
                                            std::chrono::milliseconds timeout) {
  c10::intrusive_ptr<c10d::Backend::Options> options =
      crossover_gloo_create_default_options(rendezvous);
  void* storage = ::operator new(kGlooObjectSize);
  try {
    // Connects to every peer through the store; throws after `rendezvous`.
    crossover_gloo_construct(storage, store, rank, world, options);
  } catch (...) {
    ::operator delete(storage, kGlooObjectSize);
    throw;
  }
  // SAFETY (see the top of the file): a ProcessGroupGloo now lives at `storage`, its
  // Backend base at the same address, with a zero reference count.
  auto backend = c10::intrusive_ptr<c10d::Backend>::unsafe_steal_from_new(
      static_cast<c10d::Backend*>(storage));
  TORCH_CHECK(backend->getBackendName() == "gloo",
              "the constructed process group reports backend '", backend->getBackendName(),
              "' instead of 'gloo'");
  // ProcessGroupGloo::setTimeout (virtual) sets its options' and contexts' timeout.
  backend->setTimeout(timeout);
  return backend;
}

#ifdef CROSSOVER_WITH_NCCL
void* cuda_symbol(const char* name) {
  dlerror();
  void* address = dlsym(RTLD_DEFAULT, name);
  if (address == nullptr) {
    const char* why = dlerror();
    throw std::runtime_error(std::string("NCCL process group: ") + name +
                             " is not loaded (load LibTorch's CUDA library first: " +
                             (why == nullptr ? "symbol not found" : why) + ")");
  }
  return address;
}

// NCCL connects the ranks at the first collective, through the store (whose own
// timeout is the rendezvous one); `timeout` bounds the collectives.
c10::intrusive_ptr<c10d::Backend> make_nccl(const c10::intrusive_ptr<c10d::Store>& store, int rank,
                                            int world, std::chrono::milliseconds timeout) {
  using Nccl = c10d::ProcessGroupNCCL;
  // ProcessGroupNCCL::Options::Options(bool) and ProcessGroupNCCL::ProcessGroupNCCL(
  // intrusive_ptr<Store>, int, int, intrusive_ptr<Options>), complete-object
  // constructors, from libtorch_cuda.so.
  using OptionsCtor = void (*)(void*, bool);
  using GroupCtor = void (*)(void*, c10::intrusive_ptr<c10d::Store>, int, int,
                             c10::intrusive_ptr<Nccl::Options>);
  auto options_ctor = reinterpret_cast<OptionsCtor>(
      cuda_symbol("_ZN4c10d16ProcessGroupNCCL7OptionsC1Eb"));
  auto group_ctor = reinterpret_cast<GroupCtor>(cuda_symbol(
      "_ZN4c10d16ProcessGroupNCCLC1EN3c1013intrusive_ptrINS_5StoreENS1_6detail34intrusive_target_"
      "default_null_typeIS3_EEEEiiNS2_INS0_7OptionsENS5_IS8_EEEE"));

  void* options_storage = ::operator new(sizeof(Nccl::Options));
  try {
    options_ctor(options_storage, /*is_high_priority_stream=*/false);
  } catch (...) {
    ::operator delete(options_storage, sizeof(Nccl::Options));
    throw;
  }
  auto options = c10::intrusive_ptr<Nccl::Options>::unsafe_steal_from_new(
      static_cast<Nccl::Options*>(options_storage));
  options->timeout = timeout;

  void* storage = ::operator new(sizeof(Nccl));
  try {
    group_ctor(storage, store, rank, world, options);
  } catch (...) {
    ::operator delete(storage, sizeof(Nccl));
    throw;
  }
  auto backend = c10::intrusive_ptr<c10d::Backend>::unsafe_steal_from_new(
      static_cast<c10d::Backend*>(static_cast<Nccl*>(storage)));
  TORCH_CHECK(backend->getBackendName() == "nccl",
              "the constructed process group reports backend '", backend->getBackendName(),
              "' instead of 'nccl'");
  return backend;
}
#endif

// Starts a collective with `issue` (a call that queues it on the backend and returns
// its Work), then waits for it; Gloo fails the Work (and so this throws) once a peer
// is gone or silent for the group's timeout.
//
// Gloo collectives are queued one process at a time: queueing records the collective
// in c10d's process-wide FlightRecorder, whose recordWithResetEnabled (2.11,
// FlightRecorderDetail.hpp) inserts into its `all_pg_status_` map before taking its
// own mutex, so two groups of one process queueing their first collectives at once
// corrupt that map (seen as a crash in _Rb_tree_insert_and_rebalance with two ranks as
// threads of one process). The lock covers only the queueing, not the wait, and is
// uncontended with one group per process. NCCL is left out: its first collective
// creates the communicator inside the call, waiting for the peers.
std::mutex queueing;

template <typename Issue>
void run(const Group& group, Issue&& issue) {
  c10::intrusive_ptr<c10d::Work> work;
  if (group.host_staging) {
    std::lock_guard<std::mutex> lock(queueing);
    work = issue();
  } else {
    work = issue();
  }
  TORCH_CHECK(work, "the backend returned no work handle");
  work->wait();
}

std::vector<at::Tensor> tensors_of(void* const* handles, size_t count) {
  std::vector<at::Tensor> tensors;
  tensors.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    TORCH_CHECK(handles[i] != nullptr, "null tensor handle at position ", i);
    const at::Tensor& tensor = *static_cast<at::Tensor*>(handles[i]);
    TORCH_CHECK(tensor.defined(), "undefined tensor at position ", i);
    TORCH_CHECK(!tensor.is_sparse(), "sparse tensor at position ", i, " is not supported");
    if (!tensors.empty()) {
      TORCH_CHECK(tensor.device() == tensors.front().device(), "tensor ", i, " is on ",
                  tensor.device(), " but tensor 0 on ", tensors.front().device());
    }
    tensors.push_back(tensor);
  }
  return tensors;
}

// Runs `collective` once per element type over one flat buffer holding every tensor
// of that type (in the callers' order, which must be the same on every rank), then
// `after` on the buffer, then copies the buffer back into the tensors when
// `write_back`.
template <typename Collective, typename After>
void flat_per_kind(const Group& group, const std::vector<at::Tensor>& tensors, bool write_back,
                   Collective&& collective, After&& after) {
  at::NoGradGuard no_grad;
  std::vector<at::ScalarType> kinds;
  for (const at::Tensor& tensor : tensors) {
    if (std::find(kinds.begin(), kinds.end(), tensor.scalar_type()) == kinds.end()) {
      kinds.push_back(tensor.scalar_type());
    }
  }
  for (at::ScalarType kind : kinds) {
    std::vector<at::Tensor> members;
    std::vector<at::Tensor> flats;
    for (const at::Tensor& tensor : tensors) {
      if (tensor.scalar_type() == kind) {
        members.push_back(tensor);
        flats.push_back(tensor.reshape({-1}));
      }
    }
    const bool staged = group.host_staging && !members.front().is_cpu();
    // A lone contiguous tensor already in the right memory is reduced in place.
    const bool in_place = members.size() == 1 && members.front().is_contiguous() && !staged;
    at::Tensor buffer = in_place ? flats.front() : at::cat(flats);
    if (staged) {
      buffer = buffer.to(at::kCPU);
    }
    std::vector<at::Tensor> io{buffer};
    collective(io);
    after(buffer);
    if (!write_back || in_place) {
      continue;
    }
    int64_t offset = 0;
    for (at::Tensor& member : members) {
      const int64_t n = member.numel();
      member.copy_(buffer.narrow(0, offset, n).view(member.sizes()));
      offset += n;
    }
  }
}

}  // namespace

extern "C" {

// 1 when the NCCL part is compiled in, else 0.
int crossover_dist_has_nccl() {
#ifdef CROSSOVER_WITH_NCCL
  return 1;
#else
  return 0;
#endif
}

// Joins a process group as `rank` of `world`: rank 0 serves a TCPStore on
// host:port, every rank connects to it, then the backend connects the ranks to each
// other. The rendezvous fails after `rendezvous_ms`, each later collective after
// `timeout_ms`, rather than waiting forever.
// `device_index` (>= 0) is the rank's GPU: NCCL is bound to it explicitly (as
// init_process_group(device_id=...) does) instead of guessing from the current device.
char* crossover_dist_create(int kind, const char* host, uint16_t port, int rank, int world,
                            int64_t rendezvous_ms, int64_t timeout_ms, int device_index,
                            void** out) {
  return guarded([&] {
    TORCH_CHECK(out != nullptr, "null output handle");
    *out = nullptr;
    TORCH_CHECK(host != nullptr && host[0] != '\0', "empty master address");
    TORCH_CHECK(world >= 1, "world size ", world, " is below 1");
    TORCH_CHECK(rank >= 0 && rank < world, "rank ", rank, " is outside 0..", world - 1);
    TORCH_CHECK(rendezvous_ms > 0, "rendezvous timeout ", rendezvous_ms, " ms is not positive");
    TORCH_CHECK(timeout_ms > 0, "timeout ", timeout_ms, " ms is not positive");
    TORCH_CHECK(kind == kGloo || kind == kNccl, "unknown backend kind ", kind);
#ifndef CROSSOVER_WITH_NCCL
    TORCH_CHECK(kind != kNccl,
                "NCCL process group: this trainer was built without NCCL headers (set "
                "CROSSOVER_NCCL_INCLUDE to the folder holding nccl.h, and CROSSOVER_CUDA_INCLUDE "
                "or CUDA_HOME for the CUDA headers, then rebuild; or use the gloo backend, "
                "which stages CUDA tensors through host memory)");
#endif
    const std::chrono::milliseconds rendezvous(rendezvous_ms);
    const std::chrono::milliseconds timeout(timeout_ms);
    c10d::TCPStoreOptions store_options;
    store_options.port = port;
    store_options.isServer = rank == 0;
    store_options.numWorkers = static_cast<size_t>(world);
    store_options.waitWorkers = true;
    store_options.timeout = rendezvous;
    auto group = std::make_unique<Group>();
    group->store = c10::make_intrusive<c10d::TCPStore>(std::string(host), store_options);
    group->rank = rank;
    group->world = world;
#ifdef CROSSOVER_WITH_NCCL
    if (kind == kNccl) {
      group->backend = make_nccl(group->store, rank, world, timeout);
      group->host_staging = false;
      if (device_index >= 0) {
        // Backend::setBoundDeviceId is inline in Backend.hpp: no symbol to look up.
        group->backend->setBoundDeviceId(
            at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device_index)));
      }
    }
#endif
    if (kind == kGloo) {
      group->backend = make_gloo(group->store, rank, world, rendezvous, timeout);
    }
    *out = group.release();
  });
}

// Leaves the group: waits for queued work, stops the backend's threads, closes its
// connections (peers' pending collectives then fail) and, on rank 0, the store.
void crossover_dist_destroy(void* group) {
  try {
    delete static_cast<Group*>(group);
  } catch (...) {
    // A destructor that throws has nowhere to report to; the handle is gone anyway.
  }
}

// Sums `tensors` elementwise across the ranks, in place (then divides by the world
// size when `average`; floating-point tensors only).
char* crossover_dist_all_reduce(void* handle, void* const* tensors, size_t count, int average) {
  return guarded([&] {
    Group& group = group_of(handle);
    std::vector<at::Tensor> list = tensors_of(tensors, count);
    if (average) {
      for (const at::Tensor& tensor : list) {
        TORCH_CHECK(at::isFloatingType(tensor.scalar_type()),
                    "averaging needs floating-point tensors, got ", tensor.scalar_type());
      }
    }
    flat_per_kind(
        group, list, /*write_back=*/true,
        [&](std::vector<at::Tensor>& io) {
          c10d::AllreduceOptions options;
          options.reduceOp = c10d::ReduceOp::SUM;
          run(group, [&] { return group.backend->allreduce(io, options); });
        },
        [&](at::Tensor& buffer) {
          if (average && group.world > 1) {
            buffer.div_(group.world);
          }
        });
  });
}

// Overwrites `tensors` on every rank with rank `root`'s values.
char* crossover_dist_broadcast(void* handle, void* const* tensors, size_t count, int root) {
  return guarded([&] {
    Group& group = group_of(handle);
    TORCH_CHECK(root >= 0 && root < group.world, "broadcast root ", root, " is outside 0..",
                group.world - 1);
    std::vector<at::Tensor> list = tensors_of(tensors, count);
    flat_per_kind(
        group, list, /*write_back=*/group.rank != root,
        [&](std::vector<at::Tensor>& io) {
          c10d::BroadcastOptions options;
          options.rootRank = root;
          options.rootTensor = 0;
          run(group, [&] { return group.backend->broadcast(io, options); });
        },
        [](at::Tensor&) {});
  });
}

// Returns once every rank has entered the barrier.
char* crossover_dist_barrier(void* handle) {
  return guarded([&] {
    Group& group = group_of(handle);
    run(group, [&] { return group.backend->barrier(c10d::BarrierOptions{}); });
  });
}

}  // extern "C"
