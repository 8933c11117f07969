//! One-time passwords: TOTP (RFC 6238) and HOTP (RFC 4226) codes, and their import formats.

pub mod migration;
pub mod uri;

use keyfob_proto::methods::{OtpAlgorithm, OtpKind};
use serde::{Deserialize, Serialize};
use totp_rs::{Algorithm, Builder};

/// The non-secret parameters of an entry, as kept in the state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtpParams {
    /// TOTP or HOTP.
    pub kind: OtpKind,
    /// Hash.
    pub algorithm: OtpAlgorithm,
    /// 6, 7 or 8.
    pub digits: u8,
    /// TOTP period in seconds.
    pub period: u64,
    /// HOTP: the next counter to use.
    pub counter: u64,
    /// From an imported URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// From an imported URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

impl Default for OtpParams {
    fn default() -> Self {
        Self {
            kind: OtpKind::Totp,
            algorithm: OtpAlgorithm::SHA1,
            digits: 6,
            period: 30,
            counter: 0,
            issuer: None,
            account: None,
        }
    }
}

/// A new entry: its parameters and secret, parsed but not yet stored.
pub struct NewEntry {
    /// Suggested name (from a URI label), if any.
    pub suggested_name: Option<String>,
    /// Parameters.
    pub params: OtpParams,
    /// The raw secret.
    pub secret: zeroize::Zeroizing<Vec<u8>>,
}

/// Why OTP input was refused; messages never contain the secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OtpError {
    /// Not valid base32.
    #[error("the secret is not valid base32 (letters A-Z and digits 2-7)")]
    BadSecret,
    /// Empty or too short to be a real secret.
    #[error("the secret is too short: at least 80 bits (16 base32 characters) are needed")]
    ShortSecret,
    /// Digits out of range.
    #[error("digits must be 6, 7 or 8, not {0}")]
    Digits(u8),
    /// Period out of range.
    #[error("period must be between 1 and 86400 seconds, not {0}")]
    Period(u64),
    /// A URI problem.
    #[error("{0}")]
    Uri(String),
}

/// Decodes a base32 secret as authenticator apps print it: any case, spaces, optional padding.
pub fn decode_secret(text: &str) -> Result<zeroize::Zeroizing<Vec<u8>>, OtpError> {
    let cleaned: zeroize::Zeroizing<String> = zeroize::Zeroizing::new(
        text.chars()
            .filter(|c| !c.is_whitespace() && *c != '-' && *c != '=')
            .map(|c| c.to_ascii_uppercase())
            .collect(),
    );
    if cleaned.is_empty() {
        return Err(OtpError::ShortSecret);
    }
    let bytes = data_encoding::BASE32_NOPAD
        .decode(cleaned.as_bytes())
        .map_err(|_| OtpError::BadSecret)?;
    if bytes.len() < 10 {
        return Err(OtpError::ShortSecret);
    }
    Ok(zeroize::Zeroizing::new(bytes))
}

/// Encodes a secret as unpadded base32 (for otpauth URIs).
pub fn encode_secret(secret: &[u8]) -> zeroize::Zeroizing<String> {
    zeroize::Zeroizing::new(data_encoding::BASE32_NOPAD.encode(secret))
}

/// Checks digits and period.
pub fn validate(params: &OtpParams) -> Result<(), OtpError> {
    if !(6..=8).contains(&params.digits) {
        return Err(OtpError::Digits(params.digits));
    }
    if !(1..=86_400).contains(&params.period) {
        return Err(OtpError::Period(params.period));
    }
    Ok(())
}

fn algorithm(a: OtpAlgorithm) -> Algorithm {
    match a {
        OtpAlgorithm::SHA1 => Algorithm::SHA1,
        OtpAlgorithm::SHA256 => Algorithm::SHA256,
        OtpAlgorithm::SHA512 => Algorithm::SHA512,
    }
}

/// The HOTP value for `counter` (RFC 4226), as a zero-padded string.
pub fn hotp(secret: &[u8], alg: OtpAlgorithm, digits: u8, counter: u64) -> String {
    // TOTP is HOTP over floor(t / step); a step of 1 makes the "time" the counter itself.
    totp_at(secret, alg, digits, 1, counter)
}

/// The TOTP value at Unix time `t` (RFC 6238).
pub fn totp_at(secret: &[u8], alg: OtpAlgorithm, digits: u8, period: u64, t: u64) -> String {
    Builder::new()
        .with_algorithm(algorithm(alg))
        .with_digits(digits)
        .with_step_duration(period)
        .with_secret(secret.to_vec())
        // Short (80-bit) secrets are common in the wild; their length was checked on entry.
        .build_noncompliant()
        .generate(t)
        .to_string()
}

/// Seconds until the TOTP code at `t` changes.
pub fn seconds_left(period: u64, t: u64) -> u64 {
    period - (t % period)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 Appendix B seeds (ASCII) for each hash.
    const S1: &[u8] = b"12345678901234567890";
    const S256: &[u8] = b"12345678901234567890123456789012";
    const S512: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    #[test]
    fn rfc6238_appendix_b() {
        let rows: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        for (t, a, b, c) in rows {
            assert_eq!(totp_at(S1, OtpAlgorithm::SHA1, 8, 30, t), a);
            assert_eq!(totp_at(S256, OtpAlgorithm::SHA256, 8, 30, t), b);
            assert_eq!(totp_at(S512, OtpAlgorithm::SHA512, 8, 30, t), c);
        }
    }

    #[test]
    fn rfc4226_appendix_d() {
        let want = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (c, w) in want.iter().enumerate() {
            assert_eq!(hotp(S1, OtpAlgorithm::SHA1, 6, c as u64), *w);
        }
    }

    #[test]
    fn secrets_decode_like_authenticator_apps() {
        let a = decode_secret("JBSW Y3DP EHPK 3PXP").unwrap();
        let b = decode_secret("jbswy3dpehpk3pxp").unwrap();
        assert_eq!(*a, *b);
        assert_eq!(decode_secret("not base32!"), Err(OtpError::BadSecret));
        assert_eq!(decode_secret("JBSWY3DP"), Err(OtpError::ShortSecret));
    }
}
