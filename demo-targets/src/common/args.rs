//! The command line: which demo and variant, and its integer knobs (`--name VALUE`),
//! with defaults, minimums and the generated `--help`.

use std::collections::BTreeMap;
use std::fmt;

/// Which upstream bug to reproduce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Demo {
    Forwarder,
    Switch,
    Kmutex,
    ContainerStore,
    LayerStore,
}

impl Demo {
    pub const ALL: [Demo; 5] = [
        Demo::Forwarder,
        Demo::Switch,
        Demo::Kmutex,
        Demo::ContainerStore,
        Demo::LayerStore,
    ];

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    pub fn spec(self) -> &'static DemoSpec {
        match self {
            Demo::Forwarder => &crate::forwarder::SPEC,
            Demo::Switch => &crate::switch::SPEC,
            Demo::Kmutex => &crate::kmutex::SPEC,
            Demo::ContainerStore => &crate::container_store::SPEC,
            Demo::LayerStore => &crate::layer_store::SPEC,
        }
    }

    fn from_arg(arg: &str) -> Option<Demo> {
        Demo::ALL.into_iter().find(|d| d.name() == arg)
    }
}

/// The upstream code before or after the fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Before,
    After,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::Before => "before",
            Variant::After => "after",
        }
    }

    fn from_arg(arg: &str) -> Option<Variant> {
        match arg {
            "before" => Some(Variant::Before),
            "after" => Some(Variant::After),
            _ => None,
        }
    }
}

/// One integer command-line knob (`--name VALUE`). Every knob is a non-negative
/// integer: counts, or durations whose unit is part of the name.
#[derive(Debug)]
pub struct Knob {
    pub name: &'static str,
    pub default: u64,
    /// Smallest accepted value (1 for counts and rates that divide).
    pub min: u64,
    pub help: &'static str,
}

/// Static description of a demo, used for parsing and for `--help`.
#[derive(Debug)]
pub struct DemoSpec {
    pub name: &'static str,
    pub about: &'static str,
    /// Knob that `--threads` is an alias for (the demo's main thread count).
    pub threads_knob: &'static str,
    /// Whether `--duration-ms` applies (time-based demos only).
    pub timed: bool,
    /// Demo-specific knobs, including the one named by `threads_knob` and, for timed
    /// demos, `duration-ms`.
    pub knobs: &'static [Knob],
    /// Arguments the profiler's tests use for a quick run.
    pub short_args: &'static str,
}

/// `--duration-ms`, the run time of a timed demo (`DemoSpec::timed`).
pub const DURATION_KNOB: Knob = Knob {
    name: "duration-ms",
    default: 2000,
    min: 1,
    help: "run time",
};

/// Knobs every demo accepts.
pub const COMMON_KNOBS: [Knob; 2] = [
    Knob {
        name: "seed",
        default: 1,
        min: 0,
        help: "xorshift seed for jitter",
    },
    Knob {
        name: "linger-ms",
        default: 0,
        min: 0,
        help: "sleep this long after the workload, before printing (lets a profiler symbolize)",
    },
];

/// Resolved knob values (defaults filled in) for one run.
#[derive(Clone, Debug)]
pub struct Params {
    values: BTreeMap<&'static str, u64>,
}

impl Params {
    /// Every declared knob at its default.
    pub fn defaults(spec: &DemoSpec) -> Params {
        let values = spec
            .knobs
            .iter()
            .chain(COMMON_KNOBS.iter())
            .map(|k| (k.name, k.default))
            .collect();
        Params { values }
    }

    /// Value of a declared knob. Panics on an undeclared name: that is a typo in a demo
    /// module, caught by the per-demo unit tests.
    pub fn get(&self, name: &str) -> u64 {
        match self.values.get(name) {
            Some(v) => *v,
            None => panic!("knob '{name}' is not declared in the demo's spec"),
        }
    }

    /// [`Params::get`] as a `usize` count.
    pub fn count(&self, name: &str) -> usize {
        usize::try_from(self.get(name)).unwrap_or(usize::MAX)
    }

    pub fn seed(&self) -> u64 {
        self.get("seed")
    }

