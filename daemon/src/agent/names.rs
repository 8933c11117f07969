//! Entry names: short, printable, and safe to use as keychain attributes and file keys.

/// The longest name accepted.
pub const MAX_LEN: usize = 128;

/// Whether `c` may appear in a name.
pub fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._@+:-".contains(c)
}

/// Checks a name; the error says what is allowed.
pub fn validate(kind: &str, name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_LEN || !name.chars().all(allowed) {
        return Err(format!(
            "invalid {kind} name {name:?}: use 1 to {MAX_LEN} of the characters A-Z a-z 0-9 . _ @ + : -"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn accepts_usual_names_and_refuses_odd_ones() {
        assert!(super::validate("OTP", "GitHub:alice@example.com").is_ok());
        assert!(super::validate("OTP", "").is_err());
        assert!(super::validate("OTP", "a b").is_err());
        assert!(super::validate("OTP", "a/../b").is_err());
        assert!(super::validate("OTP", &"x".repeat(129)).is_err());
    }
}
