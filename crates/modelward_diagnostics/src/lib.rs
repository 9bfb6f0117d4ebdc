//! The shared vocabulary of modelward: what a finding is, where it was found, how bad it is,
//! and the report a scan produces.
//!
//! This crate is a leaf: parsers emit [`Fact`]s (a rule code plus what was seen), the policy
//! turns facts into [`Finding`]s (adding severity and rule name from the catalog), and the
//! renderers read a [`ScanReport`]. Nothing here parses, judges or prints.
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};
use std::fmt;

mod collect;
pub use collect::FactCollector;

/// One rule of the catalog: its documentation, as reports that describe rules (SARIF) need
/// it. The policy loads and validates them; renderers get them as data.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable code, e.g. `PKL101`.
    pub code: String,
    /// Kebab-case name, e.g. `code-execution-global`.
    pub name: String,
    /// Default severity.
    pub severity: Severity,
    /// Default confidence.
    pub confidence: Confidence,
    /// One line.
    pub summary: String,
    /// Why it matters (Markdown).
    pub why: String,
}

/// Version of the JSON document shape (`--format json`); bump on any breaking change.
pub const SCHEMA_VERSION: u32 = 1;

/// How bad a finding is. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing, never a problem by itself.
    Info,
    /// Unusual but not a reason to distrust the file.
    Low,
    /// Not known to be safe: review before loading.
    Medium,
    /// Very likely harmful, or a structure real writers never produce.
    High,
    /// Runs code, touches the system or reaches every other callable when loaded.
    Critical,
}

impl Severity {
    /// All severities, lowest first.
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The lowercase name used in JSON, configuration and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parses the lowercase name; `None` for anything else.
    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL
            .into_iter()
            .find(|sev| sev.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How sure modelward is that the finding means what its message says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// A heuristic: could well be benign.
    Low,
    /// Likely, but the static view cannot be sure.
    Medium,
    /// Read directly from the bytes: this is what the loader would do.
    High,
}

/// The verdict on one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Scanned; no finding above low.
    Clean,
    /// Scanned; something not known to be safe (a medium finding).
    Suspicious,
    /// Scanned; a critical or high finding.
    Malicious,
    /// Nothing model-related to judge: the content is no format modelward knows, the file is
    /// empty, or it is plain text in which nothing model-related was found (see
    /// [`FileReport::finish`]).
    Skipped,
    /// Nothing at all could be read.
    Error,
}

impl Verdict {
    /// The verdict that a set of findings earns for a file that was read.
    pub fn from_findings<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Verdict {
        match findings.into_iter().map(|f| f.severity).max() {
            Some(Severity::Critical | Severity::High) => Verdict::Malicious,
            Some(Severity::Medium) => Verdict::Suspicious,
            _ => Verdict::Clean,
        }
    }

    /// The lowercase name used in JSON and text output.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Clean => "clean",
            Verdict::Suspicious => "suspicious",
            Verdict::Malicious => "malicious",
            Verdict::Skipped => "skipped",
            Verdict::Error => "error",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a finding is: the file, the chain of archive members inside it, and a byte offset
/// inside the innermost member (or the file itself when `members` is empty).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct Location {
    /// The file as given on the command line, or joined under the directory given.
    pub path: String,
    /// Archive members from outermost to innermost, e.g. `["model/ckpt.zip", "archive/data.pkl"]`.
    pub members: Vec<String>,
    /// Byte offset in the innermost member (or file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

impl Location {
    /// A location in a file, outside any member.
    pub fn file(path: impl Into<String>) -> Location {
        Location {
            path: path.into(),
            members: Vec::new(),
            offset: None,
        }
    }

    /// The same file and members at another offset.
    pub fn at(&self, offset: Option<u64>) -> Location {
        Location {
            path: self.path.clone(),
            members: self.members.clone(),
            offset,
        }
    }

    /// The location one member deeper.
    pub fn member(&self, name: impl Into<String>) -> Location {
        let mut members = self.members.clone();
        members.push(name.into());
        Location {
            path: self.path.clone(),
            members,
            offset: None,
        }
    }
}

impl fmt::Display for Location {
    /// `bundle.tar.gz!model/ckpt.zip!archive/data.pkl@1234`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)?;
        for m in &self.members {
            write!(f, "!{m}")?;
        }
        if let Some(off) = self.offset {
            write!(f, "@{off}")?;
        }
        Ok(())
    }
}

