//! Checks of single values in a policy file: tags and annotation keys.

/// The annotation prefix the apiserver forwards to an ImageReview webhook.
const FORWARDED_SUFFIX: &str = ".image-policy.k8s.io";

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`: the reference grammar's tag.
pub(super) use crate::reference::is_tag;

/// A Kubernetes annotation key whose prefix ends in `.image-policy.k8s.io`,
/// the only keys the apiserver forwards to an ImageReview webhook.
pub(super) fn check_annotation_key(key: &str) -> Result<(), String> {
    let Some((prefix, name)) = key.split_once('/') else {
        return Err(format!(
            "annotation key {key:?} has no prefix: it must look like \"break-glass{FORWARDED_SUFFIX}/reason\" (the apiserver forwards only *{FORWARDED_SUFFIX}/* annotations)"
        ));
    };
    let name_ok = (1..=63).contains(&name.len())
        && name
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .bytes()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if !name_ok {
        return Err(format!(
            "annotation key {key:?}: the name after '/' must be 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ));
    }
    let prefix_ok = prefix.len() <= 253
        && prefix.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        });
    if !prefix_ok {
        return Err(format!(
            "annotation key {key:?}: the prefix before '/' must be a lower-case DNS subdomain"
        ));
    }
    match prefix.strip_suffix(FORWARDED_SUFFIX) {
        Some(head) if !head.is_empty() => Ok(()),
        _ => Err(format!(
            "annotation key {key:?} must have a prefix ending in {FORWARDED_SUFFIX:?}, as \"break-glass{FORWARDED_SUFFIX}/reason\": the apiserver forwards only such annotations to the webhook"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::DEFAULT_BREAK_GLASS_ANNOTATION;

    #[test]
    fn tags() {
        for ok in ["latest", "LATEST", "_x", "1.0", "a-b.c_d", &"a".repeat(128)] {
            assert!(is_tag(ok), "{ok}");
        }
        for bad in ["", ".x", "-x", "a b", "a:b", "ä", &"a".repeat(129)] {
            assert!(!is_tag(bad), "{bad}");
        }
    }

    #[test]
    fn annotation_keys() {
        for ok in [
            DEFAULT_BREAK_GLASS_ANNOTATION,
            "x.image-policy.k8s.io/y",
            "a.b.image-policy.k8s.io/Reason.1",
        ] {
            assert!(check_annotation_key(ok).is_ok(), "{ok}");
        }
        for bad in [
            "reason",
            "image-policy.k8s.io/reason",
            ".image-policy.k8s.io/reason",
            "break-glass.example.com/reason",
            "break-glass.image-policy.k8s.io/",
            "break-glass.image-policy.k8s.io/-x",
            "Break-Glass.image-policy.k8s.io/x",
            "break-glass.image-policy.k8s.io.evil/x",
            "break-glass.image-policy.k8s.io/a/b",
        ] {
            assert!(check_annotation_key(bad).is_err(), "{bad}");
        }
    }
}
