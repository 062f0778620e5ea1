//! The source lines of a loaded BPF program's JIT image, from the kernel: the
//! program's `jited_line_info` (the address where each line's machine code starts)
//! and `line_info` (its file, line number and source text, as offsets into the
//! program's BTF strings), read with `BPF_OBJ_GET_INFO_BY_FD`, and its BTF blob.
//!
//! Owns: the three `bpf()` commands that reads (by program id, read-only) and the
//! parsing of what they return. Must not: load, attach or change anything, or know
//! what the lines are used for (`breakdown`).

use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};

use anyhow::{Context as _, Result, bail};

// `enum bpf_cmd` values (include/uapi/linux/bpf.h).
const BPF_PROG_GET_FD_BY_ID: i64 = 13;
const BPF_OBJ_GET_INFO_BY_FD: i64 = 15;
const BPF_BTF_GET_FD_BY_ID: i64 = 19;

// Byte offsets in `struct bpf_prog_info`.
const INFO_BTF_ID: usize = 128;
const INFO_NR_LINE_INFO: usize = 148;
const INFO_LINE_INFO: usize = 152;
const INFO_JITED_LINE_INFO: usize = 160;
const INFO_NR_JITED_LINE_INFO: usize = 168;
const INFO_LINE_INFO_REC_SIZE: usize = 172;
const INFO_JITED_LINE_INFO_REC_SIZE: usize = 176;
/// `sizeof(struct bpf_prog_info)` up to `attach_btf_id` (what every 6.x kernel has).
const PROG_INFO_LEN: usize = 228;

// Byte offsets in `struct bpf_btf_info`.
const BTF_INFO_BTF: usize = 0;
const BTF_INFO_SIZE: usize = 8;
const BTF_INFO_LEN: usize = 16;

/// `struct bpf_line_info`: `insn_off`, `file_name_off`, `line_off`, `line_col`.
const LINE_INFO_REC: usize = 16;

/// One source line of a program.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Line {
    pub file: String,
    pub number: u32,
    pub text: String,
}

/// A program's lines by the address where their code starts, ascending.
#[derive(Debug, Default)]
pub struct JitLines {
    starts: Vec<(u64, Line)>,
}

impl JitLines {
    /// The line whose code holds `addr` (the last one starting at or before it).
    pub fn at(&self, addr: u64) -> Option<&Line> {
        let i = self.starts.partition_point(|(a, _)| *a <= addr);
        self.starts.get(i.checked_sub(1)?).map(|(_, l)| l)
    }

    /// The lines of loaded program `id`.
    pub fn of_program(id: u64) -> Result<JitLines> {
        let prog = fd_by_id(BPF_PROG_GET_FD_BY_ID, id).context("open the program by id")?;
        let mut info = vec![0u8; PROG_INFO_LEN];
        obj_info(&prog, &mut info)?;
        let n = u32_at(&info, INFO_NR_JITED_LINE_INFO) as usize;
        let line_rec = u32_at(&info, INFO_LINE_INFO_REC_SIZE) as usize;
        let jited_rec = u32_at(&info, INFO_JITED_LINE_INFO_REC_SIZE) as usize;
        let btf_id = u32_at(&info, INFO_BTF_ID);
        if n == 0 || btf_id == 0 {
            bail!("program {id} has no line info (built without debug info, or not JIT'd)");
        }
        if u32_at(&info, INFO_NR_LINE_INFO) as usize != n
            || line_rec < LINE_INFO_REC
            || jited_rec < 8
        {
            bail!("program {id}: unexpected line info layout");
        }
        // Second call: the same counts with buffers for the two arrays.
        let mut lines = vec![0u8; n * line_rec];
        let mut jited = vec![0u8; n * jited_rec];
        let mut info = vec![0u8; PROG_INFO_LEN];
        put_u32(&mut info, INFO_NR_LINE_INFO, n as u32);
        put_u32(&mut info, INFO_LINE_INFO_REC_SIZE, line_rec as u32);
        put_u64(&mut info, INFO_LINE_INFO, lines.as_mut_ptr() as u64);
        put_u32(&mut info, INFO_NR_JITED_LINE_INFO, n as u32);
        put_u32(&mut info, INFO_JITED_LINE_INFO_REC_SIZE, jited_rec as u32);
        put_u64(&mut info, INFO_JITED_LINE_INFO, jited.as_mut_ptr() as u64);
        obj_info(&prog, &mut info)?;
        let btf = btf_blob(btf_id)?;
        let strings = btf_strings(&btf)?;
        Ok(JitLines::from_records(
            &jited, jited_rec, &lines, line_rec, strings,
        ))
    }

    /// Parallel records: `jited` addresses and `lines` (`struct bpf_line_info`),
    /// their strings in `strings` (the BTF string section).
    fn from_records(
        jited: &[u8],
        jited_rec: usize,
        lines: &[u8],
        line_rec: usize,
        strings: &[u8],
    ) -> JitLines {
        let mut starts: Vec<(u64, Line)> = jited
            .chunks_exact(jited_rec)
            .zip(lines.chunks_exact(line_rec))
            .map(|(addr, rec)| {
                let line_col = u32_at(rec, 12);
                (
                    u64_at(addr, 0),
                    Line {
                        file: string_at(strings, u32_at(rec, 4)),
                        number: line_col >> 10,
                        text: string_at(strings, u32_at(rec, 8)).trim().to_owned(),
                    },
                )
            })
            .collect();
        starts.sort_by_key(|(a, _)| *a);
        JitLines { starts }
    }
}

