//! c10d process groups through csrc/dist.cpp: two Gloo ranks on this machine (threads
//! of this test process, each with its own group on the same rendezvous port) reduce
//! and broadcast known tensors; a rank that leaves, stays silent, never comes or is
//! killed makes the other rank's call fail within the timeout instead of hanging.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};
use tch::{Device, Kind, Tensor};
use trainer::parallel::process_group::{Backend, GroupConfig, ProcessGroup};

/// Collective timeout.
const TIMEOUT: Duration = Duration::from_secs(3);
/// Rendezvous timeout: generous, as threads and a child process start slowly on a
/// loaded machine.
const RENDEZVOUS: Duration = Duration::from_secs(60);
/// How long a failing call may take: the timeout plus slack for a loaded machine.
const FAIL_WITHIN: Duration = Duration::from_secs(5);

/// Environment of the child process in `killed_peer_fails_the_collective`.
const CHILD_PORT_ENV: &str = "CROSSOVER_DIST_TEST_CHILD_PORT";

/// A port nobody listens on now (the OS picks it; the listener is closed at once).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

fn config(port: u16, rank: usize) -> GroupConfig {
    GroupConfig {
        backend: Backend::Gloo,
        master_addr: "127.0.0.1".into(),
        port,
        rank,
        world: 2,
        rendezvous_timeout: RENDEZVOUS,
        timeout: TIMEOUT,
        device: None,
        bucket_bytes: trainer::parallel::process_group::BUCKET_BYTES,
    }
}

/// Runs `body(rank, group)` for ranks 0 and 1 on two threads of one group.
fn two_ranks<T: Send + 'static>(
    body: impl Fn(usize, ProcessGroup) -> T + Send + Sync + Clone + 'static,
) -> (T, T) {
    two_ranks_bucketed(trainer::parallel::process_group::BUCKET_BYTES, body)
}

/// `two_ranks` with all-reduces in buckets of `bucket_bytes`.
fn two_ranks_bucketed<T: Send + 'static>(
    bucket_bytes: usize,
    body: impl Fn(usize, ProcessGroup) -> T + Send + Sync + Clone + 'static,
) -> (T, T) {
    let port = free_port();
    let spawn = |rank: usize| {
        let body = body.clone();
        thread::spawn(move || {
            let group = ProcessGroup::new(&GroupConfig {
                bucket_bytes,
                ..config(port, rank)
            })
            .unwrap_or_else(|error| panic!("rank {rank}: {error}"));
            assert_eq!((group.rank(), group.world()), (rank, 2));
            body(rank, group)
        })
    };
    let (zero, one) = (spawn(0), spawn(1));
    (
        zero.join().expect("rank 0 panicked"),
        one.join().expect("rank 1 panicked"),
    )
}

fn values(tensor: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(tensor.to_kind(Kind::Double).flatten(0, -1)).expect("tensor values")
}

fn cpu(kind: Kind) -> (Kind, Device) {
    (kind, Device::Cpu)
}

/// Gradients reduced in small buckets (here 24 bytes: some buckets hold several
/// tensors, a large tensor is one alone, a non-contiguous one and an integer one are
/// mixed in) end exactly as the elementwise means computed here.
#[test]
fn bucketed_all_reduce_equals_the_mean_of_every_tensor() {
    const SHAPES: [&[i64]; 6] = [&[2], &[3], &[7, 5], &[1], &[4, 2], &[2]];
    let make = |rank: usize| -> Vec<Tensor> {
        SHAPES
            .iter()
            .enumerate()
            .map(|(index, shape)| {
                let numel: i64 = shape.iter().product();
                let base = Tensor::arange(numel, cpu(Kind::Float)).reshape(*shape);
                let tensor = base * (rank as f64 + 1.0) + index as f64;
                if shape.len() == 2 {
                    tensor.transpose(0, 1)
                } else {
                    tensor
                }
            })
            .collect()
    };
    let (zero, one) = two_ranks_bucketed(24, move |rank, group| {
        let tensors = make(rank);
        group.all_reduce_mean(&tensors).expect("all-reduce");
        tensors.iter().map(values).collect::<Vec<_>>()
    });
    assert_eq!(zero, one);
    let (ranks0, ranks1) = (make(0), make(1));
    for (index, reduced) in zero.iter().enumerate() {
        let expected: Vec<f64> = values(&ranks0[index])
            .iter()
            .zip(values(&ranks1[index]))
            .map(|(a, b)| (a + b) / 2.0)
            .collect();
        assert_eq!(reduced, &expected, "tensor {index}");
    }
}