/// What a parser or analysis saw, before the policy gives it a severity.
///
/// `rule` is a code from the rule catalog (`PKL101`, `ARC103`, ...); the policy looks up its
/// severity, name and documentation. `severity` overrides the catalog default only for the
/// few rules whose severity depends on the data (the catalog says which).
#[derive(Debug, Clone, PartialEq)]
pub struct Fact {
    /// Rule code from the catalog.
    pub rule: &'static str,
    /// One line, lowercase start, no trailing period: what was seen.
    pub message: String,
    /// Byte offset in the current member or file.
    pub offset: Option<u64>,
    /// The construct rendered readably, e.g. `os.system('curl … | sh')`.
    pub evidence: Option<String>,
    /// Severity when the rule's catalog entry lets the data decide.
    pub severity: Option<Severity>,
    /// How sure we are; the catalog default when `None`.
    pub confidence: Option<Confidence>,
    /// Why it matters, when more specific than the rule's summary.
    pub why: Option<String>,
    /// Non-zero when this fact stands for that many more facts of its rule that a
    /// [`FactCollector`] did not keep (its message says so); the scanner folds it into the
    /// file's one per-rule summary.
    pub more: usize,
}

impl Fact {
    /// A fact with a message and nothing else.
    pub fn new(rule: &'static str, message: impl Into<String>) -> Fact {
        Fact {
            rule,
            message: message.into(),
            offset: None,
            evidence: None,
            severity: None,
            confidence: None,
            why: None,
            more: 0,
        }
    }

    /// Sets why it matters.
    #[must_use]
    pub fn why(mut self, why: impl Into<String>) -> Fact {
        self.why = Some(why.into());
        self
    }

    /// Sets the byte offset.
    #[must_use]
    pub fn at(mut self, offset: u64) -> Fact {
        self.offset = Some(offset);
        self
    }

    /// Sets the evidence.
    #[must_use]
    pub fn evidence(mut self, evidence: impl Into<String>) -> Fact {
        self.evidence = Some(evidence.into());
        self
    }

    /// Sets a data-dependent severity.
    #[must_use]
    pub fn severity(mut self, severity: Severity) -> Fact {
        self.severity = Some(severity);
        self
    }

    /// Sets the confidence.
    #[must_use]
    pub fn confidence(mut self, confidence: Confidence) -> Fact {
        self.confidence = Some(confidence);
        self
    }
}

/// One finding in a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable rule code, e.g. `PKL101`.
    pub rule: String,
    /// The rule's kebab-case name, e.g. `dangerous-global`.
    pub name: String,
    /// How bad it is.
    pub severity: Severity,
    /// How sure we are.
    pub confidence: Confidence,
    /// One line: what was seen.
    pub message: String,
    /// Where.
    pub location: Location,
    /// The construct rendered readably.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// Why it matters.
    pub why: String,
    /// Whether the finding comes from reading the file (static, the default, not written in
    /// JSON) or from loading it in the sandbox (`modelward detonate`).
    #[serde(default, skip_serializing_if = "Source::is_static")]
    pub source: Source,
}

/// Where a finding comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Read from the bytes; nothing was executed.
    #[default]
    Static,
    /// Seen while the file was loaded by its real loader inside the sandbox.
    Dynamic,
}

impl Source {
    /// The lowercase name used in JSON and SARIF.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Static => "static",
            Source::Dynamic => "dynamic",
        }
    }

    /// For `skip_serializing_if`.
    pub fn is_static(&self) -> bool {
        *self == Source::Static
    }
}

/// The format name of text that is none of the text formats model loaders read.
pub const PLAIN_TEXT: &str = "text";

/// The result for one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileReport {
    /// The file as given, or joined under the directory given.
    pub path: String,
    /// The outermost format recognised by content (`pickle`, `zip`, `pytorch-zip`, ...), or
    /// `unknown`.
    pub format: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The highest severity among the findings, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// Findings, most severe first.
    pub findings: Vec<Finding>,
    /// File size in bytes.
    pub size: u64,
    /// Bytes modelward actually read from the file (headers, directories, pickles).
    pub bytes_read: u64,
    /// Why the file could not be read, when the verdict is `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// sha256 of the whole file (lower-case hex), when modelward hashed it (e.g. for a
    /// CycloneDX BOM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// For a Hugging Face Hub file stored in LFS: the sha256 the Hub lists for it (its LFS oid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub_sha256: Option<String>,
}

