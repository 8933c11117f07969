//! Keyfob's fuzz targets: every parser that reads bytes someone else wrote. Each function
//! takes the fuzzer's input and must return without panicking, whatever the input; errors are
//! fine. The AFL harnesses (`src/bin/`, built by scripts/fuzz) call them, and
//! `tests/regressions.rs` replays the seeds and every input a fuzzer ever crashed on.

use keyfob_proto::methods::Method;

/// The daemon's input from clients: lines cut from a byte stream (in the chunks the input's
/// first byte chooses), each read as a JSON-RPC request, its params decoded for the method it
/// names and its authorization need computed, as dispatch does.
pub fn ipc(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first % 32) + 1;
    let mut framer = keyfob_proto::codec::Framer::default();
    for piece in rest.chunks(chunk) {
        let mut at = 0;
        while at < piece.len() {
            match framer.take(&piece[at..]) {
                Ok((used, done)) => {
                    at += used.max(1);
                    if done {
                        request(framer.line());
                        framer.clear();
                    }
                }
                Err(_) => {
                    framer.clear();
                    break;
                }
            }
        }
    }
}

/// One request line, as the daemon's connection and dispatch read it.
fn request(line: &[u8]) {
    let Ok(text) = std::str::from_utf8(line) else {
        return;
    };
    let Ok(req) = serde_json::from_str::<keyfob_proto::wire::IncomingRequest>(text) else {
        return;
    };
    let (Some(method), params) = (req.method, req.params) else {
        return;
    };
    let params = params.map_or("{}", |p| p.get());
    macro_rules! decode {
        ($($ty:ident),*) => {
            match method.as_str() {
                $(keyfob_proto::methods::$ty::NAME => {
                    if let Ok(p) = serde_json::from_str::<<keyfob_proto::methods::$ty as Method>::Params>(params) {
                        let need = keyfob_proto::methods::$ty::need(&p);
                        let _ = (need.subject(), need.is_credential());
                    }
                })*
                _ => {}
            }
        };
    }
    keyfob_proto::for_each_method!(decode);
}

/// A user plugin's `plugin.toml`.
pub fn manifest(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(m) = keyfob_daemon::plugins::Manifest::parse("fuzz", &text) {
        let _ = m.issuer_for(&Default::default());
        let _ = keyfob_daemon::plugins::exec::Host::of(&m);
    }
}

/// An `otpauth://` URI (QR codes, exports).
pub fn otpauth(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = keyfob_daemon::otp::uri::parse(&text);
}

/// A Google Authenticator `otpauth-migration://` export.
pub fn migration(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = keyfob_daemon::otp::migration::parse(&text);
}

/// A vault file, read with a fixed passphrase. A KDF cost between cheap and the ceiling the
/// reader allows is skipped (each run would spend seconds in Argon2 and find nothing new); a
/// cost above the ceiling is kept, since refusing it is the reader's job.
pub fn vault_file(data: &[u8]) {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let costly = |key: &str, cheap: u64, ceiling: u64| {
            v["kdf"][key]
                .as_u64()
                .is_some_and(|c| c > cheap && c <= ceiling)
        };
        if costly("m_cost", 4096, 1024 * 1024) || costly("t_cost", 4, 64) || costly("p_cost", 4, 64)
        {
            return;
        }
    }
    let _ = keyfob_daemon::vault::file::FileVault::check_bytes(data, b"fuzz passphrase");
}

/// A provider's answer: the first byte picks the HTTP status and whether it is form-encoded;
/// the rest is the body, normalised as every token answer is, then read as a token response,
/// an error, a discovery document and a key set.
pub fn provider(data: &[u8]) {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let status = [200u16, 400, 401, 429, 500, 503][usize::from(first % 6)];
    let content_type = if first & 0x80 != 0 {
        "application/x-www-form-urlencoded"
    } else {
        "application/json"
    };
    let Ok(mut resp) = oauth2::http::Response::builder()
        .status(status)
        .header(oauth2::http::header::CONTENT_TYPE, content_type)
        .body(body.to_vec())
    else {
        return;
    };
    keyfob_daemon::flows::http::normalise(&mut resp);
    let body = resp.body();
    let _ = keyfob_daemon::flows::http::is_error_body(body);
    let _ = serde_json::from_slice::<keyfob_daemon::flows::token::TokenResponse>(body);
    let _ = serde_json::from_slice::<openidconnect::core::CoreProviderMetadata>(body);
    if let Ok(keys) = serde_json::from_slice::<openidconnect::core::CoreJsonWebKeySet>(body) {
        let _ = keys.keys().len();
    }
}
