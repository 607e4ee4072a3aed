//! Tokenizers: GPT-2 (built in), raw bytes, a byte-level BPE trained on the corpus and
//! cached, or any Hugging Face `tokenizer.json`. Every one has an end-of-document id.

use crate::atomic::write_atomic;
use crate::error::{CorpusError, io_error};
use crate::read::Corpus;
use jobspec::{DataConfig, TokenizerSpec};
use rayon::prelude::*;
use std::fs;
use std::path::{Path, PathBuf};
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{
    AddedToken, DecoderWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper,
};

/// The end-of-document token of GPT-2 and of the BPEs trained here.
pub const END_OF_TEXT: &str = "<|endoftext|>";
/// Names a `tokenizer.json` may give its end-of-document token, in order of preference.
const EOS_NAMES: [&str; 3] = [END_OF_TEXT, "</s>", "<eos>"];
/// GPT-2's `<|endoftext|>` id (r50k_base).
const GPT2_EOS: u32 = 50_256;
/// Raw bytes use ids 0..=255; the end-of-document id follows them.
const BYTES_EOS: u32 = 256;

enum Kind {
    Gpt2(Box<tiktoken_rs::CoreBPE>),
    Bytes,
    /// A Hugging Face tokenizer; `eos_is_extra` when its file has no end-of-document
    /// token and `eos_id` is one id past its vocabulary.
    HuggingFace {
        tokenizer: Box<tokenizers::Tokenizer>,
        eos_is_extra: bool,
    },
}

/// Reads a corpus' documents into memory, on demand.
pub type Documents<'a> = &'a dyn Fn() -> Result<Vec<String>, CorpusError>;

pub struct Tokenizer {
    kind: Kind,
    id: String,
    vocab_size: usize,
    eos_id: u32,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Tokenizer")
            .field("id", &self.id)
            .field("vocab_size", &self.vocab_size)
            .field("eos_id", &self.eos_id)
            .finish()
    }
}

impl Tokenizer {
    /// Load (or, for `Bpe`, train on `corpus` and cache under `cache_root/tokenizers`)
    /// the tokenizer `spec` names; `File` paths resolve against `base_dir`.
    pub fn load(
        spec: &TokenizerSpec,
        corpus: &Corpus,
        cache_root: &Path,
        base_dir: &Path,
    ) -> Result<Self, CorpusError> {
        Self::load_spec(
            spec,
            &corpus.hash,
            &|| Ok(corpus.documents.clone()),
            cache_root,
            base_dir,
        )
    }

    /// [`Tokenizer::load`] with the corpus' documents read only if a BPE must be trained.
    fn load_spec(
        spec: &TokenizerSpec,
        corpus_hash: &str,
        documents: Documents<'_>,
        cache_root: &Path,
        base_dir: &Path,
    ) -> Result<Self, CorpusError> {
        let id = tokenizer_id(spec, corpus_hash, base_dir)?;
        match spec {
            TokenizerSpec::Gpt2 => {
                let bpe = tiktoken_rs::r50k_base().map_err(|error| CorpusError::Tokenizer {
                    tokenizer: id.clone(),
                    message: error.to_string(),
                })?;
                Ok(Self {
                    kind: Kind::Gpt2(Box::new(bpe)),
                    id,
                    vocab_size: GPT2_EOS as usize + 1,
                    eos_id: GPT2_EOS,
                })
            }
            TokenizerSpec::Bytes => Ok(Self {
                kind: Kind::Bytes,
                id,
                vocab_size: BYTES_EOS as usize + 1,
                eos_id: BYTES_EOS,
            }),
            TokenizerSpec::Bpe(size) => {
                let path = cache_root
                    .join("tokenizers")
                    .join(&id)
                    .join("tokenizer.json");
                if !path.exists() {
                    train_bpe(*size, &documents()?, &path, &id)?;
                }
                Self::from_file(&path, id)
            }
            TokenizerSpec::File(file) => Self::from_file(&base_dir.join(file), id),
        }
    }

    fn from_file(path: &Path, id: String) -> Result<Self, CorpusError> {
        let tokenizer =
            tokenizers::Tokenizer::from_file(path).map_err(|error| CorpusError::Tokenizer {
                tokenizer: path.display().to_string(),
                message: error.to_string(),
            })?;
        // Ids may have gaps, so the vocabulary spans up to the largest id.
        let span = tokenizer
            .get_vocab(true)
            .into_values()
            .max()
            .map_or(0, |max| max as usize + 1);
        let named_eos = EOS_NAMES
            .iter()
            .find_map(|name| tokenizer.token_to_id(name));
        let (eos_id, vocab_size, eos_is_extra) = match named_eos {
            Some(eos) => (eos, span, false),
            None => (span as u32, span + 1, true),
        };
        let kind = Kind::HuggingFace {
            tokenizer: Box::new(tokenizer),
            eos_is_extra,
        };
        Ok(Self {
            kind,
            id,
            vocab_size,
            eos_id,
        })
    }