impl FileReport {
    /// Sorts findings (most severe first, then by location) and sets verdict and severity.
    /// `known` says whether its format was recognised.
    ///
    /// The counting rule: a file is judged (clean, suspicious, malicious) when it holds a
    /// format that can carry a model or code, or when anything was found in it. A file
    /// without findings is skipped when its format is unknown (an empty file included) or
    /// when it is plain `text`: the scanner names text `json`, `python`, `jinja` or
    /// `yaml-config` when it is one of the text formats loaders read (Hugging Face configs,
    /// `trust_remote_code` sources, chat templates, Hydra configs), so a `text` file without
    /// findings is a README, a `.gitattributes`, a licence. Skipped files are counted apart.
    pub fn finish(&mut self, known: bool) {
        self.findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.location.members.cmp(&b.location.members))
                .then_with(|| a.location.offset.cmp(&b.location.offset))
                .then_with(|| a.rule.cmp(&b.rule))
        });
        self.severity = self.findings.iter().map(|f| f.severity).max();
        self.verdict = if self.error.is_some() {
            Verdict::Error
        } else if (!known || self.format == PLAIN_TEXT) && self.findings.is_empty() {
            Verdict::Skipped
        } else {
            Verdict::from_findings(&self.findings)
        };
    }
}

impl FileReport {
    /// Adds findings seen when the file was loaded in the sandbox. The verdict can only rise:
    /// dynamic evidence never clears what the static scan found (an `error` verdict stays).
    pub fn add_dynamic(&mut self, findings: impl IntoIterator<Item = Finding>) {
        let before = self.verdict;
        self.findings.extend(findings.into_iter().map(|mut f| {
            f.source = Source::Dynamic;
            f
        }));
        let known = before != Verdict::Skipped;
        self.finish(known);
        let rank = |v: Verdict| match v {
            Verdict::Malicious => 3,
            Verdict::Suspicious => 2,
            Verdict::Clean | Verdict::Skipped => 1,
            Verdict::Error => 4,
        };
        if rank(self.verdict) <= rank(before) {
            self.verdict = before;
        }
    }
}

/// The tool that wrote a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// Always `modelward`.
    pub name: String,
    /// The crate version.
    pub version: String,
}

/// Counts over a whole scan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Summary {
    /// Files reported.
    pub files: u64,
    /// Files per verdict.
    pub clean: u64,
    /// See [`Verdict::Suspicious`].
    pub suspicious: u64,
    /// See [`Verdict::Malicious`].
    pub malicious: u64,
    /// See [`Verdict::Skipped`].
    pub skipped: u64,
    /// See [`Verdict::Error`].
    pub errors: u64,
    /// Findings per severity, keyed by the lowercase severity name.
    pub findings: std::collections::BTreeMap<String, u64>,
    /// Bytes read over all files.
    pub bytes_read: u64,
    /// Total size of all files.
    pub bytes_total: u64,
    /// Wall time of the scan in milliseconds.
    pub elapsed_ms: u64,
    /// Bytes transferred over the network for remote sources (absent when nothing was remote).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bytes_transferred: u64,
    /// HTTP requests made for remote sources (absent when nothing was remote).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub requests: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Summary {
    /// Files that were judged: clean, suspicious or malicious (skipped files and errors are
    /// not).
    pub fn judged(&self) -> u64 {
        self.clean + self.suspicious + self.malicious
    }
}

/// A path or source given to the command that could not be scanned at all (it does not exist,
/// a repository answered 401): no file was read, so it is not counted among the files, and the
/// command exits 2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceError {
    /// The path or URL as given.
    pub source: String,
    /// What went wrong and what to do about it, in one line.
    pub error: String,
}

/// The whole report: the JSON document of `--format json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanReport {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Who wrote it.
    pub tool: Tool,
    /// Every file scanned beneath the given paths, in a stable order.
    pub files: Vec<FileReport>,
    /// Totals.
    pub summary: Summary,
    /// Paths and sources that could not be scanned at all (absent when there are none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<SourceError>,
}

impl ScanReport {
    /// A report over `files`, with the summary computed from them.
    pub fn new(tool_version: &str, mut files: Vec<FileReport>, elapsed_ms: u64) -> ScanReport {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let mut summary = Summary {
            elapsed_ms,
            ..Summary::default()
        };
        for sev in Severity::ALL {
            summary.findings.insert(sev.as_str().to_owned(), 0);
        }
        for f in &files {
            summary.files += 1;
            summary.bytes_read += f.bytes_read;
            summary.bytes_total += f.size;
            match f.verdict {
                Verdict::Clean => summary.clean += 1,
                Verdict::Suspicious => summary.suspicious += 1,
                Verdict::Malicious => summary.malicious += 1,
                Verdict::Skipped => summary.skipped += 1,
                Verdict::Error => summary.errors += 1,
            }
            for finding in &f.findings {
                *summary
                    .findings
                    .entry(finding.severity.as_str().to_owned())
                    .or_default() += 1;
            }
        }
        ScanReport {
            schema_version: SCHEMA_VERSION,
            tool: Tool {
                name: "modelward".to_owned(),
                version: tool_version.to_owned(),
            },
            files,
            summary,
            errors: Vec::new(),
        }
    }

