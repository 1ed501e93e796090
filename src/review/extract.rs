//! Where the images are: narrow views of Pods and of the pod templates of
//! every workload kind, decoded straight from the tape.
//!
//! Each view keeps only the image strings (containers, init containers,
//! ephemeral containers, and image volumes: `spec.volumes[].image.reference`,
//! which the kubelet pulls and mounts), the namespace and the annotations
//! that apply to the pods; the rest of the object is skipped. Knows nothing
//! of policy.

use serde::de::{Deserialize, DeserializeSeed, Deserializer};

use super::wire::{Annotations, List, Str, wire_object};

/// The image of one container (`""` when absent, `null`, or the container
/// itself is `null`, as Go reads them; the policy denies an empty image),
/// and the container's name (`""` when absent).
#[derive(Debug, Clone, Copy)]
pub(super) struct ImageOf<'a> {
    pub(super) image: &'a str,
    pub(super) name: &'a str,
}

wire_object! {
    struct Container<'a> {
        name: Str<'a> = "name",
        image: Str<'a> = "image",
    }
}

impl<'de> Deserialize<'de> for ImageOf<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let container = Option::<Container<'de>>::deserialize(d)?.unwrap_or_default();
        Ok(ImageOf {
            image: container.image.map_or("", |s| s.0),
            name: container.name.map_or("", |s| s.0),
        })
    }
}

/// Which list of a pod spec an image came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `containers` (also every container of an ImageReview).
    Container,
    /// `initContainers`.
    InitContainer,
    /// `ephemeralContainers`.
    EphemeralContainer,
    /// `volumes[].image.reference`.
    ImageVolume,
}

impl Field {
    /// `container`, `initContainer`, `ephemeralContainer` or `imageVolume`.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Container => "container",
            Field::InitContainer => "initContainer",
            Field::EphemeralContainer => "ephemeralContainer",
            Field::ImageVolume => "imageVolume",
        }
    }
}

/// One image to judge, and where it came from: a container (of any kind)
/// or an image volume, with the container's or the volume's name.
#[derive(Debug, Clone, Copy)]
pub(super) struct Image<'a> {
    pub(super) image: &'a str,
    pub(super) field: Field,
    /// The container's or the image volume's name (`""` when absent).
    pub(super) name: &'a str,
}

impl<'a> Image<'a> {
    pub(super) fn container(of: ImageOf<'a>) -> Image<'a> {
        Image {
            image: of.image,
            field: Field::Container,
            name: of.name,
        }
    }

    /// The name of the image volume, `None` for a container's image.
    pub(super) fn volume(&self) -> Option<&'a str> {
        (self.field == Field::ImageVolume).then_some(self.name)
    }

    /// The same image from the same kind of place (containers of one image
    /// are judged and worded alike, whatever their names).
    pub(super) fn same(&self, other: &Image<'_>) -> bool {
        self.image == other.image && self.volume() == other.volume()
    }
}

wire_object! {
    /// `spec.volumes[].image` (the ImageVolume feature).
    struct ImageVolumeSource<'a> {
        reference: Str<'a> = "reference",
    }
}

wire_object! {
    struct VolumeWire<'a> {
        name: Str<'a> = "name",
        image: ImageVolumeSource<'a> = "image",
    }
}

/// A volume: `Some((name, reference))` for an image volume (reference ""
/// when absent, which the policy denies), `None` for any other source.
#[derive(Debug, Clone, Copy)]
pub(super) struct VolumeOf<'a>(pub(super) Option<(&'a str, &'a str)>);

impl<'de> Deserialize<'de> for VolumeOf<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let volume = Option::<VolumeWire<'de>>::deserialize(d)?;
        Ok(VolumeOf(volume.and_then(|v| {
            let image = v.image?;
            Some((
                v.name.map_or("", |s| s.0),
                image.reference.map_or("", |s| s.0),
            ))
        })))
    }
}

wire_object! {
    /// The container lists and volumes of a pod spec.
    struct PodSpec<'a> {
        containers: List<ImageOf<'a>> = "containers",
        init_containers: List<ImageOf<'a>> = "initContainers",
        ephemeral_containers: List<ImageOf<'a>> = "ephemeralContainers",
        volumes: List<VolumeOf<'a>> = "volumes",
    }
}

impl<'a> PodSpec<'a> {
    /// Every image: containers, then init containers, then ephemeral ones,
    /// then image volumes, whatever order the keys came in.
    pub(super) fn images(&self) -> impl Iterator<Item = Image<'a>> + Clone + '_ {
        let containers = [
            (&self.containers, Field::Container),
            (&self.init_containers, Field::InitContainer),
            (&self.ephemeral_containers, Field::EphemeralContainer),
        ]
        .into_iter()
        .filter_map(|(list, field)| Some((list.as_ref()?, field)))
        .flat_map(|(list, field)| {
            list.0.iter().map(move |of| Image {
                image: of.image,
                field,
                name: of.name,
            })
        });
        let volumes = self.volumes.iter().flat_map(|list| {
            list.0.iter().filter_map(|v| {
                v.0.map(|(name, image)| Image {
                    image,
                    field: Field::ImageVolume,
                    name,
                })
            })
        });
        containers.chain(volumes)
    }
}

