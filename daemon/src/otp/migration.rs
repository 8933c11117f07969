//! Google Authenticator's export links: `otpauth-migration://offline?data=<base64 protobuf>`.

use super::{NewEntry, OtpError, OtpParams, validate};
use data_encoding::{BASE64, BASE64_NOPAD};
use keyfob_proto::methods::{OtpAlgorithm, OtpKind};
use prost::Message;
use zeroize::Zeroizing;

/// Standard base64, since exports in the wild come with and without `=` padding: the last
/// group may be left bare or padded (`xx=`, `xx==`, `xxx=`); `=` anywhere else is refused.
fn decode_lenient_b64(data: &[u8]) -> Option<Vec<u8>> {
    let body = data
        .strip_suffix(b"==")
        .or_else(|| data.strip_suffix(b"="))
        .unwrap_or(data);
    let padding_ok = matches!(
        (data.len() - body.len(), body.len() % 4),
        (0, _) | (1, 2 | 3) | (2, 2)
    );
    if !padding_ok {
        return None;
    }
    BASE64_NOPAD.decode(body).ok()
}

#[derive(Clone, PartialEq, Message)]
struct Payload {
    #[prost(message, repeated, tag = "1")]
    otp_parameters: Vec<Parameters>,
    #[prost(int32, tag = "2")]
    version: i32,
    #[prost(int32, tag = "3")]
    batch_size: i32,
    #[prost(int32, tag = "4")]
    batch_index: i32,
    #[prost(int32, tag = "5")]
    batch_id: i32,
}

#[derive(Clone, PartialEq, Message)]
struct Parameters {
    #[prost(bytes = "vec", tag = "1")]
    secret: Vec<u8>,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(string, tag = "3")]
    issuer: String,
    #[prost(int32, tag = "4")]
    algorithm: i32,
    #[prost(int32, tag = "5")]
    digits: i32,
    #[prost(int32, tag = "6")]
    otp_type: i32,
    #[prost(int64, tag = "7")]
    counter: i64,
}

impl Drop for Parameters {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret);
    }
}

/// Whether a line is an export link.
pub fn is_migration(line: &str) -> bool {
    line.trim_start().starts_with("otpauth-migration://")
}

/// Decodes every entry of an export link; one bad entry fails only itself.
pub fn parse(uri: &str) -> Result<Vec<Result<NewEntry, OtpError>>, OtpError> {
    let bad = |why: &str| OtpError::Uri(format!("not a valid otpauth-migration link: {why}"));
    let url = url::Url::parse(uri.trim()).map_err(|_| bad("cannot parse it"))?;
    if url.scheme() != "otpauth-migration" || url.host_str() != Some("offline") {
        return Err(bad("it must start with otpauth-migration://offline"));
    }
    let data = url
        .query_pairs()
        .find(|(k, _)| k == "data")
        .map(|(_, v)| Zeroizing::new(v.replace(' ', "+")))
        .ok_or_else(|| bad("it has no data parameter"))?;
    let raw = Zeroizing::new(
        decode_lenient_b64(data.as_bytes()).ok_or_else(|| bad("data is not base64"))?,
    );
    let payload =
        Payload::decode(raw.as_slice()).map_err(|_| bad("data is not an export payload"))?;
    Ok(payload.otp_parameters.iter().map(entry).collect())
}

fn entry(p: &Parameters) -> Result<NewEntry, OtpError> {
    let kind = match p.otp_type {
        1 => OtpKind::Hotp,
        0 | 2 => OtpKind::Totp,
        n => return Err(OtpError::Uri(format!("unknown OTP type {n} in the export"))),
    };
    let algorithm = match p.algorithm {
        0 | 1 => OtpAlgorithm::SHA1,
        2 => OtpAlgorithm::SHA256,
        3 => OtpAlgorithm::SHA512,
        _ => {
            return Err(OtpError::Uri(
                "the export uses MD5, which Keyfob does not support".into(),
            ));
        }
    };
    let digits = match p.digits {
        0 | 1 => 6,
        2 => 8,
        n => {
            return Err(OtpError::Uri(format!(
                "unknown digit count {n} in the export"
            )));
        }
    };
    if p.secret.len() < 10 {
        return Err(OtpError::ShortSecret);
    }
    let (label_issuer, account) = match p.name.split_once(':') {
        Some((i, a)) => (Some(i.trim().to_owned()), a.trim().to_owned()),
        None => (None, p.name.trim().to_owned()),
    };
    let issuer = Some(p.issuer.clone())
        .filter(|s| !s.is_empty())
        .or(label_issuer);
    let params = OtpParams {
        kind,
        algorithm,
        digits,
        period: 30,
        counter: u64::try_from(p.counter).unwrap_or(0),
        issuer,
        account: Some(account).filter(|s| !s.is_empty()),
    };
    validate(&params)?;
    Ok(NewEntry {
        suggested_name: super::uri::suggest_name(
            params.issuer.as_deref(),
            params.account.as_deref(),
        ),
        params,
        secret: Zeroizing::new(p.secret.clone()),
    })
}

