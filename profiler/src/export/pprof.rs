//! pprof (`profile.proto`, gzipped): what `go tool pprof`, Pyroscope and Grafana read.
//!
//! Owns: the protobuf messages (derived by hand with prost, field numbers from
//! `github.com/google/pprof/proto/profile.proto`; no protoc), building a profile from a
//! report, gzip, and a plain-text dump for tests. Waiters are laid out as Go's mutex
//! profile is: sample types `contentions/count` and `delay/nanoseconds`, period type
//! `contentions/count`, period 1; each listed stack of a site is one sample, and the
//! site's remaining waits hang under an `[other stacks]` root (as in
//! `export::folded`). Wakers: sample types `wake_calls/count` and `woken/count`, one
//! sample per waker on its hottest stack. Each sample carries the string labels
//! `kind` (mutex, rwlock-read, …) and `site` (the site id). Inlined frames share one
//! location with several lines, innermost first; one mapping per module.
//!
//! Must not: do I/O, or fail on odd reports (a bad hex address becomes 0).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{Read, Write as _};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use prost::Message;

use crate::export::{OTHER_STACKS, frame_name};
use crate::render::fit::clean_nonempty;
use crate::render::names::strip_legacy_hash;
use crate::report::model::{Frame, Report};

#[derive(Clone, PartialEq, Message)]
pub struct Profile {
    #[prost(message, repeated, tag = "1")]
    pub sample_type: Vec<ValueType>,
    #[prost(message, repeated, tag = "2")]
    pub sample: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub mapping: Vec<Mapping>,
    #[prost(message, repeated, tag = "4")]
    pub location: Vec<Location>,
    #[prost(message, repeated, tag = "5")]
    pub function: Vec<Function>,
    #[prost(string, repeated, tag = "6")]
    pub string_table: Vec<String>,
    #[prost(int64, tag = "7")]
    pub drop_frames: i64,
    #[prost(int64, tag = "8")]
    pub keep_frames: i64,
    #[prost(int64, tag = "9")]
    pub time_nanos: i64,
    #[prost(int64, tag = "10")]
    pub duration_nanos: i64,
    #[prost(message, optional, tag = "11")]
    pub period_type: Option<ValueType>,
    #[prost(int64, tag = "12")]
    pub period: i64,
    #[prost(int64, repeated, tag = "13")]
    pub comment: Vec<i64>,
    #[prost(int64, tag = "14")]
    pub default_sample_type: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct ValueType {
    #[prost(int64, tag = "1")]
    pub r#type: i64,
    #[prost(int64, tag = "2")]
    pub unit: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct Sample {
    /// Leaf first.
    #[prost(uint64, repeated, tag = "1")]
    pub location_id: Vec<u64>,
    #[prost(int64, repeated, tag = "2")]
    pub value: Vec<i64>,
    #[prost(message, repeated, tag = "3")]
    pub label: Vec<Label>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Label {
    #[prost(int64, tag = "1")]
    pub key: i64,
    #[prost(int64, tag = "2")]
    pub str: i64,
    #[prost(int64, tag = "3")]
    pub num: i64,
    #[prost(int64, tag = "4")]
    pub num_unit: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct Mapping {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(uint64, tag = "2")]
    pub memory_start: u64,
    #[prost(uint64, tag = "3")]
    pub memory_limit: u64,
    #[prost(uint64, tag = "4")]
    pub file_offset: u64,
    #[prost(int64, tag = "5")]
    pub filename: i64,
    #[prost(int64, tag = "6")]
    pub build_id: i64,
    #[prost(bool, tag = "7")]
    pub has_functions: bool,
    #[prost(bool, tag = "8")]
    pub has_filenames: bool,
    #[prost(bool, tag = "9")]
    pub has_line_numbers: bool,
    #[prost(bool, tag = "10")]
    pub has_inline_frames: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct Location {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(uint64, tag = "2")]
    pub mapping_id: u64,
    #[prost(uint64, tag = "3")]
    pub address: u64,
    /// Innermost (most inlined) first; the last line is the caller.
    #[prost(message, repeated, tag = "4")]
    pub line: Vec<Line>,
    #[prost(bool, tag = "5")]
    pub is_folded: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct Line {
    #[prost(uint64, tag = "1")]
    pub function_id: u64,
    #[prost(int64, tag = "2")]
    pub line: i64,
    #[prost(int64, tag = "3")]
    pub column: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct Function {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(int64, tag = "2")]
    pub name: i64,
    #[prost(int64, tag = "3")]
    pub system_name: i64,
    #[prost(int64, tag = "4")]
    pub filename: i64,
    #[prost(int64, tag = "5")]
    pub start_line: i64,
}

/// A location's identity: mapping, address, and (function id, line) per line.
type LocationKey = (u64, u64, Vec<(u64, i64)>);

/// Interning tables while a profile is built.
#[derive(Default)]
struct Builder {
    profile: Profile,
    strings: HashMap<String, i64>,
    functions: HashMap<(i64, i64), u64>,
    mappings: HashMap<String, u64>,
    locations: HashMap<LocationKey, u64>,
}

impl Builder {
    fn new() -> Self {
        let mut b = Self::default();
        b.string("");
        b
    }

    fn string(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.strings.get(s) {
            return i;
        }
        let i = self.profile.string_table.len() as i64;
        self.profile.string_table.push(s.to_owned());
        self.strings.insert(s.to_owned(), i);
        i
    }

    fn value_type(&mut self, ty: &str, unit: &str) -> ValueType {
        ValueType {
            r#type: self.string(ty),
            unit: self.string(unit),
        }
    }

    fn function(&mut self, name: &str, file: Option<&str>) -> u64 {
        let name = self.string(name);
        let file = self.string(file.unwrap_or(""));
        if let Some(&id) = self.functions.get(&(name, file)) {
            return id;
        }
        let id = self.profile.function.len() as u64 + 1;
        self.profile.function.push(Function {
            id,
            name,
            system_name: name,
            filename: file,
            start_line: 0,
        });
        self.functions.insert((name, file), id);
        id
    }

    fn mapping(&mut self, module: Option<&str>) -> u64 {
        let Some(module) = module else { return 0 };
        if let Some(&id) = self.mappings.get(module) {
            return id;
        }
        let id = self.profile.mapping.len() as u64 + 1;
        let filename = self.string(module);
        self.profile.mapping.push(Mapping {
            id,
            filename,
            has_functions: true,
            has_filenames: true,
            has_line_numbers: true,
            has_inline_frames: true,
            ..Mapping::default()
        });
        self.mappings.insert(module.to_owned(), id);
        id
    }

    /// One location for a frame and the frames inlined into it (`group`: innermost
    /// first, the last one the real frame).
    fn location(&mut self, group: &[&Frame]) -> u64 {
        let Some(outer) = group.last() else { return 0 };
        let address = parse_hex(&outer.address);
        let mapping = self.mapping(outer.module.as_deref());
        let lines: Vec<(u64, i64)> = group
            .iter()
            .map(|f| {
                let name = frame_name(f);
                (
                    self.function(&name, f.file.as_deref()),
                    i64::from(f.line.unwrap_or(0)),
                )
            })
            .collect();
        self.synthetic_location(mapping, address, lines)
    }

    fn synthetic_location(&mut self, mapping: u64, address: u64, lines: Vec<(u64, i64)>) -> u64 {
        let key = (mapping, address, lines);
        if let Some(&id) = self.locations.get(&key) {
            return id;
        }
        let id = self.profile.location.len() as u64 + 1;
        self.profile.location.push(Location {
            id,
            mapping_id: mapping,
            address,
            line: key
                .2
                .iter()
                .map(|&(function_id, line)| Line {
                    function_id,
                    line,
                    column: 0,
                })
                .collect(),
            is_folded: false,
        });
        self.locations.insert(key, id);
        id
    }

    /// Location ids, leaf first, for frames given innermost first.
    fn stack(&mut self, frames: &[Frame]) -> Vec<u64> {
        let mut ids = Vec::new();
        let mut group: Vec<&Frame> = Vec::new();
        for f in frames {
            group.push(f);
            if !f.inlined {
                ids.push(self.location(&group));
                group.clear();
            }
        }
        if !group.is_empty() {
            // Inlined frames with no real frame after them (a truncated stack).
            ids.push(self.location(&group));
        }
        ids
    }

    /// `[other stacks]` → the site's own function: where a site's unlisted waits go.
    fn other_stacks(
        &mut self,
        leaf: Option<&str>,
        file: Option<&str>,
        line: Option<u32>,
    ) -> Vec<u64> {
        let leaf_name = clean_nonempty(leaf.map_or("?", strip_legacy_hash));
        let leaf_fn = self.function(&leaf_name, file);
        let root_fn = self.function(OTHER_STACKS, None);
        let leaf_loc = self.synthetic_location(0, 0, vec![(leaf_fn, i64::from(line.unwrap_or(0)))]);
        let root_loc = self.synthetic_location(0, 0, vec![(root_fn, 0)]);
        vec![leaf_loc, root_loc]
    }

    fn sample(&mut self, location_id: Vec<u64>, value: [u64; 2], kind: &str, site: &str) {
        if value[1] == 0 && value[0] == 0 {
            return;
        }
        let label = vec![
            Label {
                key: self.string("kind"),
                str: self.string(kind),
                ..Label::default()
            },
            Label {
                key: self.string("site"),
                str: self.string(site),
                ..Label::default()
            },
        ];
        self.profile.sample.push(Sample {
            location_id,
            value: value
                .iter()
                .map(|&v| i64::try_from(v).unwrap_or(i64::MAX))
                .collect(),
            label,
        });
    }
}

/// `0x1f` → 31; anything unparsable → 0.
fn parse_hex(s: &str) -> u64 {
    s.strip_prefix("0x")
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .unwrap_or(0)
}

fn header(b: &mut Builder, report: &Report, types: [(&str, &str); 2]) {
    b.profile.sample_type = types
        .iter()
        .map(|(t, u)| b.value_type(t, u))
        .collect::<Vec<_>>();
    b.profile.period_type = Some(b.value_type(types[0].0, types[0].1));
    b.profile.period = 1;
    b.profile.time_nanos =
        i64::try_from(report.started_unix_ms.saturating_mul(1_000_000)).unwrap_or(i64::MAX);
    b.profile.duration_nanos = i64::try_from(report.duration_ns).unwrap_or(i64::MAX);
    let comment = format!("lockprof {}", report.lockprof_version);
    b.profile.comment = vec![b.string(&comment)];
}

/// Waiter stacks as Go's mutex profile: contentions and delay.
pub fn waits(report: &Report) -> Profile {
    let mut b = Builder::new();
    header(
        &mut b,
        report,
        [("contentions", "count"), ("delay", "nanoseconds")],
    );
    for site in &report.sites {
        let (mut waits, mut ns) = (0u64, 0u64);
        for stack in &site.stacks {
            let ids = b.stack(&stack.frames);
            b.sample(
                ids,
                [stack.wait.waits, stack.wait.total_wait_ns],
                site.kind.as_str(),
                &site.id,
            );
            waits = waits.saturating_add(stack.wait.waits);
            ns = ns.saturating_add(stack.wait.total_wait_ns);
        }
        let rest = [
            site.waits.saturating_sub(waits),
            site.total_wait_ns.saturating_sub(ns),
        ];
        if rest != [0, 0] {
            let ids = b.other_stacks(site.function.as_deref(), site.file.as_deref(), site.line);
            b.sample(ids, rest, site.kind.as_str(), &site.id);
        }
    }
    b.profile
}

/// Waker stacks: wake calls and threads woken, each waker on its hottest stack.
pub fn wakers(report: &Report) -> Profile {
    let mut b = Builder::new();
    header(
        &mut b,
        report,
        [("wake_calls", "count"), ("woken", "count")],
    );
    for waker in &report.wakers {
        let ids = if waker.stack.is_empty() {
            b.other_stacks(waker.function.as_deref(), waker.file.as_deref(), waker.line)
        } else {
            b.stack(&waker.stack)
        };
        b.sample(
            ids,
            [waker.calls, waker.woken],
            waker.kind.as_str(),
            &waker.id,
        );
    }
    b.profile
}

/// The profile, protobuf-encoded and gzipped (what `go tool pprof` reads).
pub fn to_gzip(profile: &Profile) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    // Writing to a Vec cannot fail.
    gz.write_all(&profile.encode_to_vec())
        .and_then(|()| gz.finish())
        .expect("gzip into memory")
}

/// Reads a gzipped (or plain) profile back.
pub fn from_bytes(bytes: &[u8]) -> Result<Profile, String> {
    let raw = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut raw = Vec::new();
        GzDecoder::new(bytes)
            .read_to_end(&mut raw)
            .map_err(|e| format!("not a gzipped profile: {e}"))?;
        raw
    } else {
        bytes.to_vec()
    };
    Profile::decode(raw.as_slice()).map_err(|e| format!("not a pprof profile: {e}"))
}

/// A plain-text dump, independent of id numbering: header, then each sample with its
/// values, labels and frames (leaf first, `function file:line [module]`), in order.
pub fn to_text(p: &Profile) -> String {
    let s = |i: i64| -> &str {
        usize::try_from(i)
            .ok()
            .and_then(|i| p.string_table.get(i))
            .map_or("<bad string index>", String::as_str)
    };
    let vt = |v: &ValueType| format!("{}/{}", s(v.r#type), s(v.unit));
    let mut out = String::new();
    let types: Vec<String> = p.sample_type.iter().map(vt).collect();
    let _ = writeln!(out, "sample types: {}", types.join(" "));
    let _ = writeln!(
        out,
        "period: {} {}",
        p.period,
        p.period_type.as_ref().map(vt).unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "time_nanos: {}\nduration_nanos: {}",
        p.time_nanos, p.duration_nanos
    );
    for c in &p.comment {
        let _ = writeln!(out, "comment: {}", s(*c));
    }
    let functions: HashMap<u64, &Function> = p.function.iter().map(|f| (f.id, f)).collect();
    let mappings: HashMap<u64, &Mapping> = p.mapping.iter().map(|m| (m.id, m)).collect();
    let locations: HashMap<u64, &Location> = p.location.iter().map(|l| (l.id, l)).collect();
    for sample in &p.sample {
        let values: Vec<String> = sample.value.iter().map(i64::to_string).collect();
        let labels: Vec<String> = sample
            .label
            .iter()
            .map(|l| format!("{}={}", s(l.key), s(l.str)))
            .collect();
        let _ = writeln!(out, "sample {} {{{}}}", values.join(" "), labels.join(", "));
        for id in &sample.location_id {
            let Some(loc) = locations.get(id) else {
                let _ = writeln!(out, "    <missing location {id}>");
                continue;
            };
            let module = mappings
                .get(&loc.mapping_id)
                .map(|m| format!(" [{}]", s(m.filename)))
                .unwrap_or_default();
            for (i, line) in loc.line.iter().enumerate() {
                let Some(f) = functions.get(&line.function_id) else {
                    let _ = writeln!(out, "    <missing function {}>", line.function_id);
                    continue;
                };
                let inlined = if i + 1 < loc.line.len() {
                    " (inlined)"
                } else {
                    ""
                };
                let file = s(f.filename);
                let place = if file.is_empty() {
                    String::new()
                } else {
                    format!(" {file}:{}", line.line)
                };
                let _ = writeln!(
                    out,
                    "    {:#x} {}{place}{module}{inlined}",
                    loc.address,
                    s(f.name)
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::sample_report;

    #[test]
    fn round_trips_through_gzip_and_protobuf() {
        let report = sample_report();
        let profile = waits(&report);
        let bytes = to_gzip(&profile);
        assert_eq!(&bytes[..2], &[0x1f, 0x8b]);
        let back = from_bytes(&bytes).expect("decodes");
        assert_eq!(back, profile);
        assert_eq!(back.string_table[0], "");
    }

    #[test]
    fn delay_adds_up_to_the_sites_wait() {
        let report = sample_report();
        let p = waits(&report);
        let delay: i64 = p.sample.iter().map(|s| s.value[1]).sum();
        let total: u64 = report.sites.iter().map(|s| s.total_wait_ns).sum();
        assert_eq!(delay as u64, total);
        let contentions: i64 = p.sample.iter().map(|s| s.value[0]).sum();
        let waits: u64 = report.sites.iter().map(|s| s.waits).sum();
        assert_eq!(contentions as u64, waits);
        // Every id referenced exists.
        for s in &p.sample {
            for id in &s.location_id {
                assert!(p.location.iter().any(|l| l.id == *id));
            }
        }
    }

    #[test]
    fn inlined_frames_share_a_location() {
        let inl = Frame {
            address: "0x10".to_owned(),
            function: Some("inner".to_owned()),
            inlined: true,
            ..Frame::default()
        };
        let outer = Frame {
            address: "0x10".to_owned(),
            function: Some("outer".to_owned()),
            ..Frame::default()
        };
        let mut b = Builder::new();
        let ids = b.stack(&[inl, outer]);
        assert_eq!(ids.len(), 1);
        assert_eq!(b.profile.location[0].line.len(), 2);
        assert_eq!(b.profile.location[0].address, 0x10);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(from_bytes(&[0x1f, 0x8b, 0, 1]).is_err());
        assert!(from_bytes(&[0xff; 16]).is_err());
        assert!(
            from_bytes(&[]).is_ok(),
            "an empty message is a valid (empty) profile"
        );
    }
}
