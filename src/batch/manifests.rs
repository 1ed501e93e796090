//! `check -f`: every pod-bearing object of Kubernetes manifests, judged with
//! the extraction `/validate` uses ([`crate::review::object`]).
//!
//! Inputs are files, directories (recursively, `*.yaml`, `*.yml`, `*.json`,
//! in path order, symbolic links to directories not followed) and `-` for
//! standard input. Without `verify` rules each object is judged as it is
//! read; with them, every object is read first, the images they need are
//! verified together, and then each is judged.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::policy::User;
use crate::review::{self, DecodeError, Field, Judged, ObjectContext};

use super::verify::Verifications;
use super::yaml::{self, Document, ImageAt, YamlError, container_line, volume_line};

/// Where manifests are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Standard input (`-`).
    Stdin,
    /// A file.
    File(PathBuf),
}

impl Input {
    /// The name used in reports: the path, or `-`.
    pub fn name(&self) -> String {
        match self {
            Input::Stdin => "-".to_owned(),
            Input::File(path) => path.display().to_string(),
        }
    }
}

/// Why manifests could not be judged (the command exits 2).
#[derive(Debug)]
pub enum ManifestError {
    /// A path that cannot be read.
    Read {
        /// The file or directory.
        file: String,
        /// Why.
        error: std::io::Error,
    },
    /// A document that is not valid YAML or not an object.
    Yaml {
        /// The file.
        file: String,
        /// What and where.
        error: YamlError,
    },
    /// An object that is not a readable Kubernetes object (no `kind`, a
    /// container that is not an object, an image that is not a string...).
    Object {
        /// The file.
        file: String,
        /// Where the object starts.
        line: u64,
        /// What is wrong.
        error: DecodeError,
    },
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestError::Read { file, error } => write!(f, "{file}: cannot read: {error}"),
            ManifestError::Yaml { file, error } if error.line > 0 => {
                write!(f, "{file}:{}: {}", error.line, error.message)
            }
            ManifestError::Yaml { file, error } => write!(f, "{file}: {}", error.message),
            ManifestError::Object { file, line, error } => {
                write!(f, "{file}:{line}: not a Kubernetes object: {error}")
            }
        }
    }
}

impl std::error::Error for ManifestError {}

/// Expands `paths` (`-`, files, directories) into the inputs to read, in
/// order. A directory contributes its `*.yaml`, `*.yml` and `*.json` files,
/// sorted by path; other files in it are counted in the second value.
pub fn inputs(paths: &[String]) -> Result<(Vec<Input>, usize), ManifestError> {
    let mut out = Vec::new();
    let mut ignored = 0;
    for path in paths {
        if path == "-" {
            out.push(Input::Stdin);
            continue;
        }
        let path = PathBuf::from(path);
        let meta = std::fs::metadata(&path).map_err(|error| ManifestError::Read {
            file: path.display().to_string(),
            error,
        })?;
        if meta.is_dir() {
            walk(&path, &mut out, &mut ignored)?;
        } else {
            out.push(Input::File(path));
        }
    }
    Ok((out, ignored))
}

