//! Who a launched command runs as.
//!
//! Owns: resolving `--user NAME|UID|root` and the sudo default (the user who ran
//! `sudo lockprof …`, from `SUDO_UID`/`SUDO_GID`/`SUDO_USER`) into the uid, gid and
//! supplementary groups the child takes before `exec`. Must not: change lockprof's
//! own credentials (only the forked child drops them, in `process::launch`).

use std::ffi::{CStr, CString};

use anyhow::{Result, bail};

/// The identity a launched command takes before `exec`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The user's name (for messages and the child's `USER`/`LOGNAME`).
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, as `getgrouplist` gives them (the primary group included).
    pub groups: Vec<u32>,
    /// The user's home directory, for the child's `HOME`.
    pub home: Option<String>,
}

/// The sudo environment, as sudo sets it for the command it runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SudoEnv {
    pub uid: Option<String>,
    pub gid: Option<String>,
    pub user: Option<String>,
}

impl SudoEnv {
    /// `SUDO_UID`, `SUDO_GID` and `SUDO_USER` of this process.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Self {
            uid: var("SUDO_UID"),
            gid: var("SUDO_GID"),
            user: var("SUDO_USER"),
        }
    }
}

/// Who the command launched by this lockprof should run as: `None` to keep lockprof's
/// own credentials. `user` is `--user`; without it, a root lockprof started by sudo
/// runs the command as the user who ran sudo.
pub fn resolve(user: Option<&str>, sudo: &SudoEnv) -> Result<Option<Credentials>> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let wanted = match user {
        Some(u) => Some(by_name_or_uid(u)?),
        None => from_sudo(sudo)?,
    };
    let Some(creds) = wanted else {
        return Ok(None);
    };
    if creds.uid == euid {
        // Already that user (or root asked for root): nothing to change. The groups
        // are kept as they are, like `sudo -u root` keeps root's.
        return Ok(None);
    }
    if euid != 0 {
        bail!(
            "--user '{}' needs root: lockprof runs as uid {euid} and cannot switch users",
            creds.name
        );
    }
    Ok(Some(creds))
}

/// Who should own the files lockprof writes for its caller: under `sudo` (lockprof is
/// root and `SUDO_UID` names another user), that user and `SUDO_GID`, so that
/// `sudo lockprof record -o run.json` leaves a report its caller can move, edit and
/// delete. `None` when lockprof is not root through sudo, or `SUDO_UID` is not a
/// number (nothing to change then: the file stays lockprof's own).
pub fn file_owner(sudo: &SudoEnv) -> Option<(u32, Option<u32>)> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let uid = sudo.uid.as_deref()?.parse::<u32>().ok()?;
    if euid != 0 || uid == 0 {
        return None;
    }
    Some((uid, sudo.gid.as_deref().and_then(|g| g.parse().ok())))
}

/// Gives `path` to the sudo caller (see [`file_owner`]); nothing to do otherwise.
///
/// # Errors
/// The `chown` failed (the file system refuses, the file is gone).
pub fn give_to_caller(path: &std::path::Path) -> std::io::Result<()> {
    match file_owner(&SudoEnv::from_env()) {
        Some((uid, gid)) => std::os::unix::fs::chown(path, Some(uid), gid),
        None => Ok(()),
    }
}

/// `--user`: a user name, or a numeric uid.
fn by_name_or_uid(user: &str) -> Result<Credentials> {
    let entry = match user.parse::<u32>() {
        Ok(uid) => passwd_by_uid(uid),
        Err(_) => passwd_by_name(user),
    };
    let Some(entry) = entry else {
        bail!("no user '{user}' (not in the password database)");
    };
    Ok(with_groups(entry))
}

/// The sudo default: `SUDO_UID`/`SUDO_GID`, with `SUDO_USER`'s groups.
fn from_sudo(sudo: &SudoEnv) -> Result<Option<Credentials>> {
    let Some(uid) = &sudo.uid else {
        return Ok(None);
    };
    let Ok(uid) = uid.parse::<u32>() else {
        bail!("SUDO_UID '{uid}' is not a user id; pass --user NAME (or --user root)");
    };
    let entry = sudo
        .user
        .as_deref()
        .and_then(passwd_by_name)
        .filter(|e| e.uid == uid)
        .or_else(|| passwd_by_uid(uid));
    let gid = match &sudo.gid {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => bail!("SUDO_GID '{g}' is not a group id; pass --user NAME (or --user root)"),
        },
        None => entry.as_ref().map_or(uid, |e| e.gid),
    };
    Ok(Some(match entry {
        Some(e) => with_groups(Passwd { gid, ..e }),
        // A uid with no name (a container's user, say): its own group only.
        None => Credentials {
            name: uid.to_string(),
            uid,
            gid,
            groups: vec![gid],
            home: None,
        },
    }))
}

/// One password-database entry.
#[derive(Clone, Debug)]
struct Passwd {
    name: String,
    uid: u32,
    gid: u32,
    home: Option<String>,
}

fn passwd_by_name(name: &str) -> Option<Passwd> {
    let c_name = CString::new(name).ok()?;
    lookup(|pwd, buf, result| {
        // SAFETY: all pointers are valid for the call; buf has buf.len() bytes.
        unsafe { libc::getpwnam_r(c_name.as_ptr(), pwd, buf.as_mut_ptr(), buf.len(), result) }
    })
}