    /// Overrides a declared knob (used by tests to shrink a workload).
    #[cfg(test)]
    pub fn set(&mut self, name: &'static str, value: u64) {
        assert!(self.values.contains_key(name), "unknown knob {name}");
        self.values.insert(name, value);
    }

    /// JSON object of every knob, `-` turned into `_` in the keys.
    pub fn to_json(&self, spec: &DemoSpec) -> serde_json::Map<String, serde_json::Value> {
        let mut map: serde_json::Map<String, serde_json::Value> = self
            .values
            .iter()
            .map(|(k, v)| (k.replace('-', "_"), (*v).into()))
            .collect();
        map.insert("threads".into(), self.get(spec.threads_knob).into());
        map
    }
}

/// A parsed command line.
#[derive(Debug)]
pub enum Command {
    Help,
    Run {
        demo: Demo,
        variant: Variant,
        params: Params,
    },
}

/// A command-line error; `main` prints it on one line and exits with status 2.
#[derive(Debug, PartialEq, Eq)]
pub struct ArgError(pub String);

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArgError {}

/// Parses `demo variant [--knob VALUE | --knob=VALUE]...` (program name excluded).
/// `--help`/`-h` anywhere wins over everything else.
pub fn parse_args(args: &[String]) -> Result<Command, ArgError> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        return Ok(Command::Help);
    }
    let err = |msg: String| Err(ArgError(msg));
    let Some(demo_arg) = args.first() else {
        let names: Vec<&str> = Demo::ALL.iter().map(|d| d.name()).collect();
        return err(format!(
            "missing demo (expected one of: {})",
            names.join(", ")
        ));
    };
    let Some(demo) = Demo::from_arg(demo_arg) else {
        return err(format!("unknown demo '{demo_arg}'"));
    };
    let Some(variant_arg) = args.get(1) else {
        return err(format!(
            "missing variant for '{demo_arg}' (expected before or after)"
        ));
    };
    let Some(variant) = Variant::from_arg(variant_arg) else {
        return err(format!(
            "unknown variant '{variant_arg}' (expected before or after)"
        ));
    };
    let spec = demo.spec();
    let mut params = Params::defaults(spec);
    let mut seen: Vec<&'static str> = Vec::new();
    let mut rest = args[2..].iter();
    while let Some(arg) = rest.next() {
        let Some(flag) = arg.strip_prefix("--") else {
            return err(format!("unexpected argument '{arg}'"));
        };
        let (name, inline_value) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (flag, None),
        };
        if name == "duration-ms" && !spec.timed {
            return err(format!(
                "'--duration-ms' does not apply to {} (its workload is count-based)",
                spec.name
            ));
        }
        // Messages name the flag as given; `--threads` resolves to the demo's count.
        let knob_name = if name == "threads" {
            spec.threads_knob
        } else {
            name
        };
        let Some(knob) = spec
            .knobs
            .iter()
            .chain(COMMON_KNOBS.iter())
            .find(|k| k.name == knob_name)
        else {
            return err(format!("unknown option '--{name}' for {}", spec.name));
        };
        let Some(value) = inline_value.or_else(|| rest.next().cloned()) else {
            return err(format!("'--{name}' needs a value"));
        };
        let Ok(value) = value.parse::<u64>() else {
            return err(format!(
                "'--{name}' expects a non-negative integer, got '{value}'"
            ));
        };
        if value < knob.min {
            return err(format!(
                "'--{name}' must be at least {}, got {value}",
                knob.min
            ));
        }
        if seen.contains(&knob.name) {
            return err(format!(
                "'--{name}' given twice (--threads is '--{}')",
                spec.threads_knob
            ));
        }
        seen.push(knob.name);
        params.values.insert(knob.name, value);
    }
    Ok(Command::Run {
        demo,
        variant,
        params,
    })
}

