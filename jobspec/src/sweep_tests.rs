use super::*;
use crate::{DeviceSpec, Precision};

const BASE: &str = "\
name: t
base:
  objective: ar
  model: { preset: nano }
  data: { corpus: c, tokenizer: bytes, seq_len: 16, unique_tokens: 1k, val_tokens: 1k }
  train: { epochs: 1, batch_size: 2, lr: 1e-3 }
";

fn sweep(rest: &str) -> Result<Sweep> {
    Sweep::from_yaml(&format!("{BASE}{rest}"), Path::new("t.yaml"))
}

/// Each job as `axis=value` pairs, for comparing expansions at a glance.
fn expansion(rest: &str) -> Vec<String> {
    let sweep = sweep(rest).unwrap_or_else(|error| panic!("{rest}: {error}"));
    sweep
        .jobs
        .iter()
        .map(|job| {
            let values: Vec<String> = job
                .values
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect();
            values.join(" ")
        })
        .collect()
}

#[test]
fn expansion_cases() {
    let cases: [(&str, &[&str]); 6] = [
        (
            "grid:\n  objective: [ar, dlm]\n  seed: [0, 1]\n",
            &[
                "objective=\"ar\" seed=0",
                "objective=\"ar\" seed=1",
                "objective=\"dlm\" seed=0",
                "objective=\"dlm\" seed=1",
            ],
        ),
        (
            "grid:\n  objective: [ar, dlm]\nzip:\n  data.unique_tokens: [2k, 4k]\n  train.epochs: [2, 1]\n",
            &[
                "objective=\"ar\" data.unique_tokens=\"2k\" train.epochs=2",
                "objective=\"ar\" data.unique_tokens=\"4k\" train.epochs=1",
                "objective=\"dlm\" data.unique_tokens=\"2k\" train.epochs=2",
                "objective=\"dlm\" data.unique_tokens=\"4k\" train.epochs=1",
            ],
        ),
        (
            "grid:\n  objective: [ar, dlm]\ninclude:\n  - { objective: { ar_masked: 0.5 }, seed: 3 }\n",
            &[
                "objective=\"ar\" seed=0",
                "objective=\"dlm\" seed=0",
                "objective={\"ar_masked\":0.5} seed=3",
            ],
        ),
        (
            "grid:\n  objective: [ar, dlm]\n  data.unique_tokens: [1k, 2k]\nexclude:\n  - { objective: dlm, data.unique_tokens: 1000 }\n",
            &[
                "objective=\"ar\" data.unique_tokens=\"1k\"",
                "objective=\"ar\" data.unique_tokens=\"2k\"",
                "objective=\"dlm\" data.unique_tokens=\"2k\"",
            ],
        ),
        ("", &[""]),
        (
            "grid:\n  seed: [0]\ninclude:\n  - { seed: 0 }\n",
            &["seed=0"],
        ),
    ];
    for (rest, expected) in cases {
        assert_eq!(expansion(rest), expected, "{rest}");
    }
}

#[test]
fn suffixes_and_dotted_overrides_of_nested_fields() {
    let sweep = sweep(
        "grid:\n  objective: [dlm]\n  data.unique_tokens: [2k, 1.5M]\n  model.d_model: [128]\n  dlm.eps: [0.01]\n",
    )
    .expect("expands");
    let config = &sweep.jobs[1].config;
    assert_eq!(config.data.unique_tokens.get(), 1_500_000);
    assert_eq!(config.model.d_model, Some(128));
    assert_eq!(
        config.model.n_layer,
        Some(2),
        "the rest of the preset stays"
    );
    assert_eq!(config.data.seq_len, 16, "sibling fields stay");
    assert_eq!(
        config.dlm.eps, 0.01,
        "a section base does not write is created"
    );
}