    /// Ids of `text`, without any end-of-document id. GPT-2 reads `<|endoftext|>` in
    /// the text as plain characters; a Hugging Face tokenizer maps its special tokens.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        match &self.kind {
            Kind::Gpt2(bpe) => bpe.encode_ordinary(text),
            Kind::Bytes => text.bytes().map(u32::from).collect(),
            Kind::HuggingFace { tokenizer, .. } => match tokenizer.encode_fast(text, false) {
                Ok(encoding) => encoding.get_ids().to_vec(),
                // Encoding plain text with a loaded tokenizer does not fail in practice
                // (no truncation or padding is configured); an empty row is visible.
                Err(_) => Vec::new(),
            },
        }
    }

    /// Text of `ids`; the end-of-document id reads `<|endoftext|>` and bytes that do not
    /// form UTF-8 (a cut in the middle of a character) read as U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        match &self.kind {
            Kind::Gpt2(bpe) => {
                let known: Vec<u32> = ids.iter().copied().filter(|&id| id <= GPT2_EOS).collect();
                String::from_utf8_lossy(&bpe.decode_bytes(&known).unwrap_or_default()).into_owned()
            }
            Kind::Bytes => {
                let mut bytes = Vec::with_capacity(ids.len());
                for &id in ids {
                    match u8::try_from(id) {
                        Ok(byte) => bytes.push(byte),
                        Err(_) => bytes.extend_from_slice(END_OF_TEXT.as_bytes()),
                    }
                }
                String::from_utf8_lossy(&bytes).into_owned()
            }
            Kind::HuggingFace {
                tokenizer,
                eos_is_extra,
            } => {
                let decode = |part: &[u32]| tokenizer.decode(part, false).unwrap_or_default();
                if !eos_is_extra {
                    return decode(ids);
                }
                let parts: Vec<String> = ids.split(|&id| id == self.eos_id).map(decode).collect();
                parts.join(END_OF_TEXT)
            }
        }
    }

    /// Number of ids, the end-of-document id included.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    pub fn eos_id(&self) -> u32 {
        self.eos_id
    }

    /// Stable name: `gpt2`, `bytes`, `bpe<size>-<corpus hash>`, `file-<content hash>`.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The tokenizer's stable id, known without loading or training it.
pub fn tokenizer_id(
    spec: &TokenizerSpec,
    corpus_hash: &str,
    base_dir: &Path,
) -> Result<String, CorpusError> {
    Ok(match spec {
        TokenizerSpec::Gpt2 => "gpt2".into(),
        TokenizerSpec::Bytes => "bytes".into(),
        TokenizerSpec::Bpe(size) => format!("bpe{size}-{}", &corpus_hash[..16]),
        TokenizerSpec::File(file) => {
            let path: PathBuf = base_dir.join(file);
            let bytes = fs::read(&path).map_err(io_error(&path))?;
            format!("file-{}", &blake3::hash(&bytes).to_hex()[..16])
        }
    })
}

/// The tokenizer id of a job's `data` section: as [`tokenizer_id`], except that a
/// trained BPE also depends on the held-out split (`val_tokens`, `split_seed`), since
/// it is trained on the training documents only.
pub fn tokenizer_id_for(
    config: &DataConfig,
    corpus_hash: &str,
    base_dir: &Path,
) -> Result<String, CorpusError> {
    Ok(match config.tokenizer {
        TokenizerSpec::Bpe(size) => {
            let key = format!(
                "{corpus_hash}/val_tokens={}/split_seed={}",
                config.val_tokens.get(),
                config.split_seed
            );
            format!("bpe{size}-{}", &blake3::hash(key.as_bytes()).to_hex()[..16])
        }
        _ => tokenizer_id(&config.tokenizer, corpus_hash, base_dir)?,
    })
}

