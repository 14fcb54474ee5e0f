//! LLM and AI platform keys beyond OpenAI and Anthropic. Google's Gemini
//! and Vertex AI keys are Google Cloud API keys (`AIza…`): `gcp_api_key`
//! finds them.

use super::keyed::{keyed_value, mixed_case, value};
use super::{Anchor, Detector, Group};

pub(super) const HUGGINGFACE_TOKEN: Detector = Detector {
    id: "huggingface_token",
    group: Group::Ai,
    description: describe!("Hugging Face user access token (hf_ + 34 letters) or organization API token (api_org_ + 34 letters)"),
    anchor: Anchor::Literals(&["hf_", "api_org_"]),
    pattern: r"(?-u)\b(?:hf|api_org)_[A-Za-z]{34}\b",
    validator: Some(huggingface_token),
    keep_last: 0,
};

/// Random letters are mixed case; `hf_` identifiers in code are not.
fn huggingface_token(m: &[u8]) -> bool {
    m.rsplit(|&b| b == b'_').next().is_some_and(mixed_case)
}

pub(super) const AWS_BEDROCK_API_KEY: Detector = Detector {
    id: "aws_bedrock_api_key",
    group: Group::Ai,
    description: describe!("Amazon Bedrock API key: long-term ABSK + base64 of \"BedrockAPIKey-…\", or a short-term bedrock-api-key- token"),
    // ABSK + base64("BedrockAPIKey-"); the short-term form is the base64
    // of a presigned bedrock.amazonaws.com URL.
    anchor: Anchor::Literals(&["ABSKQmVkcm9ja0FQSUtleS", "bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t"]),
    pattern: concat!(
        r"(?-u)\b(?:ABSKQmVkcm9ja0FQSUtleS[A-Za-z\d+/]{91,252}={0,2}",
        r"|bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t[A-Za-z\d+/]{0,4000}={0,2})",
    ),
    validator: Some(aws_bedrock_api_key),
    keep_last: 0,
};

/// A long-term key has at most 269 base64 characters after ABSK: one more
/// means it is part of a longer run.
fn aws_bedrock_api_key(m: &[u8]) -> bool {
    !m.starts_with(b"ABSK") || m.iter().filter(|&&b| b != b'=').count() <= 4 + 269
}

pub(super) const PERPLEXITY_API_KEY: Detector = Detector {
    id: "perplexity_api_key",
    group: Group::Ai,
    description: describe!("Perplexity API key: pplx- + 48 alphanumerics"),
    anchor: Anchor::Literals(&["pplx-"]),
    pattern: r"(?-u)\bpplx-[A-Za-z\d]{48}\b",
    validator: None,
    keep_last: 0,
};

pub(super) const COHERE_API_KEY: Detector = Detector {
    id: "cohere_api_key",
    group: Group::Ai,
    description: describe!("Cohere API key: 40 alphanumerics assigned to a cohere / CO_API_KEY name"),
    anchor: Anchor::Literals(&["cohere", "Cohere", "COHERE", "CO_API_KEY"]),
    pattern: concat!(r"(?-u)", keyed!("cohere|Cohere|COHERE|CO_API_KEY"), r"[A-Za-z\d]{40}\b"),
    validator: Some(cohere_api_key),
    keep_last: 0,
};

/// Random keys mix cases and digits.
fn cohere_api_key(m: &[u8]) -> bool {
    keyed_value(m) && mixed_case(value(m))
}