fn walk(dir: &Path, out: &mut Vec<Input>, ignored: &mut usize) -> Result<(), ManifestError> {
    let read = |error| ManifestError::Read {
        file: dir.display().to_string(),
        error,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(read)?
        .collect::<Result<_, _>>()
        .map_err(read)?;
    entries.sort_by_key(std::fs::DirEntry::path);
    for entry in entries {
        let path = entry.path();
        let kind = entry.file_type().map_err(read)?;
        if kind.is_dir() {
            walk(&path, out, ignored)?;
        } else if is_manifest_name(&path) && (kind.is_file() || path.is_file()) {
            out.push(Input::File(path));
        } else {
            *ignored += 1;
        }
    }
    Ok(())
}

fn is_manifest_name(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// One judged pod-bearing object.
#[derive(Debug, Clone)]
pub struct Object {
    /// The input it came from (`-` for standard input).
    pub file: String,
    /// The line where the object starts.
    pub line: u64,
    /// The line of each image (same order as `judged.images`), when known.
    pub image_lines: Vec<Option<u64>>,
    /// The verdicts.
    pub judged: Judged,
}

/// Every pod-bearing object of the inputs, judged, and how many objects of
/// other kinds were skipped.
#[derive(Debug, Default)]
pub struct Judgement {
    /// The pod-bearing objects, in input order.
    pub objects: Vec<Object>,
    /// Objects of kinds without pods.
    pub skipped: usize,
}

/// Reads and judges every object of `inputs` under the policy of
/// `verifications`, in namespace `namespace` unless an object names its own.
pub fn judge(
    inputs: &[Input],
    verifications: &mut Verifications,
    namespace: &str,
    user: Option<User<'_>>,
) -> Result<Judgement, ManifestError> {
    let ctx = ObjectContext { namespace, user };
    let mut out = Judgement::default();
    if !verifications.needed() {
        for input in inputs {
            read(input, |file, document| {
                judge_one(file, document, verifications, &ctx, &mut out)
            })?;
        }
        return Ok(out);
    }
    // Every document is read first and parsed once, in place: the images
    // of all of them are verified together, then each is judged from the
    // same views. Errors come in input order, as without verification: an
    // object that does not decode before the place where reading failed is
    // reported first.
    let mut held: Vec<(String, Document)> = Vec::new();
    let mut unread = None;
    for input in inputs {
        let read = read(input, |file, document| {
            held.push((file.to_owned(), document));
            Ok(())
        });
        if let Err(error) = read {
            unread = Some(error);
            break;
        }
    }
    let mut parsed = Vec::with_capacity(held.len());
    for (file, document) in &mut held {
        let Document { json, line, images } = document;
        let views = review::parse_object(json).map_err(|error| ManifestError::Object {
            file: file.clone(),
            line: *line,
            error,
        })?;
        parsed.push((file.as_str(), *line, &*images, views));
    }
    if let Some(error) = unread {
        return Err(error);
    }
    let mut pending: Vec<String> = Vec::new();
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    for (_, _, _, views) in &parsed {
        for image in views.pending(verifications.snapshot(), &ctx) {
            if seen.insert(image.clone()) {
                pending.push(image);
            }
        }
    }
    verifications.verify(pending);
    for (file, line, images, views) in &parsed {
        let judged = views.judged(verifications.snapshot(), &ctx, verifications.checks());
        record(file, *line, images, judged, &mut out);
    }
    Ok(out)
}

fn judge_one(
    file: &str,
    mut document: Document,
    verifications: &Verifications,
    ctx: &ObjectContext<'_>,
    out: &mut Judgement,
) -> Result<(), ManifestError> {
    let line = document.line;
    let judged = review::object(
        &mut document.json,
        verifications.snapshot(),
        ctx,
        verifications.checks(),
    )
    .map_err(|error| ManifestError::Object {
        file: file.to_owned(),
        line,
        error,
    })?;
    record(file, line, &document.images, judged, out);
    Ok(())
}

/// Adds a judged object (with the line of each of its images) to `out`,
/// or counts it as skipped when its kind holds no pods.
fn record(file: &str, line: u64, at: &[ImageAt], judged: Judged, out: &mut Judgement) {
    if !judged.judged {
        out.skipped += 1;
        return;
    }
    let mut image_lines = Vec::with_capacity(judged.images.len());
    for (i, image) in judged.images.iter().enumerate() {
        let line = match image.field {
            Field::ImageVolume => volume_line(at, &image.name),
            field => {
                let index = judged.images[..i]
                    .iter()
                    .filter(|other| other.field == field)
                    .count();
                container_line(at, list_of(field), index)
            }
        };
        image_lines.push(line);
    }
    out.objects.push(Object {
        file: file.to_owned(),
        line,
        image_lines,
        judged,
    });
}

/// The pod spec list of a container field.
fn list_of(field: Field) -> &'static str {
    match field {
        Field::Container => "containers",
        Field::InitContainer => "initContainers",
        Field::EphemeralContainer => "ephemeralContainers",
        Field::ImageVolume => "volumes",
    }
}

/// Streams the objects of one input to `each`.
fn read(
    input: &Input,
    mut each: impl FnMut(&str, Document) -> Result<(), ManifestError>,
) -> Result<(), ManifestError> {
    let file = input.name();
    let mut failed: Option<ManifestError> = None;
    let mut run = |reader: &mut dyn Read| {
        yaml::documents(&mut ReadRef(reader), |document| {
            each(&file, document).map_err(|e| {
                failed = Some(e);
                YamlError {
                    line: 0,
                    message: String::new(),
                }
            })
        })
    };
    let result = match input {
        Input::Stdin => run(&mut std::io::stdin().lock()),
        Input::File(path) => {
            let mut f = std::fs::File::open(path).map_err(|error| ManifestError::Read {
                file: file.clone(),
                error,
            })?;
            run(&mut f)
        }
    };
    if let Some(e) = failed {
        return Err(e);
    }
    result.map_err(|error| ManifestError::Yaml {
        file: file.clone(),
        error,
    })
}

/// `&mut dyn Read` as a sized reader.
struct ReadRef<'r>(&'r mut dyn Read);

impl Read for ReadRef<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}
