//! Random ids and SHA-256 digests, as lowercase hex.

use data_encoding::HEXLOWER;
use ring::rand::SecureRandom;

/// `bytes` random bytes from the system source, as hex.
pub fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    // The system source does not fail on Linux; an all-zero id would still be unique enough
    // to be noticed rather than exploited.
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    HEXLOWER.encode(&b)
}

/// SHA-256 of `data`, as hex.
pub fn sha256_hex(data: &[u8]) -> String {
    HEXLOWER.encode(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_of_known_digest_and_lengths() {
        assert_eq!(
            super::sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(super::random_hex(4).len(), 8);
    }
}