impl Tokenizer {
    /// The tokenizer of a job's `data` section. A trained BPE is trained on the
    /// training documents only, so that no held-out text shapes the vocabulary, and
    /// cached under `cache_root/tokenizers/<id>`.
    ///
    /// The held-out documents are counted in tokens of the tokenizer being trained, so
    /// the training set is found by a fixed point: start by excluding the documents
    /// the split would hold out if every byte were a token (a subset of the real
    /// held-out set, since a byte-level BPE token is at least one byte), train, split
    /// with the new tokenizer's lengths, and if that split holds out a document the
    /// BPE saw, exclude it too and train again (one or two rounds in practice).
    ///
    /// `documents` reads the corpus into memory: called only to train a BPE that is not
    /// cached yet (trained BPEs are for corpora that fit in memory; a large corpus
    /// comes with its tokenizer, `gpt2` or a `tokenizer.json`).
    pub fn load_for(
        config: &DataConfig,
        corpus_hash: &str,
        documents: Documents<'_>,
        cache_root: &Path,
        base_dir: &Path,
    ) -> Result<Self, CorpusError> {
        let TokenizerSpec::Bpe(size) = config.tokenizer else {
            return Self::load_spec(
                &config.tokenizer,
                corpus_hash,
                documents,
                cache_root,
                base_dir,
            );
        };
        let id = tokenizer_id_for(config, corpus_hash, base_dir)?;
        let path = cache_root
            .join("tokenizers")
            .join(&id)
            .join("tokenizer.json");
        if path.exists() {
            return Self::from_file(&path, id);
        }
        let held_out = |lengths: &[usize]| -> Result<Vec<bool>, CorpusError> {
            let split = crate::split::split(
                lengths,
                config.val_tokens.get(),
                config.split_seed,
                crate::split::TrainOrder::Corpus,
            )?;
            let mut held = vec![false; lengths.len()];
            for document in split.val {
                held[document] = true;
            }
            Ok(held)
        };
        let corpus = documents()?;
        let bytes: Vec<usize> = corpus.iter().map(|text| text.len() + 1).collect();
        let mut excluded = held_out(&bytes)?;
        let candidate = path.with_file_name("candidate.json");
        for _round in 0..4 {
            let training: Vec<String> = corpus
                .iter()
                .zip(&excluded)
                .filter(|(_, held)| !**held)
                .map(|(text, _)| text.clone())
                .collect();
            train_bpe(size, &training, &candidate, &id)?;
            let trained = Self::from_file(&candidate, id.clone())?;
            let lengths: Vec<usize> = corpus
                .par_iter()
                .map(|text| trained.encode(text).len() + 1)
                .collect();
            let held = held_out(&lengths)?;
            let seen_held_out = held.iter().zip(&excluded).any(|(&held, &out)| held && !out);
            if !seen_held_out {
                fs::rename(&candidate, &path).map_err(io_error(&path))?;
                return Self::from_file(&path, id);
            }
            for (out, held) in excluded.iter_mut().zip(held) {
                *out |= held;
            }
        }
        Err(CorpusError::Tokenizer {
            tokenizer: id,
            message: "the held-out split kept moving while training the BPE on the training documents (4 rounds); try another data.split_seed".into(),
        })
    }
}

