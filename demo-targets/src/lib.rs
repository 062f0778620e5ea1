//! What the fixture binaries in `src/bin/` share: their `--flag VALUE` parsing. The
//! demos' own harness is `common/`, a module of the `demo-targets` binary (its richer
//! command line has per-demo knobs, minimums and a generated `--help`).

pub mod fixture_flags;
