//! Which queued jobs the local pool starts, and on which slots (pure decisions).
//!
//! A slot is one CPU worker (`--slots K`) or one GPU (`--gpus 0,1,2,3`); a job with
//! `train.devices N` runs N processes and takes N slots at once, as a disjoint group.
//!
//! Policy, first fit in plan order: at every pass the queue is walked in order and
//! each job that fits in the slots free now starts; one that does not stays where it
//! is, and the smaller jobs behind it may start before it. A wide job therefore waits
//! until enough slots are free together, at worst until the narrow jobs queued with it
//! have run (the queue is finite, so it always runs). Within a pass, a job of N slots
//! takes the first free aligned block (slots kN..kN+N-1, so a 2-device job on 0,1,2,3
//! gets 0,1 or 2,3 and leaves pairs whole), else the first N contiguous free slots,
//! else the first N free slots (a GPU group need not be contiguous to work).

use crate::target::Shape;
use anyhow::bail;

/// Where one process of a job runs; a job takes `train.devices` slots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Slot {
    Cpu,
    /// A GPU index; a job's group of them is its CUDA_VISIBLE_DEVICES.
    Gpu(String),
}

/// Slots for a job of `wanted` processes, given which slots are busy, or None when
/// fewer than `wanted` are free.
pub fn allocate(busy: &[bool], wanted: usize) -> Option<Vec<usize>> {
    let wanted = wanted.max(1);
    let last = busy.len().checked_sub(wanted)?;
    let free_run = |start: usize| (start..start + wanted).all(|slot| !busy[slot]);
    let starts = || 0..=last;
    let window = |start: usize| (start..start + wanted).collect::<Vec<_>>();
    if let Some(start) = starts().step_by(wanted).find(|&start| free_run(start)) {
        return Some(window(start));
    }
    if let Some(start) = starts().find(|&start| free_run(start)) {
        return Some(window(start));
    }
    let free: Vec<usize> = (0..busy.len()).filter(|&slot| !busy[slot]).collect();
    (free.len() >= wanted).then(|| free[..wanted].to_vec())
}

/// One pass of first fit: for queued jobs needing `wanted[i]` slots each, in queue
/// order, the jobs to start now (their positions in the queue) and their slots.
pub fn first_fit(wanted: &[usize], busy: &[bool]) -> Vec<(usize, Vec<usize>)> {
    let mut busy = busy.to_vec();
    let mut starts = Vec::new();
    for (position, &count) in wanted.iter().enumerate() {
        if busy.iter().all(|taken| *taken) {
            break;
        }
        if let Some(slots) = allocate(&busy, count) {
            for &slot in &slots {
                busy[slot] = true;
            }
            starts.push((position, slots));
        }
    }
    starts
}

/// Refuse, before anything starts, a job the pool could never run: one spread over
/// several nodes, or one needing more slots than the pool has (it would wait forever).
pub fn check_fits(job: &str, shape: Shape, slots: &[Slot]) -> anyhow::Result<()> {
    if shape.nodes > 1 {
        bail!(
            "job {job} has train.nodes {} ({} processes): the local pool runs jobs on this machine only; run the sweep with `--backend slurm`, or set train.nodes to 1",
            shape.nodes,
            shape.processes()
        );
    }
    let have = slots.len();
    if shape.devices <= have {
        return Ok(());
    }
    let devices = shape.devices;
    if slots.iter().any(|slot| matches!(slot, Slot::Gpu(_))) {
        bail!(
            "job {job} needs {devices} GPUs at once (train.devices {devices}) but --gpus gives {have}: pass at least {devices} GPUs, or lower train.devices"
        );
    }
    bail!(
        "job {job} runs {devices} processes (train.devices {devices}), one per slot, but --slots is {have}: use --slots {devices} or more, or lower train.devices"
    )
}