/// The NUL-terminated string at `off` of a BTF string section ("" when out of it).
fn string_at(strings: &[u8], off: u32) -> String {
    let Some(rest) = strings.get(off as usize..) else {
        return String::new();
    };
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    String::from_utf8_lossy(&rest[..end]).into_owned()
}

/// The string section of a BTF blob (`struct btf_header`: magic, version, flags,
/// `hdr_len`, `type_off`, `type_len`, `str_off`, `str_len`).
fn btf_strings(btf: &[u8]) -> Result<&[u8]> {
    if btf.len() < 24 || u16::from_le_bytes([btf[0], btf[1]]) != 0xeb9f {
        bail!("not a BTF blob");
    }
    let hdr = u32_at(btf, 4) as usize;
    let (off, len) = (u32_at(btf, 16) as usize, u32_at(btf, 20) as usize);
    btf.get(hdr + off..hdr + off + len)
        .context("BTF string section out of bounds")
}

/// The BTF blob of BTF object `id`.
fn btf_blob(id: u32) -> Result<Vec<u8>> {
    let fd = fd_by_id(BPF_BTF_GET_FD_BY_ID, u64::from(id)).context("open the program's BTF")?;
    let mut info = vec![0u8; BTF_INFO_LEN];
    obj_info(&fd, &mut info)?;
    let size = u32_at(&info, BTF_INFO_SIZE) as usize;
    let mut blob = vec![0u8; size];
    let mut info = vec![0u8; BTF_INFO_LEN];
    put_u64(&mut info, BTF_INFO_BTF, blob.as_mut_ptr() as u64);
    put_u32(&mut info, BTF_INFO_SIZE, size as u32);
    obj_info(&fd, &mut info)?;
    Ok(blob)
}

/// `bpf(cmd, attr)`, `attr` a `union bpf_attr` (zero past the command's fields).
fn bpf(cmd: i64, attr: &mut [u8; 32]) -> std::io::Result<i64> {
    // SAFETY: `attr` is a live, writable buffer of the size passed; every pointer the
    // commands used here read from it points into buffers their callers keep alive
    // for the call (`obj_info`).
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr(),
            attr.len() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// An fd for the object `id` of a `*_GET_FD_BY_ID` command.
fn fd_by_id(cmd: i64, id: u64) -> Result<OwnedFd> {
    let mut attr = [0u8; 32];
    put_u32(&mut attr, 0, id as u32);
    let fd = bpf(cmd, &mut attr).with_context(|| format!("bpf() command {cmd} for id {id}"))?;
    // SAFETY: a successful *_GET_FD_BY_ID returns a new fd this process owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `BPF_OBJ_GET_INFO_BY_FD` into `info` (whose pointers, if any, it fills).
fn obj_info(fd: &OwnedFd, info: &mut [u8]) -> Result<()> {
    let mut attr = [0u8; 32];
    put_u32(&mut attr, 0, fd.as_raw_fd() as u32);
    put_u32(&mut attr, 4, info.len() as u32);
    put_u64(&mut attr, 8, info.as_mut_ptr() as u64);
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr).context("BPF_OBJ_GET_INFO_BY_FD")?;
    Ok(())
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8).map_or(0, |s| {
        u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]])
    })
}

fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line info record.
    fn rec(file: u32, text: u32, line: u32, col: u32) -> Vec<u8> {
        [0u32, file, text, line << 10 | col]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect()
    }

    #[test]
    fn an_address_belongs_to_the_last_line_starting_at_or_before_it() {
        let strings = b"\0src/wait.rs\0    let now = now_ns();\0bump(stats, 1);\0";
        let lines = [rec(1, 13, 40, 5), rec(1, 37, 77, 9)].concat();
        // Records in any order; the addresses sort them.
        let jited = [0x2000u64, 0x1000u64]
            .iter()
            .flat_map(|a| a.to_le_bytes())
            .collect::<Vec<_>>();
        let l = JitLines::from_records(&jited, 8, &lines, 16, strings);
        assert_eq!(l.at(0xfff), None);
        let first = l.at(0x1000).expect("line");
        assert_eq!((first.file.as_str(), first.number), ("src/wait.rs", 77));
        assert_eq!(first.text, "bump(stats, 1);");
        assert_eq!(l.at(0x1fff).expect("line").number, 77);
        assert_eq!(l.at(0x2000).expect("line").text, "let now = now_ns();");
        assert_eq!(l.at(u64::MAX).expect("line").number, 40);
    }

    #[test]
    fn btf_strings_are_found_through_the_header() {
        let strs = b"\0abc\0";
        let mut btf = vec![0u8; 24];
        btf[0..2].copy_from_slice(&0xeb9fu16.to_le_bytes());
        put_u32(&mut btf, 4, 24); // hdr_len
        put_u32(&mut btf, 16, 0); // str_off
        put_u32(&mut btf, 20, strs.len() as u32);
        btf.extend_from_slice(strs);
        assert_eq!(btf_strings(&btf).expect("strings"), strs);
        assert_eq!(string_at(strs, 1), "abc");
        assert_eq!(string_at(strs, 99), "");
        assert!(btf_strings(&[0u8; 30]).is_err(), "no magic");
    }
}
