//! Compile errors of a policy file, each with its line and column.

use std::fmt;

/// What kind of problem a [`CompileError`] is (a closed set, for logs and
/// metrics).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompileErrorKind {
    /// Not YAML, or not the shape of an `ImagePolicy`: a syntax error, an
    /// unknown field, a value of the wrong type, a parse budget exceeded.
    Syntax,
    /// A wrong `apiVersion` or `kind`.
    Header,
    /// A field value that is not allowed (mode, tag, annotation key...).
    Value,
    /// A registry pattern that does not parse.
    Pattern,
    /// A namespace name or glob that is not valid.
    Namespace,
    /// A contract field that this version does not implement.
    Unsupported,
}

/// One problem in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// What kind of problem it is.
    pub kind: CompileErrorKind,
    /// 1-based line (0 when the location is unknown).
    pub line: u32,
    /// 1-based column (0 when the location is unknown).
    pub column: u32,
    /// What is wrong, lowercase, naming the offending value.
    pub message: String,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for CompileError {}

impl CompileError {
    pub(crate) fn new(
        kind: CompileErrorKind,
        line: u32,
        column: u32,
        message: String,
    ) -> CompileError {
        CompileError {
            kind,
            line,
            column,
            message,
        }
    }
}

/// Every problem found in a policy file (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileErrors {
    errors: Vec<CompileError>,
}

impl CompileErrors {
    pub(crate) fn new(errors: Vec<CompileError>) -> CompileErrors {
        CompileErrors { errors }
    }

    /// The errors in the order of the file.
    pub fn iter(&self) -> std::slice::Iter<'_, CompileError> {
        self.errors.iter()
    }

    /// How many errors there are.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Always false: a `CompileErrors` holds at least one error.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

impl<'a> IntoIterator for &'a CompileErrors {
    type Item = &'a CompileError;
    type IntoIter = std::slice::Iter<'a, CompileError>;
    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

impl fmt::Display for CompileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CompileErrors {}
