//! What a line is: an audit event (or a list of them) turned into the
//! AdmissionReview the apiserver would have sent, a recorded or saved
//! review, or a reason to skip it.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{AuditIds, Skip};
use crate::review::Api;

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow, rename = "apiVersion")]
    api_version: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "auditID")]
    audit_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    verb: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "objectRef")]
    object_ref: Option<ObjectRef<'a>>,
    #[serde(borrow)]
    user: Option<&'a RawValue>,
    /// The user the request was made as, when impersonated: the one the
    /// apiserver names in the AdmissionReview.
    #[serde(borrow, rename = "impersonatedUser")]
    impersonated_user: Option<&'a RawValue>,
    #[serde(borrow, rename = "requestObject")]
    request_object: Option<&'a RawValue>,
    #[serde(borrow, rename = "responseObject")]
    response_object: Option<&'a RawValue>,
    #[serde(rename = "responseStatus")]
    response_status: Option<Status>,
    /// A `RecordedReview`'s body.
    #[serde(borrow)]
    review: Option<&'a RawValue>,
    /// An `EventList`'s events (what the audit webhook backend sends).
    #[serde(borrow)]
    items: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct Status {
    code: Option<u16>,
}

#[derive(Deserialize)]
struct ObjectRef<'a> {
    #[serde(borrow)]
    resource: Option<Cow<'a, str>>,
    #[serde(borrow)]
    namespace: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "apiGroup")]
    api_group: Option<Cow<'a, str>>,
    #[serde(borrow)]
    subresource: Option<Cow<'a, str>>,
}

type Found = Result<(Api, Option<Vec<u8>>), Skip>;

/// What a line is: reviews to judge (each with its body when it is not the
/// line itself), or why not; an `EventList` is each of its events.
pub(super) fn classify(line: &[u8], seen: &mut AuditIds, found: &mut impl FnMut(Found)) {
    let head: Head<'_> = match serde_json::from_slice(line) {
        Ok(head) => head,
        Err(_) => return found(Err(Skip::Broken)),
    };
    if is_audit(&head, "EventList") {
        for item in head.items.as_deref().unwrap_or_default() {
            found(match serde_json::from_str::<Head<'_>>(item.get()) {
                Ok(event) if is_audit(&event, "Event") => self::event(&event, seen),
                Ok(_) => Err(Skip::UnknownKind),
                Err(_) => Err(Skip::Broken),
            });
        }
        return;
    }
    found(one(&head, seen));
}

/// Whether `head` is an audit object of `kind` (`apiVersion`
/// `audit.k8s.io/v1` or `v1beta1`, or none: the audit webhook backend's
/// events are often stored without it).
fn is_audit(head: &Head<'_>, kind: &str) -> bool {
    head.kind.as_deref() == Some(kind)
        && matches!(
            head.api_version.as_deref(),
            None | Some("audit.k8s.io/v1" | "audit.k8s.io/v1beta1")
        )
}

fn one(head: &Head<'_>, seen: &mut AuditIds) -> Found {
    if is_audit(head, "Event") {
        return event(head, seen);
    }
    let kind = head.kind.as_deref().unwrap_or("");
    let api_version = head.api_version.as_deref().unwrap_or("");
    match (api_version, kind) {
        ("imagegate.dev/v1alpha1", "RecordedReview") => {
            let review = head.review.ok_or(Skip::Broken)?;
            let body = review.get().as_bytes().to_vec();
            let inner: Head<'_> = serde_json::from_slice(&body).map_err(|_| Skip::Broken)?;
            match inner.kind.as_deref() {
                Some("AdmissionReview") => Ok((Api::AdmissionReview, Some(body))),
                Some("ImageReview") => Ok((Api::ImageReview, Some(body))),
                _ => Err(Skip::UnknownKind),
            }
        }
        (_, "AdmissionReview") => Ok((Api::AdmissionReview, None)),
        (_, "ImageReview") => Ok((Api::ImageReview, None)),
        _ => Err(Skip::UnknownKind),
    }
}

/// The kind of a pod-bearing resource (`None` for others).
fn kind_of(group: &str, resource: &str) -> Option<&'static str> {
    Some(match (group, resource) {
        ("", "pods") => "Pod",
        ("", "podtemplates") => "PodTemplate",
        ("", "replicationcontrollers") => "ReplicationController",
        ("apps" | "extensions", "deployments") => "Deployment",
        ("apps" | "extensions", "replicasets") => "ReplicaSet",
        ("apps" | "extensions", "daemonsets") => "DaemonSet",
        ("apps", "statefulsets") => "StatefulSet",
        ("batch", "jobs") => "Job",
        ("batch", "cronjobs") => "CronJob",
        _ => return None,
    })
}

/// An audit event as the AdmissionReview the apiserver would have sent.
fn event(head: &Head<'_>, seen: &mut AuditIds) -> Found {
    let object_ref = head.object_ref.as_ref().ok_or(Skip::OtherResource)?;
    let group = object_ref.api_group.as_deref().unwrap_or("");
    let kind =
        kind_of(group, object_ref.resource.as_deref().unwrap_or("")).ok_or(Skip::OtherResource)?;
    // A patch (`kubectl apply`, `set image`, server-side apply) is judged by
    // its result, the object as stored, when the event logged it.
    let (operation, object) = match head.verb.as_deref() {
        Some("create") => ("CREATE", head.request_object.ok_or(Skip::NoObject)?),
        Some("update") => ("UPDATE", head.request_object.ok_or(Skip::NoObject)?),
        Some("patch") => (
            "UPDATE",
            head.response_object
                .filter(|_| {
                    // A failed patch logs a Status, not the object.
                    head.response_status
                        .as_ref()
                        .and_then(|s| s.code)
                        .is_some_and(|code| (200..300).contains(&code))
                })
                .ok_or(Skip::PatchWithoutResult)?,
        ),
        _ => return Err(Skip::OtherVerb),
    };
    let id = head.audit_id.as_deref().unwrap_or("");
    if !id.is_empty() && seen.repeated(id) {
        return Err(Skip::RepeatedStage);
    }
    let text = |s: Option<&Cow<'_, str>>| serde_json::to_string(s.map_or("", |s| s.as_ref()));
    let body = format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":{},"kind":{{"group":{},"version":"","kind":"{kind}"}},"namespace":{},"name":{},"subResource":{},"operation":"{operation}","userInfo":{},"object":{}}}}}"#,
        serde_json::to_string(id).map_err(|_| Skip::Broken)?,
        serde_json::to_string(group).map_err(|_| Skip::Broken)?,
        text(object_ref.namespace.as_ref()).map_err(|_| Skip::Broken)?,
        text(object_ref.name.as_ref()).map_err(|_| Skip::Broken)?,
        text(object_ref.subresource.as_ref()).map_err(|_| Skip::Broken)?,
        head.impersonated_user
            .or(head.user)
            .map_or("null", RawValue::get),
        object.get(),
    );
    Ok((Api::AdmissionReview, Some(body.into_bytes())))
}