    /// The highest severity of any finding in the report.
    pub fn max_severity(&self) -> Option<Severity> {
        self.files.iter().filter_map(|f| f.severity).max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(sev: Severity) -> Finding {
        Finding {
            rule: "X".into(),
            name: "x".into(),
            severity: sev,
            confidence: Confidence::High,
            message: String::new(),
            location: Location::file("f"),
            evidence: None,
            why: String::new(),
            source: Source::Static,
        }
    }

    #[test]
    fn verdict_follows_the_worst_finding() {
        assert_eq!(Verdict::from_findings(&[]), Verdict::Clean);
        assert_eq!(
            Verdict::from_findings(&[finding(Severity::Low), finding(Severity::Info)]),
            Verdict::Clean
        );
        assert_eq!(
            Verdict::from_findings(&[finding(Severity::Medium)]),
            Verdict::Suspicious
        );
        assert_eq!(
            Verdict::from_findings(&[finding(Severity::Medium), finding(Severity::High)]),
            Verdict::Malicious
        );
    }

    fn report(verdict: Verdict, findings: Vec<Finding>) -> FileReport {
        FileReport {
            path: "f".into(),
            format: "pickle".into(),
            verdict,
            severity: findings.iter().map(|f| f.severity).max(),
            findings,
            size: 1,
            bytes_read: 1,
            error: None,
            sha256: None,
            hub_sha256: None,
        }
    }

    #[test]
    fn dynamic_findings_only_ever_raise_the_verdict() {
        let mut r = report(Verdict::Malicious, vec![finding(Severity::Critical)]);
        r.add_dynamic([finding(Severity::Info)]);
        assert_eq!(r.verdict, Verdict::Malicious);
        assert_eq!(
            r.findings.iter().filter(|f| f.source == Source::Dynamic).count(),
            1
        );
        let mut r = report(Verdict::Clean, vec![]);
        r.add_dynamic([finding(Severity::High)]);
        assert_eq!(r.verdict, Verdict::Malicious);
        // An unknown format with only notes from the sandbox stays skipped, not clean.
        let mut r = report(Verdict::Skipped, vec![]);
        r.format = "unknown".into();
        r.add_dynamic([finding(Severity::Low)]);
        assert_eq!(r.verdict, Verdict::Skipped);
        // A static finding never gets the dynamic marker in JSON.
        let json = serde_json::to_string(&finding(Severity::Low)).unwrap();
        assert!(!json.contains("source"), "{json}");
    }

    #[test]
    fn plain_text_and_unknown_files_without_findings_are_skipped() {
        let report = |format: &str, findings: Vec<Finding>, known: bool| {
            let mut r = FileReport {
                path: "f".into(),
                format: format.into(),
                verdict: Verdict::Clean,
                severity: None,
                findings,
                size: 1,
                bytes_read: 1,
                error: None,
                sha256: None,
                hub_sha256: None,
            };
            r.finish(known);
            r.verdict
        };
        assert_eq!(report(PLAIN_TEXT, vec![], true), Verdict::Skipped);
        assert_eq!(report("unknown", vec![], false), Verdict::Skipped);
        assert_eq!(report("json", vec![], true), Verdict::Clean);
        assert_eq!(report("python", vec![], true), Verdict::Clean);
        assert_eq!(
            report(PLAIN_TEXT, vec![finding(Severity::Medium)], true),
            Verdict::Suspicious
        );
        assert_eq!(
            report(PLAIN_TEXT, vec![finding(Severity::Info)], true),
            Verdict::Clean
        );
    }

    #[test]
    fn location_renders_as_a_chain() {
        let loc = Location::file("bundle.tar.gz")
            .member("model/ckpt.zip")
            .member("archive/data.pkl")
            .at(Some(12));
        assert_eq!(
            loc.to_string(),
            "bundle.tar.gz!model/ckpt.zip!archive/data.pkl@12"
        );
    }

    #[test]
    fn severity_parses_its_own_names_only() {
        for s in Severity::ALL {
            assert_eq!(Severity::parse(s.as_str()), Some(s));
        }
        assert_eq!(Severity::parse("severe"), None);
    }
}