fn passwd_by_uid(uid: u32) -> Option<Passwd> {
    lookup(|pwd, buf, result| {
        // SAFETY: all pointers are valid for the call; buf has buf.len() bytes.
        unsafe { libc::getpwuid_r(uid, pwd, buf.as_mut_ptr(), buf.len(), result) }
    })
}

/// Runs a `getpw*_r` call with a growing buffer and copies the entry out.
fn lookup(
    call: impl Fn(*mut libc::passwd, &mut [libc::c_char], *mut *mut libc::passwd) -> libc::c_int,
) -> Option<Passwd> {
    let mut size = 1024;
    loop {
        let mut buf: Vec<libc::c_char> = vec![0; size];
        // SAFETY: passwd is plain old data; zeroes are a valid (unused) value.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = call(&raw mut pwd, &mut buf, &raw mut result);
        if rc == libc::ERANGE && size < 1 << 20 {
            size *= 4;
            continue;
        }
        if rc != 0 || result.is_null() {
            return None;
        }
        // SAFETY: on success the strings point into `buf`, NUL-terminated, alive here.
        let text = |p: *const libc::c_char| unsafe {
            (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
        };
        return Some(Passwd {
            name: text(pwd.pw_name).unwrap_or_default(),
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
            home: text(pwd.pw_dir).filter(|h| !h.is_empty()),
        });
    }
}

/// The entry's supplementary groups through `getgrouplist` (which always lists the
/// primary group `e.gid`).
fn with_groups(e: Passwd) -> Credentials {
    let mut groups = vec![e.gid];
    if let Ok(c_name) = CString::new(e.name.as_str()) {
        let mut n: libc::c_int = 64;
        loop {
            let mut buf: Vec<libc::gid_t> = vec![0; n as usize];
            let mut count = n;
            // SAFETY: buf has `count` entries; getgrouplist writes at most that many
            // and sets `count` to the number it needs.
            let rc = unsafe {
                libc::getgrouplist(c_name.as_ptr(), e.gid, buf.as_mut_ptr(), &raw mut count)
            };
            if rc >= 0 {
                buf.truncate(count as usize);
                groups = buf;
                break;
            }
            if count <= n || n >= 65536 {
                break;
            }
            n = count;
        }
    }
    Credentials {
        name: e.name,
        uid: e.uid,
        gid: e.gid,
        groups,
        home: e.home,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_go_to_the_sudo_caller_only_when_root_through_sudo() {
        let sudo = |uid: &str, gid: Option<&str>| SudoEnv {
            uid: Some(uid.into()),
            gid: gid.map(Into::into),
            user: None,
        };
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let want = |w: Option<(u32, Option<u32>)>| if root { w } else { None };
        assert_eq!(
            file_owner(&sudo("1000", Some("100"))),
            want(Some((1000, Some(100))))
        );
        assert_eq!(file_owner(&sudo("1000", None)), want(Some((1000, None))));
        assert_eq!(file_owner(&sudo("0", Some("0"))), None, "root for root");
        assert_eq!(file_owner(&sudo("x", None)), None);
        assert_eq!(file_owner(&SudoEnv::default()), None, "no sudo");
    }

    fn sudo(uid: &str, gid: &str, user: &str) -> SudoEnv {
        SudoEnv {
            uid: Some(uid.to_owned()),
            gid: Some(gid.to_owned()),
            user: Some(user.to_owned()),
        }
    }

    #[test]
    fn no_sudo_and_no_user_keeps_our_own_identity() {
        assert_eq!(resolve(None, &SudoEnv::default()).unwrap(), None);
    }

    #[test]
    fn asking_for_ourselves_changes_nothing() {
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        assert_eq!(
            resolve(Some(&me.to_string()), &SudoEnv::default()).unwrap(),
            None
        );
    }

    #[test]
    fn unknown_users_are_one_line_errors() {
        let err = resolve(Some("lockprof-no-such-user"), &SudoEnv::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no user 'lockprof-no-such-user' (not in the password database)"
        );
        let err = resolve(None, &sudo("x", "0", "root")).unwrap_err();
        assert!(
            err.to_string().starts_with("SUDO_UID 'x' is not a user id"),
            "{err}"
        );
    }

    #[test]
    fn sudo_default_takes_the_callers_ids_and_groups() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            let err = resolve(None, &sudo("65534", "65534", "nobody")).unwrap_err();
            assert!(err.to_string().contains("needs root"), "{err}");
            return;
        }
        let creds = resolve(None, &sudo("65534", "65534", "nobody"))
            .unwrap()
            .expect("root drops to the sudo caller");
        assert_eq!((creds.uid, creds.gid), (65534, 65534));
        assert!(creds.groups.contains(&65534), "{:?}", creds.groups);
        assert_eq!(creds.name, "nobody");
        // A uid unknown to the password database still works, with its own group.
        let creds = resolve(None, &sudo("54321", "54321", "ghost"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (creds.uid, creds.gid, creds.groups),
            (54321, 54321, vec![54321])
        );
    }
}
