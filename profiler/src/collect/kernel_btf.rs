//! Where a field of a kernel struct lies, from the kernel's BTF
//! (`/sys/kernel/btf/vmlinux`): the context-switch probe reads `tgid` of the task
//! taking the CPU directly, at an offset it is given at load time.
//!
//! Owns: a minimal reader of BTF's type section — enough to find a named struct's
//! member, through anonymous structs and unions. Must not: load anything, or keep
//! the (megabytes of) BTF it reads.

use std::fmt;

/// The kernel's own BTF.
const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// `BTF_MAGIC`, little-endian.
const MAGIC: u16 = 0xeb9f;

// BTF kinds (`BTF_KIND_*` of include/uapi/linux/btf.h) this reader needs by name.
const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

/// Why a field's offset could not be found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtfError(String);

impl fmt::Display for BtfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Byte offsets of `task_struct.pid` (the thread id) and `task_struct.tgid` in the
/// running kernel.
pub fn task_id_offsets() -> Result<TaskIdOffsets, BtfError> {
    let btf = std::fs::read(VMLINUX_BTF)
        .map_err(|e| BtfError(format!("cannot read {VMLINUX_BTF}: {e}")))?;
    Ok(TaskIdOffsets {
        pid: member_offset(&btf, "task_struct", "pid")?,
        tgid: member_offset(&btf, "task_struct", "tgid")?,
    })
}

/// Where a task's ids are in the kernel's `struct task_struct`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskIdOffsets {
    pub pid: u32,
    pub tgid: u32,
}

/// Byte offset of member `member` of `struct name` in the BTF blob `btf`.
pub fn member_offset(btf: &[u8], name: &str, member: &str) -> Result<u32, BtfError> {
    let types = Types::parse(btf)?;
    let id = types
        .find_struct(name)
        .ok_or_else(|| BtfError(format!("the kernel's BTF has no struct {name}")))?;
    let bits = types
        .find_member(id, member, 0)
        .ok_or_else(|| BtfError(format!("the kernel's struct {name} has no member {member}")))?;
    Ok(bits / 8)
}

/// The type section, indexed by type id (id 0 is `void`).
struct Types<'a> {
    /// Each type's record (header and the kind's trailing data), by id - 1.
    records: Vec<&'a [u8]>,
    strings: &'a [u8],
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl<'a> Types<'a> {
    fn parse(btf: &'a [u8]) -> Result<Self, BtfError> {
        let bad = |what: &str| BtfError(format!("malformed kernel BTF: {what}"));
        if u16_at(btf, 0) != Some(MAGIC) {
            return Err(bad("no BTF magic (not little-endian BTF?)"));
        }
        // struct btf_header: magic, version, flags, hdr_len, type_off, type_len,
        // str_off, str_len.
        let field = |at| u32_at(btf, at).map(|v| v as usize);
        let (Some(hdr), Some(type_off), Some(type_len), Some(str_off), Some(str_len)) =
            (field(4), field(8), field(12), field(16), field(20))
        else {
            return Err(bad("short header"));
        };
        let section = |off: usize, len: usize| btf.get(hdr + off..hdr + off + len);
        let types = section(type_off, type_len).ok_or_else(|| bad("type section"))?;
        let strings = section(str_off, str_len).ok_or_else(|| bad("string section"))?;
        let mut records = Vec::new();
        let mut at = 0;
        while at < types.len() {
            let info = u32_at(types, at + 4).ok_or_else(|| bad("short type"))?;
            let len = 12
                + extra_len((info >> 24) & 0x1f, (info & 0xffff) as usize)
                    .ok_or_else(|| bad("unknown type kind"))?;
            records.push(types.get(at..at + len).ok_or_else(|| bad("short type"))?);
            at += len;
        }
        Ok(Self { records, strings })
    }

    fn record(&self, id: u32) -> Option<&'a [u8]> {
        self.records.get((id as usize).checked_sub(1)?).copied()
    }

    fn kind(record: &[u8]) -> u32 {
        u32_at(record, 4).map_or(0, |info| (info >> 24) & 0x1f)
    }

    fn name(&self, name_off: u32) -> &'a [u8] {
        let rest = self.strings.get(name_off as usize..).unwrap_or(&[]);
        &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())]
    }

    /// The id of the struct called `name` with members (not a declaration).
    fn find_struct(&self, name: &str) -> Option<u32> {
        self.records.iter().enumerate().find_map(|(i, r)| {
            let named = self.name(u32_at(r, 0)?) == name.as_bytes();
            let with_members = u32_at(r, 4)? & 0xffff > 0;
            (Self::kind(r) == KIND_STRUCT && named && with_members).then_some(i as u32 + 1)
        })
    }

    /// Bit offset of `member` in struct or union `id` (itself at bit `base`),
    /// looking inside anonymous struct and union members too.
    fn find_member(&self, id: u32, member: &str, base: u32) -> Option<u32> {
        let r = self.record(id)?;
        if !matches!(Self::kind(r), KIND_STRUCT | KIND_UNION) {
            return None;
        }
        let info = u32_at(r, 4)?;
        let bitfields = info >> 31 == 1;
        for m in r[12..].chunks_exact(12) {
            let (name_off, ty, offset) = (u32_at(m, 0)?, u32_at(m, 4)?, u32_at(m, 8)?);
            // With the kind flag, the offset's top 8 bits are a bitfield size.
            let bit = base
                + if bitfields {
                    offset & 0x00ff_ffff
                } else {
                    offset
                };
            if name_off == 0 {
                if let Some(found) = self.find_member(self.strip(ty), member, bit) {
                    return Some(found);
                }
            } else if self.name(name_off) == member.as_bytes() {
                return Some(bit);
            }
        }
        None
    }

    /// `id` without typedefs and qualifiers.
    fn strip(&self, mut id: u32) -> u32 {
        for _ in 0..16 {
            match self.record(id) {
                Some(r)
                    if matches!(
                        Self::kind(r),
                        KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG
                    ) =>
                {
                    id = u32_at(r, 8).unwrap_or(0);
                }
                _ => break,
            }
        }
        id
    }
}