wire_object! {
    /// The parts of `metadata` a decision uses.
    struct Meta<'a> {
        name: Str<'a> = "name",
        generate_name: Str<'a> = "generateName",
        namespace: Str<'a> = "namespace",
        annotations: Annotations<'a> = "annotations",
    }
}

wire_object! {
    /// A Pod, or a `PodTemplateSpec` (same shape: metadata and a pod spec).
    struct PodLike<'a> {
        metadata: Meta<'a> = "metadata",
        spec: PodSpec<'a> = "spec",
    }
}

wire_object! {
    /// `spec` of a Deployment, ReplicaSet, StatefulSet, DaemonSet, Job,
    /// ReplicationController; also `jobTemplate.spec` of a CronJob.
    struct TemplateSpec<'a> {
        template: PodLike<'a> = "template",
    }
}

wire_object! {
    struct Workload<'a> {
        metadata: Meta<'a> = "metadata",
        spec: TemplateSpec<'a> = "spec",
    }
}

wire_object! {
    struct JobTemplate<'a> {
        spec: TemplateSpec<'a> = "spec",
    }
}

wire_object! {
    struct CronJobSpec<'a> {
        job_template: JobTemplate<'a> = "jobTemplate",
    }
}

wire_object! {
    struct CronJob<'a> {
        metadata: Meta<'a> = "metadata",
        spec: CronJobSpec<'a> = "spec",
    }
}

wire_object! {
    /// A core `PodTemplate` (its template sits at the top, not in `spec`).
    struct PodTemplate<'a> {
        metadata: Meta<'a> = "metadata",
        template: PodLike<'a> = "template",
    }
}

/// Where an object kind keeps its pod spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// `Pod`: `.spec`.
    Pod,
    /// `.spec.template.spec` (apps workloads, Job, ReplicationController).
    Template,
    /// `CronJob`: `.spec.jobTemplate.spec.template.spec`.
    CronJob,
    /// `PodTemplate`: `.template.spec`.
    PodTemplate,
}

impl Shape {
    /// The shape of a `request.kind`, or `None` for kinds without pods
    /// (and for same-named kinds of other API groups).
    pub(super) fn of(group: &str, kind: &str) -> Option<Shape> {
        match (group, kind) {
            ("", "Pod") => Some(Shape::Pod),
            ("", "PodTemplate") => Some(Shape::PodTemplate),
            ("", "ReplicationController")
            | ("apps" | "extensions", "Deployment" | "ReplicaSet" | "DaemonSet")
            | ("apps", "StatefulSet")
            | ("batch", "Job") => Some(Shape::Template),
            ("batch", "CronJob") => Some(Shape::CronJob),
            _ => None,
        }
    }
}

/// What a decision needs from one object.
#[derive(Debug, Default)]
pub(super) struct Extracted<'a> {
    /// `metadata.namespace` of the object ("" when absent).
    pub(super) namespace: &'a str,
    /// `metadata.name` of the object, else its `generateName` ("" when
    /// both are absent).
    pub(super) name: &'a str,
    /// The pods' annotations: the object's own for a Pod, the pod template's
    /// for a workload (none when the template has none).
    pub(super) annotations: Vec<(&'a str, &'a str)>,
    /// The pod spec holding the images.
    pub(super) spec: PodSpec<'a>,
}

impl<'a> Extracted<'a> {
    /// A Pod: its own namespace and annotations.
    fn pod(pod: PodLike<'a>) -> Extracted<'a> {
        let (namespace, name, annotations) = split(pod.metadata);
        Extracted {
            namespace,
            name,
            annotations,
            spec: pod.spec.unwrap_or_default(),
        }
    }

    /// A workload: the object's namespace, the pod template's annotations.
    fn workload(meta: Option<Meta<'a>>, template: Option<PodLike<'a>>) -> Extracted<'a> {
        let mut out = Extracted::pod(template.unwrap_or_default());
        (out.namespace, out.name, _) = split(meta);
        out
    }
}

fn split(meta: Option<Meta<'_>>) -> (&str, &str, Vec<(&str, &str)>) {
    let meta = meta.unwrap_or_default();
    (
        meta.namespace.map_or("", |s| s.0),
        meta.name.or(meta.generate_name).map_or("", |s| s.0),
        meta.annotations.map(|a| a.0).unwrap_or_default(),
    )
}

/// Decodes an object of a known [`Shape`]; `None` for `null`.
#[derive(Debug, Clone, Copy)]
pub(super) struct ShapeSeed(pub(super) Shape);

impl<'de> DeserializeSeed<'de> for ShapeSeed {
    type Value = Option<Extracted<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Ok(match self.0 {
            Shape::Pod => Option::<PodLike<'de>>::deserialize(d)?.map(Extracted::pod),
            Shape::Template => Option::<Workload<'de>>::deserialize(d)?
                .map(|w| Extracted::workload(w.metadata, w.spec.and_then(|s| s.template))),
            Shape::CronJob => Option::<CronJob<'de>>::deserialize(d)?.map(|c| {
                let template = c
                    .spec
                    .and_then(|s| s.job_template)
                    .and_then(|j| j.spec)
                    .and_then(|s| s.template);
                Extracted::workload(c.metadata, template)
            }),
            Shape::PodTemplate => Option::<PodTemplate<'de>>::deserialize(d)?
                .map(|t| Extracted::workload(t.metadata, t.template)),
        })
    }
}
