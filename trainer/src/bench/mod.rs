//! `trainer bench`: training throughput, MFU and peak memory for AR and DLM, beside
//! the same model and batch in PyTorch (`bench/reference.py`, eager and optionally
//! `torch.compile`). Each configuration runs in its own process so its peak memory is
//! its own. `trainer bench-check`: the harness and the PyTorch reference compute the
//! same losses and gradient norms from the same weights and batch.
//!
//! `case` (what is measured), `throughput` (one harness measurement), `reference`
//! (PyTorch), `compare` (the two back to back), `table` (what `trainer bench`
//! prints), `check` (`trainer bench-check`), `scoring` (`trainer bench-eval`), `data`
//! (`trainer bench-data`).

pub mod case;
pub mod check;
pub mod compare;
pub mod data;
pub mod reference;
pub mod scoring;
pub mod table;
pub mod throughput;
