//! Work shared by the commands and the sign-in window: codes, URLs, QR codes.

use crate::commands::OtpCodeView;
use crate::daemon::Link;
use crate::error::TrayError;
use keyfob_proto::methods::*;

/// Current codes of the TOTP entries `names`; HOTP entries are skipped (computing one uses up
/// a counter value).
pub async fn otp_codes(link: &Link, names: Vec<String>) -> Result<Vec<OtpCodeView>, TrayError> {
    let mut c = link.connect().await?;
    let list = c.call::<OtpList>(&Empty {}).await?;
    let mut out = Vec::new();
    for name in names {
        let Some(e) = list.iter().find(|e| e.name == name) else {
            return Err(TrayError::Invalid {
                message: format!("no OTP entry named {name:?}"),
            });
        };
        if e.kind != OtpKind::Totp {
            continue;
        }
        let r = c
            .call::<OtpCode>(&OtpCodeParams {
                name: name.clone(),
                at: None,
            })
            .await?;
        out.push(OtpCodeView {
            name,
            code: r.code.expose().to_owned(),
            seconds_left: r.seconds_left.unwrap_or(0),
            period: r.period.unwrap_or(30),
        });
    }
    Ok(out)
}

/// Opens an http(s) URL with the desktop's opener.
pub fn open_url(url: &str) -> Result<(), TrayError> {
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(TrayError::Invalid {
            message: format!("only http(s) URLs are opened, not {url:?}"),
        });
    }
    std::process::Command::new("xdg-open")
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(|_| ())
        .map_err(|e| TrayError::System {
            message: format!("cannot open a browser (xdg-open): {e}; open {url} by hand"),
        })
}

/// An SVG QR code of `text`.
pub fn qr_svg(text: &str) -> Result<String, TrayError> {
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(|e| TrayError::Invalid {
        message: format!("cannot make a QR code: {e}"),
    })?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}