/// Builds an export link (tests use it to make realistic input).
pub fn encode(entries: &[(&str, &str, &[u8], OtpKind, u64)]) -> String {
    let payload = Payload {
        otp_parameters: entries
            .iter()
            .map(|(name, issuer, secret, kind, counter)| Parameters {
                secret: secret.to_vec(),
                name: (*name).to_owned(),
                issuer: (*issuer).to_owned(),
                algorithm: 1,
                digits: 1,
                otp_type: if *kind == OtpKind::Hotp { 1 } else { 2 },
                counter: i64::try_from(*counter).unwrap_or(0),
            })
            .collect(),
        version: 1,
        batch_size: 1,
        batch_index: 0,
        batch_id: 1,
    };
    let data = BASE64.encode(&payload.encode_to_vec());
    let data: String = url::form_urlencoded::byte_serialize(data.as_bytes()).collect();
    format!("otpauth-migration://offline?data={data}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_it_encodes() {
        let link = encode(&[
            (
                "alice@example.com",
                "GitHub",
                b"12345678901234567890",
                OtpKind::Totp,
                0,
            ),
            ("Corp:bob", "", b"abcdefghijabcdefghij", OtpKind::Hotp, 5),
        ]);
        let got = parse(&link).unwrap();
        let a = got[0].as_ref().unwrap();
        assert_eq!(
            a.suggested_name.as_deref(),
            Some("GitHub:alice@example.com")
        );
        assert_eq!(a.secret.as_slice(), b"12345678901234567890");
        let b = got[1].as_ref().unwrap();
        assert_eq!(b.params.kind, OtpKind::Hotp);
        assert_eq!(b.params.counter, 5);
        assert_eq!(b.params.issuer.as_deref(), Some("Corp"));
    }

    #[test]
    fn garbage_is_a_clear_error() {
        assert!(parse("otpauth-migration://offline?data=%%%").is_err());
        assert!(parse("otpauth-migration://offline?data=AAAA").is_err());
        assert!(
            parse("otpauth-migration://offline?data=")
                .unwrap()
                .is_empty()
        );
        assert!(parse("otpauth-migration://online?data=").is_err());
    }

    #[test]
    fn padding_is_optional_but_must_be_right() {
        for (text, want) in [
            ("", Some(&b""[..])),
            ("QQ", Some(b"A")),
            ("QQ=", Some(b"A")),
            ("QQ==", Some(b"A")),
            ("QUI", Some(b"AB")),
            ("QUI=", Some(b"AB")),
            ("QUJD", Some(b"ABC")),
            ("QUJDRA", Some(b"ABCD")),
            ("QUJDRA==", Some(b"ABCD")),
            ("Q", None),
            ("Q=", None),
            ("QUI==", None),
            ("QUJD=", None),
            ("QQ===", None),
            ("QQ==QQ==", None),
            ("QR==", None),
            ("QUJD-_", None),
        ] {
            assert_eq!(
                decode_lenient_b64(text.as_bytes()).as_deref(),
                want,
                "{text:?}"
            );
        }
        let link = encode(&[("ab", "", b"12345678901234567890", OtpKind::Totp, 0)]);
        let bare = link.trim_end_matches("%3D");
        assert_ne!(bare, link, "the test needs a padded link");
        assert_eq!(parse(bare).unwrap().len(), 1);
    }
}
