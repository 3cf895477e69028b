//! Token counts with the target model's real tokenizer where we have it.
//!
//! OpenAI models: their own BPE encoding from `tiktoken-rs` (o200k_base for
//! gpt-4o, o1, o3, o4, gpt-4.1; cl100k_base for gpt-4 and gpt-3.5), exact.
//! Every other family (Claude, Llama, Mistral, Gemini, mocks) has no public
//! tokenizer in the crate: the count is cl100k_base's, stated as an
//! approximation (their vocabularies are of the same size class; English
//! prose lands within about 10-20 %).

use serde::Serialize;
use tiktoken_rs::CoreBPE;
use tiktoken_rs::tokenizer::{Tokenizer, get_tokenizer};

/// A prompt's token count and how it was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenCount {
    /// Tokens.
    pub count: usize,
    /// The encoding used (`o200k_base`, `cl100k_base`).
    pub encoding: &'static str,
    /// `exact` (the model's own tokenizer) or `approximate`.
    pub method: &'static str,
}

/// The encoding for `model` (`None`: no model given, o200k_base, the
/// current OpenAI default) and whether it is the model's own.
pub fn encoding_for(model: Option<&str>) -> (Tokenizer, bool) {
    let Some(model) = model else {
        return (Tokenizer::O200kBase, false);
    };
    // `openai:gpt-4o` and `openai:chat:gpt-4o` name the model last.
    let name = model.rsplit(':').next().unwrap_or(model);
    match get_tokenizer(name) {
        Some(t @ (Tokenizer::O200kBase | Tokenizer::Cl100kBase)) => (t, true),
        _ => (Tokenizer::Cl100kBase, false),
    }
}

fn bpe(t: Tokenizer) -> &'static CoreBPE {
    match t {
        Tokenizer::O200kBase => tiktoken_rs::o200k_base_singleton(),
        _ => tiktoken_rs::cl100k_base_singleton(),
    }
}

fn name(t: Tokenizer) -> &'static str {
    match t {
        Tokenizer::O200kBase => "o200k_base",
        _ => "cl100k_base",
    }
}

/// Counts `text`'s tokens for `model`.
pub fn count(text: &str, model: Option<&str>) -> TokenCount {
    let (t, own) = encoding_for(model);
    TokenCount {
        count: bpe(t).encode_ordinary(text).len(),
        encoding: name(t),
        method: if own { "exact" } else { "approximate" },
    }
}

/// Loads both encodings (a few hundred ms the first time), so the first
/// request does not pay for it.
pub fn warm_up() {
    let _ = bpe(Tokenizer::O200kBase).encode_ordinary("warm up");
    let _ = bpe(Tokenizer::Cl100kBase).encode_ordinary("warm up");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_models_use_their_own_encoding_others_are_approximate() {
        assert_eq!(encoding_for(Some("gpt-4o")), (Tokenizer::O200kBase, true));
        assert_eq!(
            encoding_for(Some("openai:chat:gpt-4o-mini")),
            (Tokenizer::O200kBase, true)
        );
        assert_eq!(encoding_for(Some("gpt-4")), (Tokenizer::Cl100kBase, true));
        assert_eq!(
            encoding_for(Some("claude-3-haiku")),
            (Tokenizer::Cl100kBase, false)
        );
        assert_eq!(encoding_for(None), (Tokenizer::O200kBase, false));
    }

    #[test]
    fn the_count_is_the_tokenizers() {
        let text = "Summarize the following article in three bullet points: {{article}}";
        let c = count(text, Some("gpt-4o"));
        assert_eq!(
            c.count,
            tiktoken_rs::o200k_base()
                .unwrap()
                .encode_ordinary(text)
                .len()
        );
        assert_eq!((c.encoding, c.method), ("o200k_base", "exact"));
        let c = count(text, Some("gpt-3.5-turbo"));
        assert_eq!(
            c.count,
            tiktoken_rs::cl100k_base()
                .unwrap()
                .encode_ordinary(text)
                .len()
        );
        // "hello world" is two tokens in both encodings.
        assert_eq!(count("hello world", Some("gpt-4o")).count, 2);
    }
}
