//! Token counts written the way people say them: `50k`, `1.5M`, `96B`, or plain integers.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A number of tokens. Reads `123`, `50k`, `1.5M`, `2B` (powers of 1000), writes an integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TokenCount(pub u64);

impl TokenCount {
    /// Parse `"50k"`, `"1.5M"`, `"96B"`, `"1e6"` or `"1000"`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim().replace('_', "");
        let (number, scale) = match trimmed.chars().last() {
            Some('k' | 'K') => (&trimmed[..trimmed.len() - 1], 1e3),
            Some('M') => (&trimmed[..trimmed.len() - 1], 1e6),
            Some('B' | 'G') => (&trimmed[..trimmed.len() - 1], 1e9),
            Some('T') => (&trimmed[..trimmed.len() - 1], 1e12),
            _ => (trimmed.as_str(), 1.0),
        };
        let value: f64 = number.parse().map_err(|_| {
            format!("`{text}` is not a token count (examples: 50000, 50k, 1.5M, 96B)")
        })?;
        let tokens = value * scale;
        if !tokens.is_finite() || tokens < 0.0 {
            return Err(format!(
                "`{text}` is not a token count: it must be zero or more"
            ));
        }
        if (tokens - tokens.round()).abs() > 1e-6 {
            return Err(format!("`{text}` is not a whole number of tokens"));
        }
        Ok(Self(tokens.round() as u64))
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for TokenCount {
    /// Short human form: 50k, 1.5M, 96B.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self.0 as f64;
        let (scaled, suffix) = if value >= 1e9 {
            (value / 1e9, "B")
        } else if value >= 1e6 {
            (value / 1e6, "M")
        } else if value >= 1e3 {
            (value / 1e3, "k")
        } else {
            (value, "")
        };
        let text = format!("{scaled:.3}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        write!(formatter, "{text}{suffix}")
    }
}

impl Serialize for TokenCount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for TokenCount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = TokenCount;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a token count such as 50000, 50k, 1.5M or 96B")
            }
            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<TokenCount, E> {
                Ok(TokenCount(value))
            }
            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<TokenCount, E> {
                u64::try_from(value)
                    .map(TokenCount)
                    .map_err(|_| E::custom(format!("token count {value} is negative")))
            }
            fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<TokenCount, E> {
                TokenCount::parse(&value.to_string()).map_err(E::custom)
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<TokenCount, E> {
                TokenCount::parse(value).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_suffixes() {
        let cases = [
            ("1000", Some(1000)),
            ("50k", Some(50_000)),
            ("1.5M", Some(1_500_000)),
            ("96B", Some(96_000_000_000)),
            ("1e6", Some(1_000_000)),
            ("10_000", Some(10_000)),
            ("-5k", None),
            ("1.0001k", None),
            ("abc", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(
                TokenCount::parse(text).ok().map(TokenCount::get),
                expected,
                "{text}"
            );
        }
    }

    #[test]
    fn displays_short_forms() {
        let cases = [
            (999, "999"),
            (50_000, "50k"),
            (1_500_000, "1.5M"),
            (96_000_000_000, "96B"),
        ];
        for (value, text) in cases {
            assert_eq!(TokenCount(value).to_string(), text);
        }
    }
}
