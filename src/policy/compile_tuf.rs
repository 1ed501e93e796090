//! Compiling a `verify` rule's `tuf` field: the TUF repository its keyless
//! trusted root is refreshed from (`url`, `root`, `target`, `refresh`),
//! every error with its location. The TUF `root.json` is read through the
//! caller's [`SideFiles`](super::SideFiles), watched like every file the
//! policy names, and checked for a valid self-signature here, so a wrong
//! file fails `policy validate`.

use super::compile::Compiler;
use super::error::CompileErrorKind as Kind;
use super::source;
use super::tuf::{self, DEFAULT_TUF_REFRESH, DEFAULT_TUF_TARGET, TufSource};

/// The shortest refresh interval a policy may ask for.
const MIN_REFRESH: std::time::Duration = std::time::Duration::from_secs(1);
/// The longest: TUF timestamps expire within days, so a longer wait only
/// leaves a repository's new root unseen.
const MAX_REFRESH: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

impl Compiler<'_> {
    /// `tuf`: the repository URL, its TUF `root.json` (read and checked
    /// for a valid self-signature now, so a wrong file fails validation),
    /// the target and the refresh interval.
    pub(super) fn tuf(
        &mut self,
        tuf: &source::Tuf,
        at: &serde_saphyr::Location,
        field: &str,
    ) -> Option<TufSource> {
        let before = self.error_count();
        let url = match &tuf.url {
            Some(url) => {
                if let Err(e) = tuf::check_url(&url.value) {
                    self.error(
                        Kind::Value,
                        &url.referenced,
                        format!("{field}.tuf.url: {e}"),
                    );
                }
                Some(url.value.as_str())
            }
            None => {
                self.error(
                    Kind::Value,
                    at,
                    format!("{field}.tuf.url is missing: give the TUF repository's URL"),
                );
                None
            }
        };
        let root = match &tuf.root {
            Some(path) => match self.read_side(&path.value) {
                Ok(text) => match check_tuf_root(&text) {
                    Ok(_) => Some(text),
                    Err(e) => {
                        self.error(
                            Kind::Value,
                            &path.referenced,
                            format!(
                                "{field}.tuf.root: {:?} is not a usable TUF root: {e}",
                                path.value
                            ),
                        );
                        None
                    }
                },
                Err(e) => {
                    self.error(
                        Kind::Value,
                        &path.referenced,
                        format!("{field}.tuf.root: {e}"),
                    );
                    None
                }
            },
            // The public-good repository's root is built in.
            None if url.is_some_and(tuf::is_public_good) => Some(tuf::SIGSTORE_TUF_ROOT.to_owned()),
            None => {
                self.error(
                    Kind::Value,
                    at,
                    format!("{field}.tuf.root is missing: give the file of the repository's TUF root.json trusted at first (it may be left out only for {})", tuf::PUBLIC_GOOD_TUF_URL),
                );
                None
            }
        };
        let target = tuf.target.as_ref().map_or(DEFAULT_TUF_TARGET, |t| {
            if let Err(e) = tuf::check_target(&t.value) {
                self.error(
                    Kind::Value,
                    &t.referenced,
                    format!("{field}.tuf.target: {e}"),
                );
            }
            t.value.as_str()
        });
        let refresh = match &tuf.refresh {
            None => Some(DEFAULT_TUF_REFRESH),
            Some(text) => match super::parse_duration(&text.value) {
                Ok(d) if (MIN_REFRESH..=MAX_REFRESH).contains(&d) => Some(d),
                Ok(_) => {
                    self.error(
                        Kind::Value,
                        &text.referenced,
                        format!(
                            "{field}.tuf.refresh: {:?} is out of range: from 1s to 30d",
                            text.value
                        ),
                    );
                    None
                }
                Err(e) => {
                    self.error(
                        Kind::Value,
                        &text.referenced,
                        format!("{field}.tuf.refresh: {e}"),
                    );
                    None
                }
            },
        };
        let (url, root, refresh) = (url?, root?, refresh?);
        (self.error_count() == before)
            .then(|| TufSource::new(url, root.as_bytes(), target, refresh))
    }
}

/// Whether `text` is a TUF root signed by a threshold of its own root keys.
fn check_tuf_root(text: &str) -> Result<(), sigstore_tuf::Error> {
    crate::crypto::install();
    sigstore_tuf::TrustedMetadataSet::from_root(text.as_bytes()).map(drop)
}
