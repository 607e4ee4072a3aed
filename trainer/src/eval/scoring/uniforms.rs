//! The random numbers of scoring: deterministic uniforms per question (splitmix64),
//! independent of LibTorch's generator, batch order and thread count.

/// Deterministic uniforms in [0, 1) from (seed, stream) (splitmix64), so masks do not
/// depend on LibTorch's generator, batch order or thread count.
#[derive(Debug, Clone)]
pub struct Uniforms(u64);

impl Uniforms {
    pub fn new(seed: u64, stream: u64) -> Self {
        Self(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03))
    }

    pub fn next_uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The random numbers of one question: per draw a time offset u_k and per
/// continuation position j a uniform r_{k,j}; shared by all of its candidates.
pub fn question_draws(
    seed: u64,
    question: usize,
    draws: usize,
    positions: usize,
) -> Vec<(f64, Vec<f64>)> {
    let mut uniforms = Uniforms::new(seed, question as u64);
    let offset = uniforms.next_uniform();
    (0..draws)
        .map(|k| {
            let time = (offset + k as f64 / draws as f64) % 1.0;
            (
                time,
                (0..positions).map(|_| uniforms.next_uniform()).collect(),
            )
        })
        .collect()
}