#[test]
fn all_reduce_sums_and_averages_across_two_ranks() {
    let (zero, one) = two_ranks(|rank, group| {
        let r = rank as f64 + 1.0; // 1 on rank 0, 2 on rank 1
        let ones = Tensor::full([2, 3], r, cpu(Kind::Float));
        let counts = Tensor::arange(5, cpu(Kind::Int64)) * (rank as i64 + 1);
        let scalar = Tensor::from_slice(&[0.25 * r]);
        // A transposed view: not contiguous, so it is reduced in the Float buffer it
        // shares with `ones` and copied back from there.
        let transposed = (Tensor::arange(6, cpu(Kind::Float)).reshape([2, 3]) * r).transpose(0, 1);
        let sums = [ones, counts, scalar, transposed];
        group.all_reduce_sum(&sums).expect("all-reduce sum");

        // Alone in its buffer and contiguous: reduced in place.
        let lone = Tensor::full([4], 2.0 * r, cpu(Kind::Float));
        group
            .all_reduce_mean(std::slice::from_ref(&lone))
            .expect("all-reduce mean");
        let mixed = [
            Tensor::from_slice(&[r, -r]),
            Tensor::full([3], 10.0 * r, cpu(Kind::Float)),
        ];
        group
            .all_reduce_mean(&mixed)
            .expect("all-reduce mean of two kinds");

        let integer = [Tensor::arange(3, cpu(Kind::Int64))];
        let refused = group.all_reduce_mean(&integer);
        (
            sums.map(|t| values(&t)),
            values(&lone),
            mixed.map(|t| values(&t)),
            refused.is_err(),
        )
    });
    for (rank, (sums, lone, mixed, refused)) in [zero, one].into_iter().enumerate() {
        assert_eq!(sums[0], vec![3.0; 6], "rank {rank}: 1 + 2");
        assert_eq!(
            sums[1],
            vec![0.0, 3.0, 6.0, 9.0, 12.0],
            "rank {rank}: i + 2i"
        );
        assert_eq!(sums[2], vec![0.75], "rank {rank}: 0.25 + 0.5");
        // transpose of [[0,1,2],[3,4,5]] * 3, read row by row
        assert_eq!(sums[3], vec![0.0, 9.0, 3.0, 12.0, 6.0, 15.0], "rank {rank}");
        assert_eq!(lone, vec![3.0; 4], "rank {rank}: (2 + 4) / 2");
        assert_eq!(mixed[0], vec![1.5, -1.5], "rank {rank}");
        assert_eq!(mixed[1], vec![15.0; 3], "rank {rank}");
        assert!(refused, "rank {rank}: averaging integers must be refused");
    }
}

#[test]
fn broadcast_copies_rank_zero_and_barrier_meets() {
    let (zero, one) = two_ranks(|rank, group| {
        // Parameters require gradients: the copy must not be recorded by autograd.
        let weight = if rank == 0 {
            Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).reshape([2, 2])
        } else {
            Tensor::zeros([2, 2], cpu(Kind::Float))
        }
        .set_requires_grad(true);
        let step = Tensor::from_slice(&[if rank == 0 { 7i64 } else { -1 }]);
        group
            .broadcast(&[weight.shallow_clone(), step.shallow_clone()])
            .expect("broadcast");
        group.barrier().expect("barrier");
        (values(&weight), values(&step), weight.requires_grad())
    });
    for (rank, (weight, step, requires_grad)) in [zero, one].into_iter().enumerate() {
        assert_eq!(weight, vec![1.0, 2.0, 3.0, 4.0], "rank {rank}");
        assert_eq!(step, vec![7.0], "rank {rank}");
        assert!(requires_grad, "rank {rank}");
    }
}

#[test]
fn a_group_of_one_leaves_tensors_alone() {
    let group = ProcessGroup::new(&GroupConfig {
        world: 1,
        ..config(free_port(), 0)
    })
    .expect("a group of one");
    let tensors = [
        Tensor::from_slice(&[1.0f32, -2.0]),
        Tensor::from_slice(&[5i64]),
    ];
    group.all_reduce_sum(&tensors).expect("all-reduce sum");
    group
        .all_reduce_mean(&tensors[..1])
        .expect("all-reduce mean");
    group.broadcast(&tensors).expect("broadcast");
    group.barrier().expect("barrier");
    assert_eq!(values(&tensors[0]), vec![1.0, -2.0]);
    assert_eq!(values(&tensors[1]), vec![5.0]);
    assert!(
        group.all_reduce_sum(&[]).is_ok(),
        "an empty list is a no-op"
    );
}

/// NCCL: refused with a clear error in a trainer built without its headers; otherwise
/// a group of one reduces a CUDA tensor where a GPU is, and fails cleanly where not.
#[test]
fn nccl_group_of_one() {
    let config = GroupConfig {
        backend: Backend::Nccl,
        world: 1,
        ..config(free_port(), 0)
    };
    if !trainer::parallel::process_group::nccl_available() {
        let error = ProcessGroup::new(&config).expect_err("NCCL without its headers");
        assert!(
            error.to_string().contains("built without NCCL headers"),
            "{error}"
        );
        return;
    }
    let gpus = trainer::device::load_cuda().is_ok() && tch::Cuda::device_count() > 0;
    let group = ProcessGroup::new(&config);
    if !gpus {
        assert!(group.is_err(), "NCCL without a GPU must fail");
        return;
    }
    let group = group.expect("NCCL group of one");
    let tensor = [Tensor::from_slice(&[1.0f32, 2.0]).to_device(Device::Cuda(0))];
    group.all_reduce_mean(&tensor).expect("NCCL all-reduce");
    group.barrier().expect("NCCL barrier");
    assert_eq!(values(&tensor[0].to_device(Device::Cpu)), vec![1.0, 2.0]);
}

