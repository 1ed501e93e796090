//! Compiling where and for whom rules apply: namespace lists
//! (`spec.exemptions`, `spec.overrides[].namespaces`), overrides, and
//! `spec.breakGlass` with the users and groups who may use it; every error
//! with its location.

use serde_saphyr::Spanned;

use super::compile::{Compiler, DEFAULT_BREAK_GLASS_ANNOTATION};
use super::error::CompileErrorKind as Kind;
use super::evaluate::Rules;
use super::namespace::NamespaceSet;
use super::source::{self, Text};
use super::values::check_annotation_key;
use super::{BreakGlass, BreakGlassWho, Override};

impl Compiler<'_> {
    pub(super) fn namespaces(&mut self, list: Option<&[Text]>, field: &str) -> NamespaceSet {
        let mut set = NamespaceSet::default();
        for (i, ns) in list.into_iter().flatten().enumerate() {
            if let Err(e) = set.add(&ns.value) {
                self.error(
                    Kind::Namespace,
                    &ns.referenced,
                    format!("{field}[{i}]: {e}"),
                );
            }
        }
        set
    }

    fn non_empty_namespaces(&mut self, list: &Spanned<Vec<Text>>, field: &str) -> NamespaceSet {
        if list.value.is_empty() {
            self.error(
                Kind::Namespace,
                &list.referenced,
                format!("{field} is empty: list at least one namespace or glob"),
            );
        }
        self.namespaces(Some(&list.value), field)
    }

    pub(super) fn override_rule(
        &mut self,
        o: &source::Override,
        i: usize,
        base: &Rules,
    ) -> Override {
        let field = format!("spec.overrides[{i}]");
        let namespaces = self.non_empty_namespaces(&o.namespaces, &format!("{field}.namespaces"));
        let mode = self
            .mode(o.mode.as_ref(), &format!("{field}.mode"))
            .unwrap_or(base.mode);
        let (allow, deny) = self.registries(o.registries.as_ref(), &format!("{field}.registries"));
        let rules = Rules {
            mode,
            allow: allow.unwrap_or_else(|| base.allow.clone()),
            deny: deny.unwrap_or_else(|| base.deny.clone()),
            tags: self.tags(o.tags.as_ref(), &format!("{field}.tags"), base.tags.clone()),
        };
        Override { namespaces, rules }
    }

    pub(super) fn break_glass(&mut self, b: &source::BreakGlass) -> Option<BreakGlass> {
        let annotation = match &b.annotation {
            None => DEFAULT_BREAK_GLASS_ANNOTATION.into(),
            Some(key) => {
                if let Err(e) = check_annotation_key(&key.value) {
                    self.error(
                        Kind::Value,
                        &key.referenced,
                        format!("spec.breakGlass.annotation: {e}"),
                    );
                }
                key.value.as_str().into()
            }
        };
        let namespaces = b
            .namespaces
            .as_ref()
            .map(|l| self.non_empty_namespaces(l, "spec.breakGlass.namespaces"));
        let users = b
            .users
            .as_ref()
            .map(|l| self.principals(l, "spec.breakGlass.users", "user name"));
        let groups = b
            .groups
            .as_ref()
            .map(|l| self.principals(l, "spec.breakGlass.groups", "group"));
        let who = (users.is_some() || groups.is_some()).then(|| BreakGlassWho {
            users: users.unwrap_or_default(),
            groups: groups.unwrap_or_default(),
        });
        b.enabled.unwrap_or(false).then_some(BreakGlass {
            annotation,
            namespaces,
            who,
        })
    }

    /// A non-empty list of user or group names (exact strings, as the
    /// apiserver's authenticator gives them).
    fn principals(&mut self, list: &Spanned<Vec<Text>>, field: &str, what: &str) -> Vec<Box<str>> {
        if list.value.is_empty() {
            self.error(
                Kind::Value,
                &list.referenced,
                format!("{field} is empty: list at least one {what}, or remove the field to let anyone who may create pods break the glass"),
            );
        }
        let mut out = Vec::with_capacity(list.value.len());
        for (i, name) in list.value.iter().enumerate() {
            if name.value.is_empty()
                || name.value.trim() != name.value
                || name.value.chars().any(char::is_control)
            {
                self.error(
                    Kind::Value,
                    &name.referenced,
                    format!("{field}[{i}]: {:?} is not a {what} (empty, surrounding space or control characters)", name.value),
                );
                continue;
            }
            out.push(name.value.as_str().into());
        }
        out
    }
}