#[test]
fn ids_ignore_key_order_and_formatting() {
    let a = Sweep::from_yaml(BASE, Path::new("a")).expect("a");
    let reordered = "
name: t
base:
  train: {lr: 0.001, batch_size: 2, epochs: 1.0}
  data: {val_tokens: 1000, unique_tokens: 1000, seq_len: 16, tokenizer: bytes, corpus: c}
  model: {preset: nano}
  objective: ar
";
    let b = Sweep::from_yaml(reordered, Path::new("b")).expect("b");
    assert_eq!(a.jobs[0].id, b.jobs[0].id);
    let c = sweep("grid:\n  seed: [1]\n").expect("c");
    assert_ne!(a.jobs[0].id, c.jobs[0].id);
    let d = sweep("grid:\n  train.lr: [0.001]\n").expect("d");
    assert_eq!(a.jobs[0].id, d.jobs[0].id, "a grid value equal to base's");
}

#[test]
fn duplicate_jobs_are_dropped_and_counted() {
    let sweep = sweep("grid:\n  seed: [0, 1]\ninclude:\n  - { seed: 1 }\n").expect("expands");
    assert_eq!(sweep.jobs.len(), 2);
    assert_eq!(sweep.duplicates, 1);
}

/// A grid over how jobs are spread (not part of the id) would make one job twice:
/// refused at the axis, naming both spreads. Spreads that go with different jobs
/// (a zip with the objective) are fine.
#[test]
fn jobs_that_differ_only_in_their_spread_are_refused() {
    let cases = [
        (
            "grid:\n  train.devices: [1, 2]\n",
            "t.yaml:8:3: `grid.train.devices`",
            "devices 1, nodes 1, shard_optimizer false, activation_checkpointing false against devices 2, nodes 1, shard_optimizer false, activation_checkpointing false",
        ),
        (
            "grid:\n  train.shard_optimizer: [false, true]\n",
            "t.yaml:8:3: `grid.train.shard_optimizer`",
            "against devices 1, nodes 1, shard_optimizer true",
        ),
        (
            "grid:\n  train.activation_checkpointing: [false, true]\n",
            "t.yaml:8:3: `grid.train.activation_checkpointing`",
            "against devices 1, nodes 1, shard_optimizer false, activation_checkpointing true",
        ),
    ];
    for (rest, place, spreads) in cases {
        let message = sweep(rest).expect_err(rest).to_string();
        assert!(message.starts_with(place), "{rest}: {message}");
        assert!(message.contains(spreads), "{rest}: {message}");
        assert!(message.contains("set it in base"), "{message}");
    }
    let zipped = sweep("zip:\n  objective: [ar, dlm]\n  train.devices: [1, 2]\n").expect("zip");
    assert_eq!(zipped.jobs.len(), 2);
}

