use jobspec::{DataConfig, TokenCount, TokenizerSpec};
use std::path::Path;
use std::time::Instant;
fn main() {
    let cache = corpus::cache_root();
    for name in ["sotu", "moby", "wiki", "demo"] {
        let config = DataConfig {
            corpus: name.into(), text_field: "text".into(), tokenizer: TokenizerSpec::Gpt2, seq_len: 256,
            unique_tokens: TokenCount(1), val_tokens: TokenCount(100_000), split_seed: 0,
        };
        let c = corpus::read_corpus(&config, &cache, Path::new(".")).expect("read");
        let bytes: usize = c.documents.iter().map(String::len).sum();
        for pass in 0..2 {
            let t = Instant::now();
            let d = corpus::prepare(&config, &cache, Path::new(".")).expect("prepare");
            println!("{name}: docs {} bytes {bytes} gpt2 tokens {} (train {}, val {} in {} docs) hit {} {:.2}s pass {pass}",
                c.documents.len(), d.train.len() + d.val_stream().len(), d.train.len(), d.val_stream().len(), d.val_documents.len(), d.cache_hit, t.elapsed().as_secs_f64());
        }
    }
}
