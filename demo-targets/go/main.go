// Command godemo re-creates containerd's duplicate-pull bug (containerd#4937, fixed by
// PR #6702 "kmutex") in Go, the language of the daemon it comes from, so lockprof's Go
// runtime probes can be checked against the program's own measurement.
//
// Before: every puller opens a writer for the same layer ref. The metadata store's
// Writer holds the database lock (bbolt's single writer lock, here `db`) while the
// content store's try-lock ladder sleeps rand(1<<i) units waiting for the ref, so
// each losing puller sleeps holding `db` and everybody else, including the winner's
// Commit, queues behind it.
//
// After: a keyed mutex (one sync.Mutex per layer digest) makes pullers wait their
// turn outside `db`; the next one finds the layer already committed.
//
// Usage: godemo [-pullers N] [-layers N] [-unit-us N] [-wait] before|after
//
// With -wait the demo prints "ready" and starts only after a line on stdin (a
// profiler attaching by pid can attach first). It prints one JSON object: the wait
// it measured itself at each lock site (time inside Lock()), by LOCK-SITE tag.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// siteWait is the wait one lock site measured itself.
type siteWait struct {
	Waits  int64 `json:"waits"`
	WaitNs int64 `json:"wait_ns"`
}

// measured counts time spent inside Lock() at one site: `start := time.Now();
// mu.Lock(); m.since(start)`, written out at each site so the Lock call stays in the
// site's own function. Uncontended locks cost tens of nanoseconds; everything else is
// time parked waiting for the holder.
type measured struct{ waits, waitNs int64 }

func (m *measured) since(start time.Time) {
	atomic.AddInt64(&m.waits, 1)
	atomic.AddInt64(&m.waitNs, int64(time.Since(start)))
}

func (m *measured) result() siteWait {
	return siteWait{Waits: atomic.LoadInt64(&m.waits), WaitNs: atomic.LoadInt64(&m.waitNs)}
}

var errUnavailable = fmt.Errorf("ref locked: unavailable")

// store is the content + metadata store: `db` is the bolt writer lock, refs the
// content store's try-locks on ingest refs.
type store struct {
	db       sync.Mutex
	locksMu  sync.Mutex
	refs     map[string]bool
	blobs    map[string]bool
	unit     time.Duration
	retries  int
	writerDB measured // at km.before.db_lock
	commitDB measured // at km.commit.db_lock
	hasDB    measured // at km.has.db_lock
}

// tryLock takes ref if nobody holds it.
func (s *store) tryLock(ref string) bool {
	s.locksMu.Lock()
	defer s.locksMu.Unlock()
	if s.refs[ref] {
		return false
	}
	s.refs[ref] = true
	return true
}

// writer opens an ingest for ref inside a database transaction: the try-lock ladder
// sleeps while the transaction (the `db` lock) is held.
//
//go:noinline
func (s *store) writer(ref string, rng *rand.Rand) error {
	start := time.Now()
	s.db.Lock() // LOCK-SITE: km.before.db_lock
	s.writerDB.since(start)
	defer s.db.Unlock()
	for i := 0; i < s.retries; i++ {
		if s.tryLock(ref) {
			return nil
		}
		time.Sleep(time.Duration(rng.Intn(1<<i)+1) * s.unit)
	}
	if s.tryLock(ref) {
		return nil
	}
	return errUnavailable
}

// commit stores the blob and releases the ref, in a database transaction.
//
//go:noinline
func (s *store) commit(ref string) bool {
	start := time.Now()
	s.db.Lock() // LOCK-SITE: km.commit.db_lock
	s.commitDB.since(start)
	defer s.db.Unlock()
	fresh := !s.blobs[ref]
	s.blobs[ref] = true
	s.locksMu.Lock()
	delete(s.refs, ref)
	s.locksMu.Unlock()
	return fresh
}

// has reports whether the blob is stored (a read transaction).
//
//go:noinline
func (s *store) has(ref string) bool {
	start := time.Now()
	s.db.Lock() // LOCK-SITE: km.has.db_lock
	s.hasDB.since(start)
	defer s.db.Unlock()
	return s.blobs[ref]
}

// keyMutex is kmutex: one mutex per key, created on first use.
type keyMutex struct {
	mu   sync.Mutex
	keys map[string]*sync.Mutex
	wait measured // at km.after.key_lock
}

//go:noinline
func (k *keyMutex) lock(key string) *sync.Mutex {
	k.mu.Lock()
	m, ok := k.keys[key]
	if !ok {
		m = &sync.Mutex{}
		k.keys[key] = m
	}
	k.mu.Unlock()
	start := time.Now()
	m.Lock() // LOCK-SITE: km.after.key_lock
	k.wait.since(start)
	return m
}