/// Bad sweeps and the exact message each gives: file, line, column, key, reason.
#[test]
fn errors_name_file_line_column_and_key() {
    let cases = [
        // 1. YAML syntax error.
        (
            "grid:\n  objective: [ar, dlm}\n",
            "t.yaml:8:14: `grid.objective`: mismatched bracket '[' closed by '}'",
        ),
        // 2. Unknown top-level key.
        (
            "gird:\n  seed: [0]\n",
            "t.yaml:7:1: `gird`: unknown field `gird`, expected one of name, base, grid, zip, include, exclude, slurm",
        ),
        // 3. Wrong type: a grid axis that is not a list.
        (
            "grid:\n  seed: 3\n",
            "t.yaml:8:3: `grid.seed`: must be a list of values",
        ),
        // 4. Empty grid axis.
        (
            "grid:\n  seed: []\n",
            "t.yaml:8:3: `grid.seed`: is empty: give at least one value",
        ),
        // 5. Zip of unequal lengths.
        (
            "zip:\n  data.unique_tokens: [2k, 4k]\n  train.epochs: [2]\n",
            "t.yaml:9:3: `zip.train.epochs`: has 1 values but `data.unique_tokens` has 2: zipped lists must have equal lengths",
        ),
        // 6. Unknown objective, with the allowed names.
        (
            "grid:\n  objective: [ar, sgd]\n",
            "t.yaml:8:3: `grid.objective`: unknown variant `sgd`, expected one of ar, dlm, ar_masked, ar_dropout (job objective=\"sgd\")",
        ),
        // 7. Negative budget.
        (
            "grid:\n  data.unique_tokens: [-5k]\n",
            "t.yaml:8:3: `grid.data.unique_tokens`: `-5k` is not a token count: it must be zero or more (job data.unique_tokens=\"-5k\")",
        ),
        // 8. A name that escapes the results root: below, with the whole-file cases.
        // 9. Unknown preset, with the presets.
        (
            "include:\n  - { model.preset: huge }\n",
            "t.yaml:8:5: `include[0].model.preset`: unknown preset `huge`; choose one of nano, tiny, small, 125m, 350m, 1b, 1.7b, moe-tiny, moe-125m, 8b-a1b (job model.preset=\"huge\")",
        ),
        // 10. seq_len beyond the model.
        (
            "grid:\n  data.seq_len: [4096]\n",
            "t.yaml:8:3: `grid.data.seq_len`: 4096 is longer than the model takes (model.max_seq_len = 2048); shorten it or raise max_seq_len (job data.seq_len=4096)",
        ),
        // 11, 12. Unknown field and wrong type inside base: below.
        // 13. Unknown schedule, with the allowed names.
        (
            "grid:\n  train.schedule: [linear]\n",
            "t.yaml:8:3: `grid.train.schedule`: unknown variant `linear`, expected one of cosine, wsd, constant (job train.schedule=\"linear\")",
        ),
        // 14. Unknown tokenizer kind.
        (
            "grid:\n  data.tokenizer: [words]\n",
            "t.yaml:8:3: `grid.data.tokenizer`: unknown variant `words`, expected one of gpt2, bytes, bpe, file (job data.tokenizer=\"words\")",
        ),
        // 15. An exclude key that is not an axis.
        (
            "grid:\n  seed: [0, 1]\nexclude:\n  - { objective: ar }\n",
            "t.yaml:10:5: `exclude[0].objective`: is not a grid or zip key; exclude can only drop grid jobs",
        ),
    ];
    let mut wrong = Vec::new();
    for (rest, expected) in cases.iter() {
        let message = sweep(rest).expect_err(rest).to_string();
        if &message != expected {
            wrong.push(format!(
                "{rest}\n  got:      {message}\n  expected: {expected}"
            ));
        }
    }
    let whole_file_cases = [
        (
            BASE.replace(", lr: 1e-3", ""),
            "t.yaml:2:1: `base`: missing field `lr`",
        ),
        (
            BASE.replace("name: t", "name: ../x"),
            "t.yaml:1:1: `name`: `../x` must be 1-100 letters, digits, '-', '_' or '.', not starting with '.' (it names a folder under the results root)",
        ),
        (
            BASE.replace("name: t", "name: /tmp/x"),
            "t.yaml:1:1: `name`: `/tmp/x` must be 1-100 letters, digits, '-', '_' or '.', not starting with '.' (it names a folder under the results root)",
        ),
        (
            BASE.replace("lr: 1e-3", "lr: 1e-3, bogus: 1"),
            "t.yaml:6:48: `base.train.bogus`: unknown field `bogus`, expected one of epochs, batch_size, lr, min_lr_ratio, warmup, schedule, decay_fraction, weight_decay, decay, beta1, beta2, adam_eps, grad_clip, log_every, checkpoint_minutes, device, precision, micro_batch_size, devices, nodes, shard_optimizer, deterministic, activation_checkpointing, keep",
        ),
        (
            BASE.replace("batch_size: 2", "batch_size: two"),
            "t.yaml:6:23: `base.train.batch_size`: invalid u64",
        ),
        (
            BASE.replace("lr: 1e-3", "lr: -1"),
            "t.yaml:6:38: `base.train.lr`: -1 must be positive",
        ),
        (
            BASE.replace("lr: 1e-3", "lr: 1e-3, micro_batch_size: 3"),
            "t.yaml:6:48: `base.train.micro_batch_size`: must be between 1 and the rows each process trains on (train.batch_size / (devices x nodes) = 2); leave it out to process them at once",
        ),
    ];
    for (text, expected) in whole_file_cases {
        let message = Sweep::from_yaml(&text, Path::new("t.yaml"))
            .expect_err(&text)
            .to_string();
        if message != expected {
            wrong.push(format!(
                "{text}\n  got:      {message}\n  expected: {expected}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_slurm_section_is_read_and_never_changes_job_ids() {
    let grid = "grid:\n  seed: [0, 1]\n";
    let plain = sweep(grid).unwrap_or_else(|error| panic!("{error}"));
    let section = "slurm:\n  partition: gpu\n  time: 4:00:00\n  mem: 16G\n  gres: gpu:1\n  max_running: 2\n  requeue: true\n  extra: ['#SBATCH --constraint=a100']\n  setup: |\n    module load cuda\n";
    let with_slurm = sweep(&format!("{grid}{section}")).unwrap_or_else(|error| panic!("{error}"));
    let ids = |sweep: &Sweep| {
        sweep
            .jobs
            .iter()
            .map(|job| job.id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&plain), ids(&with_slurm));
    assert_eq!(plain.slurm, None);
    let slurm = with_slurm.slurm.unwrap_or_default();
    assert_eq!(slurm.partition.as_deref(), Some("gpu"));
    assert_eq!(slurm.time.as_deref(), Some("4:00:00"));
    assert_eq!(slurm.max_running, Some(2));
    assert_eq!(slurm.extra, ["#SBATCH --constraint=a100"]);
    assert_eq!(slurm.setup.as_deref(), Some("module load cuda\n"));
    let typo = sweep("slurm:\n  partiton: gpu\n")
        .map(|_| ())
        .expect_err("a misspelt key")
        .to_string();
    assert!(typo.contains("partiton"), "{typo}");
}

#[test]
fn device_spellings() {
    let cases = [
        ("auto", Ok(DeviceSpec::Auto)),
        ("cpu", Ok(DeviceSpec::Cpu)),
        ("cuda", Ok(DeviceSpec::Cuda(0))),
        ("cuda:3", Ok(DeviceSpec::Cuda(3))),
        (
            "tpu",
            Err("`tpu` is not a device: write auto, cpu, cuda or cuda:N".to_owned()),
        ),
        (
            "cuda:x",
            Err("`cuda:x` is not a device: write auto, cpu, cuda or cuda:N".to_owned()),
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(text.parse::<DeviceSpec>(), expected, "{text}");
    }
    assert_eq!(DeviceSpec::Cuda(2).to_string(), "cuda:2");
    assert_eq!(Precision::Auto.resolve(true), Precision::Bf16);
    assert_eq!(Precision::Auto.resolve(false), Precision::Fp32);
    assert_eq!(Precision::Fp32.resolve(true), Precision::Fp32);
}

#[test]
fn device_and_precision_left_at_auto_keep_the_job_id() {
    let plain = sweep("").expect("sweep");
    let auto = Sweep::from_yaml(
        &BASE.replace("lr: 1e-3 }", "lr: 1e-3, device: auto, precision: auto }"),
        Path::new("t.yaml"),
    )
    .expect("sweep");
    let cuda = Sweep::from_yaml(
        &BASE.replace("lr: 1e-3 }", "lr: 1e-3, device: cuda, precision: bf16 }"),
        Path::new("t.yaml"),
    )
    .expect("sweep");
    assert_eq!(plain.jobs[0].id, auto.jobs[0].id);
    assert_ne!(plain.jobs[0].id, cuda.jobs[0].id);
    assert_eq!(cuda.jobs[0].config.train.device, DeviceSpec::Cuda(0));
    assert_eq!(cuda.jobs[0].config.train.precision, Precision::Bf16);
    let error = Sweep::from_yaml(
        &BASE.replace("lr: 1e-3 }", "lr: 1e-3, device: tpu }"),
        Path::new("t.yaml"),
    )
    .expect_err("bad device");
    assert!(
        error.to_string().contains("t.yaml:") && error.to_string().contains("not a device"),
        "{error}"
    );
}

#[test]
fn dlm_only_settings_do_not_split_ar_jobs() {
    let sweep = sweep(
        "grid:\n  objective: [ar, dlm]\n  dlm.truncate_prob: [0, 0.01]\n  eval.dlm_pad: [none, mask]\n",
    )
    .unwrap_or_else(|error| panic!("{error}"));
    let ar: Vec<_> = sweep
        .jobs
        .iter()
        .filter(|job| job.config.objective == crate::Objective::Ar)
        .collect();
    let dlm = sweep.jobs.len() - ar.len();
    assert_eq!((ar.len(), dlm), (1, 4), "one AR job, four DLM variants");
    assert_eq!(ar[0].config.dlm, crate::DlmConfig::default());
}

#[test]
fn faithful_defaults() {
    let sweep = sweep("").unwrap_or_else(|error| panic!("{error}"));
    let config = &sweep.jobs[0].config;
    assert_eq!(config.data.order, crate::DocumentOrder::Shuffled);
    assert_eq!(config.data.windows, crate::WindowMode::Reshuffle);
    assert_eq!(config.dlm.truncate_prob, 0.01);
    assert_eq!(config.eval.val_windows, crate::ValWindows::Spread);
    assert_eq!(config.train.decay, crate::DecayScope::Matrices);
}

#[test]
fn decay_scopes() {
    use crate::DecayScope::{All, Matrices, Megatron};
    // (parameter name, matrices, megatron, all)
    let cases = [
        ("embedding.ws", false, true, true),
        ("head.ws", true, true, true),
        ("blocks.0.attention.q.ws", true, true, true),
        ("blocks.0.attention_norm.weight", false, false, true),
        ("final_norm.weight", false, false, true),
    ];
    for (name, matrices, megatron, all) in cases {
        assert_eq!(
            (
                Matrices.decays(name),
                Megatron.decays(name),
                All.decays(name)
            ),
            (matrices, megatron, all),
            "{name}"
        );
    }
}

#[test]
fn devices_and_nodes_keep_the_job_id_and_must_split_the_batch() {
    let plain = sweep("").expect("sweep");
    let two = Sweep::from_yaml(
        &BASE.replace("lr: 1e-3 }", "lr: 1e-3, devices: 2 }"),
        Path::new("t.yaml"),
    )
    .expect("sweep");
    assert_eq!(plain.jobs[0].id, two.jobs[0].id);
    assert_eq!(two.jobs[0].config.train.world_size(), 2);
    assert_eq!(two.jobs[0].config.train.rows_per_rank(), 1);
    // job.yaml still says how it was run; a single process writes nothing.
    assert!(two.jobs[0].config.to_yaml().contains("devices: 2"));
    assert!(!plain.jobs[0].config.to_yaml().contains("devices"));
    let cases = [
        (
            "lr: 1e-3, devices: 3 }",
            "cannot be split evenly over 3 processes",
        ),
        ("lr: 1e-3, devices: 2, nodes: 2 }", "multiple of 4"),
        ("lr: 1e-3, devices: 0 }", "at least 1"),
        (
            "lr: 1e-3, devices: 2, micro_batch_size: 2 }",
            "batch_size / (devices x nodes) = 1",
        ),
    ];
    for (train, expected) in cases {
        let error = Sweep::from_yaml(&BASE.replace("lr: 1e-3 }", train), Path::new("t.yaml"))
            .expect_err(train);
        assert!(error.to_string().contains(expected), "{train}: {error}");
    }
}

#[test]
fn data_resample_false_keeps_the_job_id_and_true_needs_a_shuffled_order() {
    let with_data = |extra: &str| {
        Sweep::from_yaml(
            &BASE.replace("val_tokens: 1k }", &format!("val_tokens: 1k{extra} }}")),
            Path::new("t.yaml"),
        )
    };
    let plain = sweep("").expect("sweep");
    let off = with_data(", resample: false").expect("sweep");
    let on = with_data(", resample: true").expect("sweep");
    // Not written when false: the canonical config, hence every old id, is unchanged.
    let written = serde_json::to_value(&off.jobs[0].config).expect("json");
    assert_eq!(written["data"].get("resample"), None);
    assert_eq!(plain.jobs[0].id, off.jobs[0].id);
    assert_ne!(plain.jobs[0].id, on.jobs[0].id);
    assert!(on.jobs[0].config.data.resample);
    let error = with_data(", resample: true, order: corpus")
        .map(|_| ())
        .expect_err("resample needs a shuffled order")
        .to_string();
    assert!(
        error.contains("data.resample") && error.contains("order: shuffled"),
        "{error}"
    );
}