/// Rank 1 reduces once, then drops its group (closing its connections); rank 0's
/// next all-reduce must fail, not wait.
#[test]
fn peer_that_leaves_fails_the_collective() {
    let (zero, _) = two_ranks(|rank, group| {
        let tensor = [Tensor::ones([8], cpu(Kind::Float))];
        group.all_reduce_sum(&tensor).expect("first all-reduce");
        if rank == 1 {
            drop(group);
            return None;
        }
        let start = Instant::now();
        let result = group.all_reduce_sum(&tensor);
        Some((result, start.elapsed()))
    });
    let (result, elapsed) = zero.expect("rank 0 result");
    let error = result.expect_err("all-reduce with a departed peer must fail");
    assert!(
        elapsed < FAIL_WITHIN,
        "failed only after {elapsed:?}: {error}"
    );
    assert!(error.to_string().contains("all-reduce"), "{error}");
}

/// Rank 1 stays in the group but never joins the collective; rank 0's all-reduce
/// must fail after the group's timeout.
#[test]
fn silent_peer_fails_the_collective_after_the_timeout() {
    let (release, released) = mpsc::channel::<()>();
    let released = std::sync::Arc::new(std::sync::Mutex::new(released));
    let (zero, _) = two_ranks(move |rank, group| {
        if rank == 1 {
            // Hold the group open until rank 0 is done (or long past the timeout).
            let released = released.lock().expect("channel lock");
            let _ = released.recv_timeout(Duration::from_secs(30));
            return None;
        }
        let start = Instant::now();
        let result = group.all_reduce_sum(&[Tensor::ones([8], cpu(Kind::Float))]);
        let elapsed = start.elapsed();
        let _ = release.send(());
        Some((result, elapsed))
    });
    let (result, elapsed) = zero.expect("rank 0 result");
    let error = result.expect_err("all-reduce with a silent peer must fail");
    assert!(
        elapsed >= TIMEOUT.mul_f64(0.9) && elapsed < FAIL_WITHIN,
        "failed after {elapsed:?}, expected about {TIMEOUT:?}: {error}"
    );
}

/// Rank 1 never starts: rank 0's rendezvous fails after the timeout.
#[test]
fn missing_peer_fails_the_rendezvous() {
    let start = Instant::now();
    let error = ProcessGroup::new(&GroupConfig {
        rendezvous_timeout: Duration::from_secs(2),
        ..config(free_port(), 0)
    })
    .expect_err("a group of 2 with one rank must not form");
    let elapsed = start.elapsed();
    assert!(
        elapsed < FAIL_WITHIN,
        "failed only after {elapsed:?}: {error}"
    );
    assert!(error.to_string().contains("rank 0 of 2"), "{error}");
}

/// Rank 1 is another process, killed (SIGKILL) after one all-reduce: rank 0's next
/// one must fail. The child is this test binary running `child_rank`.
#[test]
fn killed_peer_fails_the_collective() {
    let port = free_port();
    let mut child = Command::new(std::env::current_exe().expect("test binary path"))
        .args(["--exact", "child_rank", "--nocapture", "--test-threads=1"])
        .env(CHILD_PORT_ENV, port.to_string())
        .stdout(Stdio::null())
        .spawn()
        .expect("starting the child rank");
    let group = ProcessGroup::new(&config(port, 0));
    let outcome = group.and_then(|group| {
        let tensor = [Tensor::full([4], 1.0, cpu(Kind::Float))];
        group.all_reduce_sum(&tensor)?;
        let first = values(&tensor[0]);
        child.kill().expect("killing the child rank");
        child.wait().expect("reaping the child rank");
        let start = Instant::now();
        let second = group.all_reduce_sum(&tensor);
        Ok((first, second, start.elapsed()))
    });
    let _ = child.kill();
    let _ = child.wait();
    let (first, second, elapsed) = outcome.expect("rank 0 before the kill");
    assert_eq!(first, vec![3.0; 4], "1 + 2 from the child");
    let error = second.expect_err("all-reduce with a killed peer must fail");
    assert!(
        elapsed < FAIL_WITHIN,
        "failed only after {elapsed:?}: {error}"
    );
}

/// Rank 1 of `killed_peer_fails_the_collective` when started by it; otherwise nothing.
#[test]
fn child_rank() {
    let Ok(port) = std::env::var(CHILD_PORT_ENV) else {
        return;
    };
    let port: u16 = port.parse().expect("child port");
    let group = ProcessGroup::new(&config(port, 1)).expect("child joining");
    group
        .all_reduce_sum(&[Tensor::full([4], 2.0, cpu(Kind::Float))])
        .expect("child all-reduce");
    // Wait to be killed; the parent gives up long before this.
    thread::sleep(Duration::from_secs(60));
}
