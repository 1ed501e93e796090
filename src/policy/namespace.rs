//! Namespace lists (`exemptions`, `overrides`, `breakGlass`): exact names,
//! or a prefix followed by `*` (`team-*`). Nothing else is a glob:
//! `kube-system` never matches `kube-system-x`.

/// Longest Kubernetes namespace name (a DNS-1123 label).
const MAX_NAMESPACE_LEN: usize = 63;

/// A compiled list of namespace names and `prefix*` globs.
#[derive(Debug, Clone, Default)]
pub(crate) struct NamespaceSet {
    /// (text as written, prefix when it is a glob)
    entries: Vec<(Box<str>, Option<Box<str>>)>,
}

impl NamespaceSet {
    /// Adds one entry after checking it; the message names the problem.
    pub(crate) fn add(&mut self, entry: &str) -> Result<(), String> {
        let prefix = match entry.strip_suffix('*') {
            Some("") => {
                return Err(
                    "\"*\" alone is not a namespace glob: give a prefix, as in \"team-*\"".into(),
                );
            }
            Some(prefix) => {
                check_name(prefix, entry, true)?;
                Some(prefix.into())
            }
            None => {
                check_name(entry, entry, false)?;
                None
            }
        };
        self.entries.push((entry.into(), prefix));
        Ok(())
    }

    /// The first entry matching `namespace`, as written in the policy.
    pub(crate) fn find(&self, namespace: &str) -> Option<&str> {
        if namespace.is_empty() {
            return None;
        }
        self.entries
            .iter()
            .find(|(text, prefix)| match prefix {
                Some(prefix) => namespace.starts_with(&**prefix),
                None => **text == *namespace,
            })
            .map(|(text, _)| &**text)
    }
}

/// A DNS-1123 label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63
/// characters), or for a glob the start of one.
fn check_name(name: &str, entry: &str, glob: bool) -> Result<(), String> {
    let b = name.as_bytes();
    let valid_chars = b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
    let ends_ok = b.first().is_some_and(u8::is_ascii_alphanumeric)
        && (glob || b.last().is_some_and(u8::is_ascii_alphanumeric));
    if name.contains('*') {
        return Err(format!(
            "namespace glob {entry:?} may only end with \"*\", as in \"team-*\""
        ));
    }
    if !valid_chars || !ends_ok {
        return Err(format!(
            "invalid namespace {entry:?}: a namespace is lower-case letters, digits and '-', starting and ending with a letter or digit"
        ));
    }
    if name.len() > MAX_NAMESPACE_LEN || (glob && name.len() >= MAX_NAMESPACE_LEN) {
        return Err(format!(
            "namespace {entry:?} is longer than {MAX_NAMESPACE_LEN} characters"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(entries: &[&str]) -> NamespaceSet {
        let mut s = NamespaceSet::default();
        for e in entries {
            s.add(e).unwrap();
        }
        s
    }

    #[test]
    fn exact_names_match_exactly() {
        let s = set(&["kube-system"]);
        assert_eq!(s.find("kube-system"), Some("kube-system"));
        for other in [
            "kube-system-x",
            "kube-syste",
            "Kube-System",
            "",
            "kube-system ",
        ] {
            assert_eq!(s.find(other), None, "{other:?}");
        }
    }

    #[test]
    fn globs_match_prefixes() {
        let s = set(&["team-*", "prod"]);
        assert_eq!(s.find("team-a"), Some("team-*"));
        assert_eq!(s.find("team-"), Some("team-*"));
        assert_eq!(s.find("team"), None);
        assert_eq!(s.find("teams"), None);
        assert_eq!(s.find("prod"), Some("prod"));
        assert_eq!(s.find("prod-1"), None);
    }

    #[test]
    fn rejects_invalid_entries() {
        let mut s = NamespaceSet::default();
        for bad in [
            "",
            "*",
            "Kube",
            "kube_system",
            "-a",
            "a-",
            "a*b",
            "*-a",
            "a**",
            "a b",
            "ä",
            &"a".repeat(64),
        ] {
            assert!(s.add(bad).is_err(), "{bad:?}");
        }
        assert!(s.add(&"a".repeat(63)).is_ok());
        assert!(s.add("a-*").is_ok());
        assert!(s.add("1*").is_ok());
    }
}
