//! `otpauth://` URIs (the Key Uri Format authenticator apps and QR codes use).

use super::{NewEntry, OtpError, OtpParams, decode_secret, encode_secret, validate};
use keyfob_proto::methods::{OtpAlgorithm, OtpKind};
use url::Url;
use zeroize::Zeroizing;

/// Parses `otpauth://totp/...` or `otpauth://hotp/...`.
pub fn parse(uri: &str) -> Result<NewEntry, OtpError> {
    let bad = |why: &str| OtpError::Uri(format!("not a valid otpauth URI: {why}"));
    let url = Url::parse(uri.trim()).map_err(|_| bad("cannot parse it"))?;
    if url.scheme() != "otpauth" {
        return Err(bad("it must start with otpauth://"));
    }
    let kind = match url.host_str() {
        Some(h) if h.eq_ignore_ascii_case("totp") => OtpKind::Totp,
        Some(h) if h.eq_ignore_ascii_case("hotp") => OtpKind::Hotp,
        _ => return Err(bad("the type must be totp or hotp")),
    };
    let label = percent_decode(url.path().trim_start_matches('/'));
    let (label_issuer, account) = match label.split_once(':') {
        Some((i, a)) => (Some(i.trim().to_owned()), a.trim().to_owned()),
        None => (None, label.trim().to_owned()),
    };
    let mut params = OtpParams {
        kind,
        ..OtpParams::default()
    };
    let mut secret = None;
    let mut issuer = None;
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "secret" => secret = Some(decode_secret(&v)?),
            "issuer" => issuer = Some(v.into_owned()),
            "algorithm" => {
                params.algorithm = match v.to_ascii_uppercase().as_str() {
                    "SHA1" => OtpAlgorithm::SHA1,
                    "SHA256" => OtpAlgorithm::SHA256,
                    "SHA512" => OtpAlgorithm::SHA512,
                    _ => return Err(bad("algorithm must be SHA1, SHA256 or SHA512")),
                }
            }
            "digits" => params.digits = v.parse().map_err(|_| bad("digits is not a number"))?,
            "period" => params.period = v.parse().map_err(|_| bad("period is not a number"))?,
            "counter" => params.counter = v.parse().map_err(|_| bad("counter is not a number"))?,
            _ => {}
        }
    }
    if kind == OtpKind::Hotp && !url.query_pairs().any(|(k, _)| k == "counter") {
        return Err(bad("an hotp URI needs a counter"));
    }
    let secret = secret.ok_or_else(|| bad("it has no secret"))?;
    validate(&params)?;
    params.issuer = issuer.or(label_issuer).filter(|s| !s.is_empty());
    params.account = Some(account).filter(|s| !s.is_empty());
    let suggested_name = suggest_name(params.issuer.as_deref(), params.account.as_deref());
    Ok(NewEntry {
        suggested_name,
        params,
        secret,
    })
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// A valid entry name from an issuer and account (`GitHub:alice@example.com`).
pub fn suggest_name(issuer: Option<&str>, account: Option<&str>) -> Option<String> {
    let raw = match (issuer, account) {
        (Some(i), Some(a)) => format!("{i}:{a}"),
        (Some(i), None) => i.to_owned(),
        (None, Some(a)) => a.to_owned(),
        (None, None) => return None,
    };
    let name: String = raw
        .chars()
        .map(|c| {
            if crate::agent::names::allowed(c) {
                c
            } else {
                '-'
            }
        })
        .take(crate::agent::names::MAX_LEN)
        .collect();
    Some(name).filter(|n| !n.is_empty())
}

/// Formats an entry as an otpauth URI (contains the secret).
pub fn format(name: &str, params: &OtpParams, secret: &[u8]) -> Zeroizing<String> {
    let kind = match params.kind {
        OtpKind::Totp => "totp",
        OtpKind::Hotp => "hotp",
    };
    let label = match (&params.issuer, &params.account) {
        (Some(i), Some(a)) => format!("{i}:{a}"),
        (None, Some(a)) => a.clone(),
        _ => name.to_owned(),
    };
    let mut url = match Url::parse(&format!("otpauth://{kind}/")) {
        Ok(u) => u,
        Err(_) => return Zeroizing::new(String::new()),
    };
    url.set_path(&label);
    {
        let secret = encode_secret(secret);
        let mut q = url.query_pairs_mut();
        q.append_pair("secret", &secret);
        if let Some(i) = &params.issuer {
            q.append_pair("issuer", i);
        }
        q.append_pair("algorithm", &format!("{:?}", params.algorithm));
        q.append_pair("digits", &params.digits.to_string());
        match params.kind {
            OtpKind::Totp => q.append_pair("period", &params.period.to_string()),
            OtpKind::Hotp => q.append_pair("counter", &params.counter.to_string()),
        };
    }
    Zeroizing::new(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_uri_and_formats_it_back() {
        let e = parse("otpauth://totp/ACME%20Co:john.doe@email.com?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ&issuer=ACME%20Co&algorithm=SHA256&digits=8&period=60").unwrap();
        assert_eq!(e.params.issuer.as_deref(), Some("ACME Co"));
        assert_eq!(e.params.account.as_deref(), Some("john.doe@email.com"));
        assert_eq!(e.params.algorithm, OtpAlgorithm::SHA256);
        assert_eq!((e.params.digits, e.params.period), (8, 60));
        assert_eq!(
            e.suggested_name.as_deref(),
            Some("ACME-Co:john.doe@email.com")
        );
        let back = parse(&format("x", &e.params, &e.secret)).unwrap();
        assert_eq!(back.params, e.params);
        assert_eq!(*back.secret, *e.secret);
    }

    #[test]
    fn hotp_needs_a_counter_and_bad_input_is_named() {
        assert!(parse("otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP").is_err());
        let e = parse("otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP&counter=7").unwrap();
        assert_eq!(e.params.counter, 7);
        let err = parse("https://example.com").err().unwrap().to_string();
        assert!(err.contains("otpauth://"), "{err}");
        let err = parse("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&digits=12")
            .err()
            .unwrap();
        assert_eq!(err, OtpError::Digits(12));
    }
}
