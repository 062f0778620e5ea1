//! Telling the probe where each target's shared memory is, so that it pairs waits
//! and wakes on shared futexes across processes (see `profiler_common::shared`).
//!
//! Owns: writing and deleting `SHARED_MAPS` rows. Must not: read `/proc` or choose
//! the ranges (`session::shared` does).

use aya::maps::{HashMap as BpfHashMap, MapData};
use profiler_common::{MAP_SHARED_MAPS, RawSharedMaps};

use crate::collect::{CollectError, Probes, map_err, map_mut};

impl Probes {
    /// Register (or replace) the shared mappings of process `tgid`.
    pub fn register_shared(&mut self, tgid: u32, maps: &RawSharedMaps) -> Result<(), CollectError> {
        let mut map: BpfHashMap<&mut MapData, u32, RawSharedMaps> =
            map_mut(&mut self.ebpf, MAP_SHARED_MAPS)?;
        map.insert(tgid, maps, 0)
            .map_err(|e| map_err(MAP_SHARED_MAPS, &e))
    }

    /// Forget the shared mappings of a process that exited (its pid may be reused).
    pub fn forget_shared(&mut self, tgid: u32) {
        if let Ok(mut map) =
            map_mut::<BpfHashMap<&mut MapData, u32, RawSharedMaps>>(&mut self.ebpf, MAP_SHARED_MAPS)
        {
            let _ = map.remove(&tgid);
        }
    }
}
