//! The ids objectives need (the tokenizer's, then the mask id) and the cross-entropy
//! over the tokenizer's ids only.

use tch::{Kind, Reduction, Tensor};

/// Token ids that objectives need: `vocab` tokenizer ids, the mask id right after.
#[derive(Clone, Copy, Debug)]
pub struct Vocab {
    pub size: i64,
}

impl Vocab {
    pub fn mask_id(&self) -> i64 {
        self.size
    }
}

/// Per-token cross-entropy over the tokenizer's ids.
///
/// # Shapes
/// logits (B, T, V_rows >= vocab), targets (B, T) -> (B, T).
pub fn token_cross_entropy(logits: &Tensor, targets: &Tensor, vocab: Vocab) -> Tensor {
    let (b, t, width) = logits.size3().unwrap_or_default();
    // Logits of exactly the vocabulary (`Transformer::logits`) are used as they are: even
    // a full-width narrow would cost a zero-filled copy of their gradient.
    let logits = if width > vocab.size {
        logits.narrow(-1, 0, vocab.size)
    } else {
        logits.shallow_clone()
    };
    let logits = logits.reshape([b * t, vocab.size]).to_kind(Kind::Float);
    logits
        .cross_entropy_loss::<Tensor>(&targets.reshape([b * t]), None, Reduction::None, -100, 0.0)
        .view([b, t])
}
