//! Provider plugins: the bundled manifests (compiled in from `plugins/`; a bundled exec
//! plugin's executable is installed beside keyfobd) and user plugins from the config
//! directory.

pub mod exec;
pub mod manifest;

pub use manifest::{Flow, Kind, Manifest, ManifestError};
use std::path::Path;

/// The bundled manifests, as shipped in the repository's `plugins/` folder.
const BUNDLED: [(&str, &str); 6] = [
    (
        "aws-sts",
        include_str!("../../../plugins/aws-sts/plugin.toml"),
    ),
    (
        "github",
        include_str!("../../../plugins/github/plugin.toml"),
    ),
    (
        "gitlab",
        include_str!("../../../plugins/gitlab/plugin.toml"),
    ),
    (
        "google",
        include_str!("../../../plugins/google/plugin.toml"),
    ),
    (
        "microsoft",
        include_str!("../../../plugins/microsoft/plugin.toml"),
    ),
    ("oidc", include_str!("../../../plugins/oidc/plugin.toml")),
];

/// Every bundled manifest. They are checked by a test, so a broken one never ships.
pub fn bundled() -> Vec<Manifest> {
    BUNDLED
        .iter()
        .filter_map(|(id, text)| Manifest::parse(&format!("bundled {id}"), text).ok())
        .collect()
}

/// Loads `DIR/*/plugin.toml`; returns the good ones and the errors of the bad ones.
pub fn load_dir(dir: &Path) -> (Vec<Manifest>, Vec<ManifestError>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (good, bad);
    };
    let mut paths: Vec<_> = entries
        .flatten()
        .map(|e| e.path().join("plugin.toml"))
        .collect();
    paths.sort();
    for p in paths.into_iter().filter(|p| p.is_file()) {
        let name = p.display().to_string();
        match std::fs::read_to_string(&p) {
            Ok(text) => match Manifest::parse(&name, &text) {
                Ok(mut m) => {
                    m.dir = p.parent().map(Path::to_path_buf);
                    good.push(m)
                }
                Err(e) => bad.push(e),
            },
            Err(e) => bad.push(ManifestError {
                source_name: name,
                message: e.to_string(),
            }),
        }
    }
    (good, bad)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_bundled_manifest_is_valid() {
        for (id, text) in super::BUNDLED {
            let m = super::Manifest::parse(id, text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(m.id, id, "folder name and id must agree");
        }
        assert_eq!(super::bundled().len(), super::BUNDLED.len());
    }
}