/// Bytes that follow a type's 12-byte header, by kind and `vlen`; `None` for a kind
/// this reader does not know (a newer BTF).
fn extra_len(kind: u32, vlen: usize) -> Option<usize> {
    Some(match kind {
        KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
        KIND_ARRAY => 12,
        KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen,
        KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen,
        // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG.
        2 | 7 | KIND_TYPEDEF..=KIND_RESTRICT | 12 | 16 | KIND_TYPE_TAG => 0,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF blob: 1 `int`; 2 `struct task_struct { int state; u_t <anonymous>; }`
    /// (the second member at byte 4); 3 `union { int a; struct { int x; int tgid; } }`;
    /// 4 that anonymous struct; 5 `typedef union … u_t`. So `tgid` is at byte 8.
    fn blob() -> Vec<u8> {
        let mut strings = b"\0int\0task_struct\0state\0a\0x\0tgid\0u_t\0".to_vec();
        let at = |s: &str, strings: &[u8]| {
            strings
                .windows(s.len() + 1)
                .position(|w| &w[..s.len()] == s.as_bytes() && w[s.len()] == 0)
                .unwrap() as u32
        };
        let (int, task, state, a, x, tgid, u_t) = (
            at("int", &strings),
            at("task_struct", &strings),
            at("state", &strings),
            at("a", &strings),
            at("x", &strings),
            at("tgid", &strings),
            at("u_t", &strings),
        );
        let info = |kind: u32, vlen: u32| (kind << 24) | vlen;
        let mut types: Vec<u32> = Vec::new();
        // 1: int, size 4, encoding word.
        types.extend([int, info(KIND_INT, 0), 4, 32]);
        // 2: struct task_struct, size 16: state @0, <anon> (typedef 5) @32 bits.
        types.extend([task, info(KIND_STRUCT, 2), 16, state, 1, 0, 0, 5, 32]);
        // 3: union, size 8: a @0, <anon struct 4> @0.
        types.extend([0, info(KIND_UNION, 2), 8, a, 1, 0, 0, 4, 0]);
        // 4: struct, size 8: x @0, tgid @32.
        types.extend([0, info(KIND_STRUCT, 2), 8, x, 1, 0, tgid, 1, 32]);
        // 5: typedef u_t → 3.
        types.extend([u_t, info(KIND_TYPEDEF, 0), 3]);
        let types: Vec<u8> = types.iter().flat_map(|w| w.to_le_bytes()).collect();
        strings.push(0);
        let mut out = Vec::new();
        out.extend(MAGIC.to_le_bytes());
        out.extend([1u8, 0]);
        for w in [
            24u32,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            out.extend(w.to_le_bytes());
        }
        out.extend(types);
        out.extend(strings);
        out
    }

    #[test]
    fn finds_a_member_inside_anonymous_unions_and_structs() {
        let b = blob();
        assert_eq!(member_offset(&b, "task_struct", "state"), Ok(0));
        assert_eq!(member_offset(&b, "task_struct", "tgid"), Ok(8));
        assert!(member_offset(&b, "task_struct", "pid").is_err());
        assert!(member_offset(&b, "mm_struct", "tgid").is_err());
        assert!(member_offset(&b[..10], "task_struct", "tgid").is_err());
    }

    #[test]
    fn the_running_kernel_has_task_struct_pid_and_tgid() {
        // Every kernel lockprof runs on has BTF (checked at start-up); tgid follows
        // pid, both inside the first few KiB of task_struct.
        if std::path::Path::new(VMLINUX_BTF).exists() {
            let off = task_id_offsets().expect("id offsets");
            assert!(off.tgid > 0 && off.tgid < 16 * 1024, "{off:?}");
            assert!(off.pid > 0 && off.pid < 16 * 1024, "{off:?}");
            assert_ne!(off.pid, off.tgid);
        }
    }
}