/// Train a GPT-2-style byte-level BPE of `size` ids in total (256 byte symbols,
/// `<|endoftext|>`, and merges) and save it atomically at `path`.
fn train_bpe(size: usize, documents: &[String], path: &Path, id: &str) -> Result<(), CorpusError> {
    let failed = |message: String| CorpusError::Tokenizer {
        tokenizer: id.into(),
        message,
    };
    let alphabet = ByteLevel::alphabet();
    if size <= alphabet.len() + 1 {
        return Err(failed(format!(
            "a byte-level BPE needs more than {} ids (256 bytes + end of text)",
            alphabet.len() + 1
        )));
    }
    let mut trainer = BpeTrainerBuilder::new()
        .show_progress(false)
        .vocab_size(size)
        .min_frequency(0)
        .initial_alphabet(alphabet.into_iter().collect())
        .special_tokens(vec![AddedToken::from(END_OF_TEXT, true)])
        .build();
    // No prefix space, as GPT-2: decode(encode(text)) == text.
    let byte_level = ByteLevel::new(false, true, true);
    let mut tokenizer = tokenizers::TokenizerBuilder::<
        BPE,
        NormalizerWrapper,
        PreTokenizerWrapper,
        PostProcessorWrapper,
        DecoderWrapper,
    >::new()
    .with_model(BPE::default())
    .with_pre_tokenizer(Some(byte_level.into()))
    .with_decoder(Some(byte_level.into()))
    .build()
    .map_err(|error| failed(error.to_string()))?;
    tokenizer
        .train(&mut trainer, documents.iter())
        .map_err(|error| failed(error.to_string()))?;
    let json = tokenizer
        .to_string(false)
        .map_err(|error| failed(error.to_string()))?;
    write_atomic(path, json.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Call me Ishmael. Some years ago—never mind how long precisely—having \
                          little or no money in my purse, I thought I would sail about. Über café 日本語 🐋";

    fn corpus() -> Corpus {
        let documents = (0..40)
            .map(|i| format!("{SAMPLE} Document number {i}, with some words again and again."))
            .collect();
        Corpus {
            source: PathBuf::from("memory"),
            documents,
            hash: "0123456789abcdef0123".into(),
        }
    }

    fn round_trip(tokenizer: &Tokenizer) {
        let ids = tokenizer.encode(SAMPLE);
        assert!(!ids.is_empty());
        assert!(
            ids.iter()
                .all(|&id| (id as usize) < tokenizer.vocab_size() && id != tokenizer.eos_id())
        );
        assert_eq!(tokenizer.decode(&ids), SAMPLE, "{}", tokenizer.id());
        let mut with_eos = ids.clone();
        with_eos.push(tokenizer.eos_id());
        assert_eq!(
            tokenizer.decode(&with_eos),
            format!("{SAMPLE}{END_OF_TEXT}"),
            "{}",
            tokenizer.id()
        );
    }

    #[test]
    fn bytes_round_trip() {
        let cache = tempfile::tempdir().expect("tempdir");
        let tokenizer =
            Tokenizer::load(&TokenizerSpec::Bytes, &corpus(), cache.path(), cache.path())
                .expect("bytes");
        assert_eq!(
            (tokenizer.vocab_size(), tokenizer.eos_id(), tokenizer.id()),
            (257, 256, "bytes")
        );
        assert_eq!(tokenizer.encode("Hé"), [72, 195, 169]);
        round_trip(&tokenizer);
    }

    #[test]
    fn gpt2_round_trip() {
        let cache = tempfile::tempdir().expect("tempdir");
        let tokenizer =
            Tokenizer::load(&TokenizerSpec::Gpt2, &corpus(), cache.path(), cache.path())
                .expect("gpt2");
        assert_eq!(
            (tokenizer.vocab_size(), tokenizer.eos_id()),
            (50_257, 50_256)
        );
        // "Hello world" is [15496, 995] in GPT-2 (tiktoken r50k_base, HF `gpt2`).
        assert_eq!(tokenizer.encode("Hello world"), [15496, 995]);
        round_trip(&tokenizer);
    }

    #[test]
    fn trained_bpe_round_trips_and_reloads_as_a_file() {
        let cache = tempfile::tempdir().expect("tempdir");
        let corpus = corpus();
        let bpe = Tokenizer::load(
            &TokenizerSpec::Bpe(320),
            &corpus,
            cache.path(),
            cache.path(),
        )
        .expect("bpe");
        assert_eq!(bpe.id(), "bpe320-0123456789abcdef");
        assert_eq!(bpe.vocab_size(), 320);
        assert_eq!(bpe.eos_id(), 0, "the special token comes first");
        round_trip(&bpe);
        // Merges make it shorter than bytes.
        assert!(bpe.encode(SAMPLE).len() < SAMPLE.len() * 3 / 4);

        let saved = cache
            .path()
            .join("tokenizers")
            .join(bpe.id())
            .join("tokenizer.json");
        let file = TokenizerSpec::File(saved.display().to_string());
        let loaded = Tokenizer::load(&file, &corpus, cache.path(), Path::new("/")).expect("file");
        assert!(loaded.id().starts_with("file-"));
        assert_eq!((loaded.vocab_size(), loaded.eos_id()), (320, 0));
        assert_eq!(loaded.encode(SAMPLE), bpe.encode(SAMPLE));
        round_trip(&loaded);
    }

    #[test]
    fn file_without_eos_gets_an_extra_id() {
        let cache = tempfile::tempdir().expect("tempdir");
        let corpus = corpus();
        let bpe = Tokenizer::load(
            &TokenizerSpec::Bpe(300),
            &corpus,
            cache.path(),
            cache.path(),
        )
        .expect("bpe");
        let saved = cache
            .path()
            .join("tokenizers")
            .join(bpe.id())
            .join("tokenizer.json");
        // Drop the added token: the file then has no end-of-document token.
        let mut json: serde_json::Value =
            serde_json::from_slice(&fs::read(&saved).expect("read")).expect("json");
        json["added_tokens"] = serde_json::json!([]);
        let vocab = json["model"]["vocab"].as_object_mut().expect("vocab");
        vocab.remove(END_OF_TEXT);
        let plain = cache.path().join("plain.json");
        fs::write(&plain, json.to_string()).expect("write");
        let loaded = Tokenizer::load(
            &TokenizerSpec::File("plain.json".into()),
            &corpus,
            cache.path(),
            cache.path(),
        )
        .expect("file");
        assert_eq!((loaded.vocab_size(), loaded.eos_id()), (301, 300));
        round_trip(&loaded);
    }

    #[test]
    fn too_small_bpe_is_an_error() {
        let cache = tempfile::tempdir().expect("tempdir");
        let error = Tokenizer::load(
            &TokenizerSpec::Bpe(200),
            &corpus(),
            cache.path(),
            cache.path(),
        )
        .expect_err("an error");
        assert!(error.to_string().contains("more than 257 ids"), "{error}");
    }
}