// fetch downloads a layer: the winner's network time.
func fetch(unit time.Duration) { time.Sleep(20 * unit) }

// pullBefore fetches each layer through the store's writer, backing off on
// ErrUnavailable (containerd's remotes.fetch with content.OpenWriter's retry).
func pullBefore(s *store, layers int, rng *rand.Rand) {
	for l := 0; l < layers; l++ {
		ref := fmt.Sprintf("layer-sha256:%02d", l)
		for backoff := 1; ; backoff *= 2 {
			if s.has(ref) {
				break
			}
			if err := s.writer(ref, rng); err == nil {
				fetch(s.unit)
				s.commit(ref)
				break
			}
			time.Sleep(time.Duration(rng.Intn(backoff)+1) * s.unit)
		}
	}
}

// pullAfter takes the layer's key lock first: one puller downloads, the others wait
// outside the database lock and find the layer present.
func pullAfter(s *store, km *keyMutex, layers int) {
	for l := 0; l < layers; l++ {
		ref := fmt.Sprintf("layer-sha256:%02d", l)
		m := km.lock("blob://" + ref)
		if !s.has(ref) {
			fetch(s.unit)
			s.commit(ref)
		}
		m.Unlock()
	}
}

func main() {
	pullers := flag.Int("pullers", 16, "concurrent pulls of the same image")
	layers := flag.Int("layers", 6, "layers per image")
	unitUs := flag.Int("unit-us", 500, "one upstream millisecond, in microseconds")
	retries := flag.Int("retries", 6, "the content store's try-lock attempts (sleeping rand(1<<i) units)")
	wait := flag.Bool("wait", false, "print \"ready\" and start after a line on stdin")
	flag.Parse()
	variant := flag.Arg(0)
	if flag.NArg() != 1 || (variant != "before" && variant != "after") {
		fmt.Fprintln(os.Stderr, "usage: godemo [flags] before|after")
		os.Exit(2)
	}
	if *pullers < 1 || *layers < 1 || *unitUs < 1 || *retries < 0 || *retries > 20 {
		fmt.Fprintln(os.Stderr, "godemo: -pullers, -layers and -unit-us must be positive, -retries 0..20")
		os.Exit(2)
	}
	if *wait {
		fmt.Println("ready")
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			fmt.Fprintln(os.Stderr, "godemo: stdin closed before the start line")
			os.Exit(1)
		}
	}
	s := &store{
		refs:    map[string]bool{},
		blobs:   map[string]bool{},
		unit:    time.Duration(*unitUs) * time.Microsecond,
		retries: *retries,
	}
	km := &keyMutex{keys: map[string]*sync.Mutex{}}
	start := time.Now()
	var wg sync.WaitGroup
	for p := 0; p < *pullers; p++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			if variant == "before" {
				pullBefore(s, *layers, rand.New(rand.NewSource(seed)))
			} else {
				pullAfter(s, km, *layers)
			}
		}(int64(p + 1))
	}
	wg.Wait()
	elapsed := time.Since(start)
	sites := map[string]siteWait{
		"km.before.db_lock": s.writerDB.result(),
		"km.commit.db_lock": s.commitDB.result(),
		"km.has.db_lock":    s.hasDB.result(),
		"km.after.key_lock": km.wait.result(),
	}
	var dbWait int64
	for _, tag := range []string{"km.before.db_lock", "km.commit.db_lock", "km.has.db_lock"} {
		dbWait += sites[tag].WaitNs
	}
	// The demo-targets result shape (`cargo xtask demo` reads it), plus the wait
	// measured at each lock site.
	out := map[string]interface{}{
		"demo":    "go-kmutex",
		"variant": variant,
		"params":  map[string]int{"pullers": *pullers, "layers": *layers, "unit_us": *unitUs, "retries": *retries},
		"headline": map[string]interface{}{
			"name": "pull_all_ms", "unit": "ms", "lower_is_better": true,
			"value": float64(elapsed.Microseconds()) / 1000,
		},
		"metrics": map[string]float64{
			"pull_all_ms":      float64(elapsed.Microseconds()) / 1000,
			"db_lock_wait_ms":  float64(dbWait) / 1e6,
			"key_lock_wait_ms": float64(sites["km.after.key_lock"].WaitNs) / 1e6,
		},
		"wall_s": elapsed.Seconds(),
		"sites":  sites,
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(out); err != nil {
		os.Exit(1)
	}
}