/// CUDA_VISIBLE_DEVICES for a group of GPU slots (`2,3`); None on CPU slots.
pub fn visible_devices(slots: &[Slot], group: &[usize]) -> Option<String> {
    let names: Vec<&str> = group
        .iter()
        .filter_map(|&index| match slots.get(index) {
            Some(Slot::Gpu(name)) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    (!names.is_empty()).then(|| names.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `busy` written as a string: `x` busy, `.` free.
    fn busy(text: &str) -> Vec<bool> {
        text.chars().map(|c| c == 'x').collect()
    }

    #[test]
    fn allocation_prefers_aligned_then_contiguous_then_any() {
        let cases: [(&str, usize, Option<&[usize]>); 12] = [
            ("....", 1, Some(&[0])),
            ("....", 2, Some(&[0, 1])),
            ("xx..", 2, Some(&[2, 3])),
            // Aligned block 2,3 before the unaligned 1,2: slot 1 stays for a 1-GPU job.
            ("x...", 2, Some(&[2, 3])),
            ("x..x", 2, Some(&[1, 2])),
            (".x.x", 2, Some(&[0, 2])),
            (".xx.", 2, Some(&[0, 3])),
            ("xxx.", 2, None),
            ("....", 4, Some(&[0, 1, 2, 3])),
            ("...x", 4, None),
            ("..", 4, None),
            ("x..", 0, Some(&[1])),
        ];
        for (state, wanted, expected) in cases {
            assert_eq!(
                allocate(&busy(state), wanted),
                expected.map(<[usize]>::to_vec),
                "{state} {wanted}"
            );
        }
    }

    #[test]
    fn first_fit_starts_what_fits_in_queue_order_without_waiting_for_wide_jobs() {
        type Case = (
            &'static [usize],
            &'static str,
            &'static [(usize, &'static [usize])],
        );
        let cases: [Case; 6] = [
            // Two 2-device jobs on 4 GPUs: both at once, disjoint.
            (&[2, 2], "....", &[(0, &[0, 1]), (1, &[2, 3])]),
            // A 2-device and two 1-device jobs on 3 GPUs: the third waits.
            (&[2, 1, 1], "...", &[(0, &[0, 1]), (1, &[2])]),
            // A wide job that does not fit now does not block the narrow ones behind it.
            (&[4, 1, 1], "x...", &[(1, &[1]), (2, &[2])]),
            (&[2, 1], "x.x.", &[(0, &[1, 3])]),
            (&[3, 2, 1], "xx..", &[(1, &[2, 3])]),
            (&[1, 1], "xxxx", &[]),
        ];
        for (wanted, state, expected) in cases {
            let expected: Vec<(usize, Vec<usize>)> = expected
                .iter()
                .map(|(position, slots)| (*position, slots.to_vec()))
                .collect();
            assert_eq!(
                first_fit(wanted, &busy(state)),
                expected,
                "{wanted:?} {state}"
            );
        }
    }

    #[test]
    fn jobs_the_pool_can_never_run_are_refused_with_the_numbers() {
        let gpus: Vec<Slot> = ["0", "1"].map(|gpu| Slot::Gpu(gpu.into())).to_vec();
        let cpus = vec![Slot::Cpu; 2];
        let shape = |devices, nodes| Shape { devices, nodes };
        let cases: [(Shape, &[Slot], Option<&str>); 6] = [
            (shape(1, 1), &gpus, None),
            (shape(2, 1), &gpus, None),
            (shape(2, 1), &cpus, None),
            (
                shape(4, 1),
                &gpus,
                Some("job abc needs 4 GPUs at once (train.devices 4) but --gpus gives 2"),
            ),
            (
                shape(3, 1),
                &cpus,
                Some(
                    "job abc runs 3 processes (train.devices 3), one per slot, but --slots is 2: use --slots 3",
                ),
            ),
            (
                shape(1, 2),
                &gpus,
                Some(
                    "job abc has train.nodes 2 (2 processes): the local pool runs jobs on this machine only; run the sweep with `--backend slurm`",
                ),
            ),
        ];
        for (shape, slots, expected) in cases {
            let result = check_fits("abc", shape, slots);
            match expected {
                None => assert!(result.is_ok(), "{shape:?}: {result:?}"),
                Some(message) => {
                    let error = result.expect_err("refused").to_string();
                    assert!(error.contains(message), "{error}");
                }
            }
        }
    }

    #[test]
    fn visible_devices_name_the_group() {
        let gpus: Vec<Slot> = ["0", "1", "5", "7"]
            .map(|gpu| Slot::Gpu(gpu.into()))
            .to_vec();
        assert_eq!(visible_devices(&gpus, &[2, 3]).as_deref(), Some("5,7"));
        assert_eq!(visible_devices(&gpus, &[0]).as_deref(), Some("0"));
        assert_eq!(visible_devices(&[Slot::Cpu, Slot::Cpu], &[0, 1]), None);
    }
}