/// The `--help` text: usage, then every demo with its knobs and defaults.
pub fn help_text() -> String {
    use fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "demo-targets: before/after reproductions of lock-contention bugs for lockprof\n\n\
         USAGE:\n  demo-targets <DEMO> <before|after> [--threads N] [--duration-ms D] \
         [--seed S] [--linger-ms L] [demo knobs...]\n\n\
         Prints one JSON line: \
         {{\"demo\",\"variant\",\"params\",\"headline\",\"metrics\",\"wall_s\"}}.\n\
         Knobs take integer values, as '--knob V' or '--knob=V'. Bad arguments exit with 2.\n\n\
         COMMON:"
    );
    let _ = writeln!(
        s,
        "  {:<26} alias for the demo's main thread count (below)",
        "--threads N"
    );
    for k in &COMMON_KNOBS {
        let _ = writeln!(
            s,
            "  {:<26} {} [default {}]",
            format!("--{} N", k.name),
            k.help,
            k.default
        );
    }
    for demo in Demo::ALL {
        let spec = demo.spec();
        let _ = writeln!(s, "\n{}: {}", spec.name, spec.about);
        let _ = writeln!(s, "  --threads = --{}", spec.threads_knob);
        for k in spec.knobs {
            let _ = writeln!(
                s,
                "  {:<26} {} [default {}]",
                format!("--{} N", k.name),
                k.help,
                k.default
            );
        }
        let _ = writeln!(s, "  short run: {}", spec.short_args);
    }
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    /// The demo, variant and knobs of the command line `s`.
    pub(crate) fn run_params(s: &str) -> (Demo, Variant, Params) {
        match parse_args(&argv(s)) {
            Ok(Command::Run {
                demo,
                variant,
                params,
            }) => (demo, variant, params),
            other => panic!("expected a run for '{s}', got {other:?}"),
        }
    }

    #[test]
    fn parse_fills_defaults() {
        let (demo, variant, p) = run_params("forwarder before");
        assert_eq!(demo, Demo::Forwarder);
        assert_eq!(variant, Variant::Before);
        assert_eq!(p.get("builds"), 768);
        assert_eq!(p.get("calls"), 16);
        assert_eq!(p.get("timeout-ms"), 3000);
        assert_eq!(p.seed(), 1);
        assert_eq!(p.get("linger-ms"), 0);
    }

    #[test]
    fn parse_threads_is_an_alias_for_the_main_count() {
        let (_, _, p) = run_params("forwarder after --threads 12 --calls=3 --seed 9");
        assert_eq!(p.get("builds"), 12);
        assert_eq!(p.get("calls"), 3);
        assert_eq!(p.seed(), 9);
        let (_, _, p) = run_params("kmutex before --threads 4");
        assert_eq!(p.get("pulls"), 4);
        let (_, _, p) = run_params("switch after --threads 2 --duration-ms 100");
        assert_eq!(p.get("tx-streams"), 2);
        assert_eq!(p.get("duration-ms"), 100);
        let json = p.to_json(Demo::Switch.spec());
        assert_eq!(json["threads"], 2);
        assert_eq!(json["tx_streams"], 2);
    }

    #[test]
    fn parse_help_wins() {
        assert!(matches!(parse_args(&argv("--help")), Ok(Command::Help)));
        assert!(matches!(parse_args(&argv("bogus -h")), Ok(Command::Help)));
        let help = help_text();
        for demo in Demo::ALL {
            assert!(help.contains(&format!("\n{}: ", demo.name())));
        }
        assert!(help.contains("--reg-delay-us"));
    }

    #[test]
    fn parse_rejects_bad_arguments() {
        let bad = [
            ("", "missing demo"),
            ("nope before", "unknown demo"),
            ("switch", "missing variant"),
            ("switch during", "unknown variant"),
            ("switch before --bogus 1", "unknown option"),
            ("switch before --drain-ns", "needs a value"),
            ("switch before --drain-ns -5", "non-negative integer"),
            ("switch before --drain-ns 1.5", "non-negative integer"),
            ("switch before --drain-ns 0", "at least 1"),
            ("switch before --threads 2 --tx-streams 3", "given twice"),
            ("kmutex after --threads 0", "'--threads' must be at least 1"),
            ("switch before stray", "unexpected argument"),
            ("kmutex before --duration-ms 10", "does not apply"),
            ("forwarder before --linger-ms", "needs a value"),
        ];
        for (args, want) in bad {
            match parse_args(&argv(args)) {
                Err(ArgError(msg)) => {
                    assert!(msg.contains(want), "'{args}': '{msg}' lacks '{want}'");
                    assert!(!msg.contains('\n'), "error must be one line");
                }
                Ok(c) => panic!("'{args}' parsed as {c:?}"),
            }
        }
    }
}
